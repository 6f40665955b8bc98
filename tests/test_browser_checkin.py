"""In a real Chromium: a learner books a seat and opens the ticket; the technician's scanner
page is given that code and shows green, then "already checked in" on a second scan."""

import os
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests import factories
from tests.conftest import service_missing
from tests.factories import TEST_PASSWORD

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def log_in(page, base_url, user):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", user.email)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("form button[type=submit]:not(.link)")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def in_browser(story, timeout=120):
    """Run a Playwright story in its own thread: its event loop stays out of the test's (ORM) thread."""
    outcome = {}

    def run():
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                try:
                    outcome["value"] = story(browser)
                finally:
                    browser.close()
        except BaseException as error:  # handed back to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=timeout)
    if thread.is_alive():
        pytest.fail(f"the browser story did not end within {timeout} s", pytrace=False)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def soon_within_today():
    """Ten minutes from now, but still today in Hồ Chí Minh City: the door lists the local day's classes."""
    now = timezone.localtime()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(minutes=2):
        time.sleep((midnight - now).total_seconds() + 1)  # too close to midnight: wait for the new day
        now, midnight = timezone.localtime(), midnight + timedelta(days=1)
    return min(now + timedelta(minutes=10), midnight - timedelta(seconds=30))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_learner_books_and_technician_scans_the_ticket_green_then_already_checked_in(live_server):
    if not shutil.which(CHROMIUM):
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
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
    if not shutil.which(CHROMIUM):
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    lab = factories.LabFactory(slug="biic", short_name="BIIC")
    technician = factories.TechnicianFactory(labs=[lab])

    def story(browser):
        said = {}
        for language, locale in (("vi", "vi-VN"), ("en", "en-GB")):
            # Camera allowed, but the machine has none: the browser answers NotFoundError.
            door = browser.new_context(locale=locale, permissions=["camera"]).new_page()
            log_in(door, live_server.url, technician)
            if language == "en":
                door.select_option("#lang-select", "en")
                door.wait_for_load_state()
            door.goto(f"{live_server.url}/booking/labs/{lab.slug}/scanner/")
            door.click("#scan-camera")
            said[language] = door.wait_for_selector("#scan-result.refused").inner_text()
        return said

    said = in_browser(story)
    assert "Không tìm thấy camera" in said["vi"] and "nhập mã trên vé" in said["vi"]
    assert "No camera was found" in said["en"] and "find the person by name" in said["en"]
    for text in said.values():
        assert "NotFoundError" not in text and "Requested device" not in text
