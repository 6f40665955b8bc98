"""In a real Chromium at a phone's size: a pupil of 12 signs up and cannot book until a parent confirms
through the e-mailed link; then the pupil books. The parent later withdraws consent: the child's data is
erased, and last month's report for the department is the same as before."""

import os
import re
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache
from django.utils import timezone

from fablab_ops.accounts.models import User
from fablab_ops.courses.models import SeatStatus
from fablab_ops.reports import services as reports
from tests import factories
from tests.browser_support import PHONE, in_browser, need_chromium


def last_months_figures() -> list:
    report = reports.monthly_report(reports.last_month())
    return [asdict(row.total) for row in report.labs] + [asdict(report.network.total)]


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_pupil_of_12_books_once_the_guardian_confirms_and_is_erased_when_consent_is_withdrawn(
        live_server, settings):
    need_chromium()
    cache.clear()
    settings.SITE_URL = live_server.url
    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    # Last month, someone else attended a class at BIIC: the report has figures to keep.
    first_of_month = timezone.localdate().replace(day=1)
    last_month = timezone.make_aware(timezone.datetime.combine(first_of_month - timedelta(days=10),
                                                               timezone.datetime.min.time())) + timedelta(hours=9)
    past = factories.SessionFactory(course__lab=lab, lab=lab, start=last_month, end=last_month + timedelta(hours=3))
    factories.SeatBookingFactory(session=past, status=SeatStatus.ATTENDED)
    summer = factories.SessionFactory(course__lab=lab, lab=lab, course__title_vi="Lập trình robot mùa hè")
    before = last_months_figures()
    born = timezone.localdate().replace(year=timezone.localdate().year - 12).isoformat()
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", "test-results"))
    artifacts.mkdir(parents=True, exist_ok=True)
    base = live_server.url

    def story(browser):
        pupil = browser.new_context(locale="vi-VN", viewport=PHONE, is_mobile=True, has_touch=True).new_page()
        pupil.goto(f"{base}/accounts/signup/")
        assert pupil.locator("main a[href='/privacy/']").count() == 1
        pupil.fill("#id_full_name", "Trần Minh Khôi")
        pupil.fill("#id_email", "khoi@example.vn")
        pupil.fill("#id_password", "Robot-mua-he-2026")
        pupil.fill("#id_date_of_birth", born)
        pupil.fill("#id_guardian_name", "Trần Thị Mai")
        pupil.fill("#id_guardian_email", "mai@example.vn")
        pupil.fill("#id_guardian_relation", "mẹ")
        pupil.check("#id_child_agrees")
        pupil.check("#id_consent_bookings")
        pupil.click("main button[type=submit]")
        pupil.wait_for_selector("text=cha mẹ hoặc người giám hộ xác nhận")
        # The pupil proves their own address…
        pupil.goto(link_in(next(m for m in mail.outbox if m.to == ["khoi@example.vn"])))
        # …but still cannot book.
        pupil.goto(f"{base}/courses/sessions/{summer.pk}/")
        pupil.click("main button:has-text('Đăng ký chỗ')")
        pupil.wait_for_selector("text=đang chờ cha mẹ hoặc người giám hộ xác nhận")
        refused_fits = pupil.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

        # The mother follows the link from her e-mail, on her own phone.
        guardian_link = link_in(next(m for m in mail.outbox if m.to == ["mai@example.vn"]))
        mother = browser.new_context(locale="vi-VN", viewport=PHONE, is_mobile=True, has_touch=True).new_page()
        mother.goto(guardian_link)
        mother.wait_for_selector("text=Trần Minh Khôi")
        mother.click("main button:has-text('Tôi đồng ý')")
        mother.wait_for_selector("text=Cảm ơn anh/chị đã xác nhận.")
        mother.screenshot(path=str(artifacts / "guardian-confirmed-phone.png"), full_page=True)

        # Now the pupil books.
        pupil.goto(f"{base}/courses/sessions/{summer.pk}/")
        pupil.click("main button:has-text('Đăng ký chỗ')")
        pupil.wait_for_selector("text=Bạn đã có chỗ trong buổi học này.")

        # Later the mother withdraws consent, from the same link: by law the child's data is erased.
        mother.goto(guardian_link)
        mother.check("#id_confirm")
        mother.click("main button:has-text('Rút lại sự đồng ý và xóa dữ liệu')")
        mother.wait_for_selector("text=dữ liệu cá nhân của em đã được xóa")
        pupil.goto(f"{base}/accounts/profile/")
        return {"refused_fits": refused_fits, "pupil_url_after": pupil.url}

    result = in_browser(story)
    assert result["refused_fits"] is True
    assert "/accounts/login/" in result["pupil_url_after"]  # signed out: the account is gone
    khoi = User.objects.get(email__startswith="erased-")
    assert (khoi.full_name, khoi.phone, khoi.is_active) == ("—", "", False)
    assert not User.objects.filter(email="khoi@example.vn").exists()
    assert summer.bookings.get(learner=khoi).status == SeatStatus.CANCELLED
    assert last_months_figures() == before
