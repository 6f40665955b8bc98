"""In a real Chromium at a phone's size: a technician opens their lab's machines page from the menu,
acknowledges an alert with a note, plans a maintenance window seeing the reservation it hits before
saving, confirms, and reads the day's no-shows; no page is wider than the phone."""

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.booking.models import ReservationStatus
from fablab_ops.machines.models import AlertKind, MachineAlert, MaintenanceWindow
from tests import factories
from tests.browser_support import PHONE, in_browser, log_in, need_chromium


def width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_technician_takes_an_alert_plans_maintenance_and_reads_the_no_shows_on_a_phone(live_server):
    need_chromium()
    lab = factories.LabFactory(slug="biic", short_name="BIIC", name_vi="Fablab đa ngành BIIC")
    other = factories.LabFactory(slug="eiu", short_name="EIU")
    laser = factories.MachineFactory(lab=lab, slug="laser-01", name="Máy cắt laser CO2")
    factories.MachineFactory(lab=other, slug="cnc-01", name="Máy CNC của EIU")
    technician = factories.TechnicianFactory(labs=[lab], full_name="Trần Văn Kỹ")
    alert = MachineAlert.objects.create(machine=laser, kind=AlertKind.OFFLINE, raised_at=timezone.now(),
                                        detail="Máy mất kết nối từ 08:00")
    tz = timezone.get_default_timezone()
    tomorrow = timezone.localdate() + timedelta(days=1)
    holder = factories.LearnerFactory(full_name="Võ Minh Khoa")
    hit = factories.ReservationFactory(machine=laser, user=holder, start=datetime.combine(tomorrow, datetime.min.time(),
                                                                                        tz).replace(hour=10),
                                       end=datetime.combine(tomorrow, datetime.min.time(), tz).replace(hour=11))
    start_of_today = datetime.combine(timezone.localdate(), datetime.min.time(), tz)
    missed = max(start_of_today, timezone.now().replace(microsecond=0) - timedelta(hours=1))
    factories.ReservationFactory(machine=laser, user=factories.LearnerFactory(full_name="Phan Văn Vắng"),
                                 start=missed, end=missed + timedelta(minutes=30), status=ReservationStatus.NO_SHOW)
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", "test-results"))
    artifacts.mkdir(parents=True, exist_ok=True)
    base = live_server.url

    def story(browser):
        context = browser.new_context(locale="vi-VN", viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()
        widths = {}
        log_in(page, base, technician)

        # The menu leads to the lab's machines page, and only to this lab's.
        assert page.locator("nav >> text=Máy EIU").count() == 0
        page.click("header summary >> text=Menu")  # on a phone the menu is folded
        page.click("nav >> text=Máy BIIC")
        page.wait_for_selector("h1:has-text('Máy của Fablab đa ngành BIIC')")
        widths["machines"] = width(page)

        # The alert, taken in hand with a note.
        page.fill(f"#ack-{alert.pk}", "Đang kiểm tra cáp mạng")
        page.click(f"#alert-{alert.pk} button:has-text('Tiếp nhận')")
        page.wait_for_selector("text=Đã tiếp nhận cảnh báo")
        acknowledged = page.inner_text(f"#alert-{alert.pk}")
        page.screenshot(path=str(artifacts / "technician-machines-phone.png"), full_page=True)

        # A maintenance window over tomorrow morning: the preview names the reservation it hits.
        page.click("#machine-laser-01 >> text=Lên lịch bảo trì")
        page.wait_for_selector("h1:has-text('Lên lịch bảo trì')")
        widths["maintenance"] = width(page)
        page.fill("#id_start", f"{tomorrow:%Y-%m-%d}T09:00")
        page.fill("#id_end", f"{tomorrow:%Y-%m-%d}T12:00")
        page.fill("#id_reason", "Thay ống laser")
        page.click("main button:has-text('Xem trước')")
        page.wait_for_selector("h1:has-text('Xác nhận lịch bảo trì')")
        hits = page.inner_text("#maintenance-hits")
        # Nothing is saved yet: the machines page, in another tab, has no window planned.
        other_tab = context.new_page()
        other_tab.goto(f"{base}/machines/labs/{lab.slug}/")
        saved_before_confirming = "Chưa có lịch bảo trì sắp tới." not in other_tab.inner_text("#machine-laser-01")
        other_tab.close()
        widths["preview"] = width(page)
        page.screenshot(path=str(artifacts / "technician-maintenance-preview-phone.png"), full_page=True)
        page.click("main button:has-text('Lưu lịch bảo trì')")
        page.wait_for_selector("text=đã báo cho 1 người")

        # The day's no-shows, from the lab's own menu.
        page.click("nav.lab-nav >> text=Vắng mặt và đến muộn")
        page.wait_for_selector("#no-shows")
        no_shows = page.inner_text("#no-shows")
        widths["absences"] = width(page)
        page.screenshot(path=str(artifacts / "technician-absences-phone.png"), full_page=True)
        return acknowledged, hits, saved_before_confirming, no_shows, widths

    acknowledged, hits, saved_before_confirming, no_shows, widths = in_browser(story)
    assert "Đã tiếp nhận bởi Trần Văn Kỹ" in acknowledged and "Đang kiểm tra cáp mạng" in acknowledged
    alert.refresh_from_db()
    assert alert.acknowledged_by == technician and alert.resolved_at is None
    assert "Võ Minh Khoa" in hits and not saved_before_confirming
    window = MaintenanceWindow.objects.get()
    assert (window.machine, window.reason, window.created_by) == (laser, "Thay ống laser", technician)
    hit.refresh_from_db()
    assert hit.maintenance_conflict
    assert Notification.objects.filter(user=holder, kind="reservation_maintenance").count() == 1
    assert "Phan Văn Vắng" in no_shows
    assert all(value <= PHONE["width"] for value in widths.values()), widths
