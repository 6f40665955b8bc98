"""In a real Chromium: a learner books a seat and opens the ticket; the technician's scanner
page is given that code and shows green, then "already checked in" on a second scan."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from tests import factories
from tests.browser_support import in_browser, log_in, need_chromium, soon_within_today


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_learner_books_and_technician_scans_the_ticket_green_then_already_checked_in(live_server):
    need_chromium()
    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    start = soon_within_today()
    course = factories.CourseFactory(lab=lab, title_vi="Lập trình Arduino ứng dụng")
    session = factories.SessionFactory(course=course, start=start, end=start + timedelta(hours=3))
    learner = factories.LearnerFactory(full_name="Phạm Thị Hồng Nhung")
    technician = factories.TechnicianFactory(labs=[lab])
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", "test-results"))
    artifacts.mkdir(parents=True, exist_ok=True)

    def story(browser):
        learner_page = browser.new_context(locale="vi-VN").new_page()
        log_in(learner_page, live_server.url, learner)
        learner_page.goto(f"{live_server.url}/courses/sessions/{session.pk}/")
        learner_page.click("text=Đăng ký chỗ")
        learner_page.wait_for_selector(".qr svg")
        token = learner_page.get_attribute("#ticket-token", "data-token")
        assert token

        door = browser.new_context(locale="vi-VN").new_page()
        log_in(door, live_server.url, technician)
        door.goto(f"{live_server.url}/booking/labs/{lab.slug}/scanner/")
        # A USB scanner types the code and presses Enter into the focused field.
        door.keyboard.type(token)
        door.keyboard.press("Enter")
        result = door.wait_for_selector("#scan-result.ok")
        first = result.inner_text()
        door.wait_for_selector("#door-section >> text=1 người đã vào")
        door.fill("#scan-token", token)
        door.press("#scan-token", "Enter")
        second = door.wait_for_selector("#scan-result.warn").inner_text()
        door.screenshot(path=str(artifacts / "scanner.png"), full_page=True)
        return first, second

    first, second = in_browser(story)
    assert "Phạm Thị Hồng Nhung" in first and "Check-in thành công" in first
    assert "Đã check-in lúc" in second


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_door_without_a_camera_says_so_and_what_to_do_instead(live_server):
    need_chromium()
    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    technician = factories.TechnicianFactory(labs=[lab])

    def story(browser):
        said = {}
        for language, locale in (("vi", "vi-VN"), ("en", "en-GB")):
            # Camera allowed, but the machine has none: the browser answers NotFoundError.
            context = browser.new_context(locale=locale, permissions=["camera"])
            # The language as the menu's switch leaves it, in Django's language cookie (switching through the
            # menu reloads the page, and going to the scanner at once would cut that reload short).
            context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}])
            door = context.new_page()
            log_in(door, live_server.url, technician)
            door.goto(f"{live_server.url}/booking/labs/{lab.slug}/scanner/")
            door.click("#scan-camera")
            said[language] = door.wait_for_selector("#scan-result.refused").inner_text()
        return said

    said = in_browser(story)
    assert "Không tìm thấy camera" in said["vi"] and "nhập mã trên vé" in said["vi"]
    assert "No camera was found" in said["en"] and "find the person by name" in said["en"]
    for text in said.values():
        assert "NotFoundError" not in text and "Requested device" not in text
