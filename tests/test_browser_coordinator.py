"""In a real Chromium at a desktop's size: a coordinator creates a course, opens a session's roster with its
waiting list, downloads the sign-in sheet, and cancels a session through the confirmation step with a reason."""

import io
import os
from pathlib import Path

import pytest
from pypdf import PdfReader

from fablab_ops.accounts.models import Notification
from fablab_ops.courses import services
from fablab_ops.courses.models import Course, SessionStatus
from tests import factories
from tests.browser_support import in_browser, log_in, need_chromium

DESKTOP = {"width": 1366, "height": 900}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_coordinator_creates_a_course_reads_a_roster_prints_the_sheet_and_cancels_with_a_reason(live_server):
    need_chromium()
    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    coordinator = factories.CoordinatorFactory(full_name="Lê Thị Điều Phối")
    course = factories.CourseFactory(lab=lab, title_vi="Lập trình Arduino ứng dụng", default_capacity=2,
                                     min_capacity=1, max_capacity=10)
    session = factories.SessionFactory(course=course, capacity=2)
    for name in ("Nguyễn Thị Hồng Nhung", "Trần Đức Lưỡng", "Phạm Văn Chờ"):
        services.book_seat(session.pk, factories.LearnerFactory(full_name=name))
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", "test-results"))
    artifacts.mkdir(parents=True, exist_ok=True)
    base = live_server.url

    def story(browser):
        context = browser.new_context(locale="vi-VN", viewport=DESKTOP, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        log_in(page, base, coordinator)

        # A new course, from the menu.
        page.click("header nav >> text=Khóa học")
        page.click("main >> text=Tạo khóa học")
        page.select_option("#id_kind", "arduino")
        page.fill("#id_title_vi", "Thiết kế mạch in cơ bản")
        page.fill("#id_title_en", "Basic PCB design")
        page.fill("#id_what_to_bring", "Máy tính xách tay có KiCad")
        page.fill("#id_instructor", "Trần Minh Khoa")
        page.select_option("#id_lab", str(lab.pk))
        page.fill("#id_default_capacity", "16")
        page.fill("#id_min_capacity", "8")
        page.fill("#id_max_capacity", "20")
        page.click("main button[type=submit]")
        page.wait_for_selector("text=Đã lưu khóa học")
        assert page.is_visible("main table >> text=Thiết kế mạch in cơ bản")

        # The session's roster: seats with attendance, then the waiting list in order.
        page.click("header nav >> text=Quản lý lớp")
        page.click(f"main a[href='/courses/manage/sessions/{session.pk}/roster/'] >> nth=0")
        page.wait_for_selector("h1:has-text('Danh sách học viên')")
        booked = page.inner_text("#booked")
        waiting = page.inner_text("#waiting")
        page.screenshot(path=str(artifacts / "coordinator-roster.png"), full_page=True)

        with page.expect_download() as download_info:
            page.click("#sign-in-sheet")
        sheet = Path(download_info.value.path()).read_bytes()

        # Cancelling asks once more, says who will be told, and needs a reason.
        page.click("main >> text=Hủy buổi học…")
        page.wait_for_selector("h1:has-text('Hủy buổi học')")
        told = page.inner_text("#to-be-told")
        page.click("main button.danger")
        page.wait_for_selector("text=Cần ghi lý do hủy")
        page.fill("#id_reason", "Giảng viên bị ốm")
        page.click("main button.danger")
        page.wait_for_selector("text=Đã hủy buổi học và báo cho học viên")
        page.screenshot(path=str(artifacts / "coordinator-cancelled.png"), full_page=True)
        return booked, waiting, sheet, told

    booked, waiting, sheet, told = in_browser(story)
    assert Course.objects.filter(title_vi="Thiết kế mạch in cơ bản", instructor="Trần Minh Khoa",
                                 default_capacity=16).exists()
    assert "Nguyễn Thị Hồng Nhung" in booked and "Trần Đức Lưỡng" in booked and "Phạm Văn Chờ" in waiting
    pages = PdfReader(io.BytesIO(sheet)).pages
    assert len(pages) == 1 and "Nguyễn Thị Hồng Nhung" in pages[0].extract_text()
    assert all(name in told for name in ("Nguyễn Thị Hồng Nhung", "Trần Đức Lưỡng", "Phạm Văn Chờ"))
    session.refresh_from_db()
    assert (session.status, session.cancel_reason) == (SessionStatus.CANCELLED, "Giảng viên bị ốm")
    mails = Notification.objects.filter(kind="session_cancelled")
    assert mails.count() == 3 and all("Giảng viên bị ốm" in mail.body for mail in mails)
