"""What the browser stories share: Debian's Chromium driven by Playwright in a thread of its own, and signing in."""

import shutil
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import service_missing
from tests.factories import TEST_PASSWORD

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 360, "height": 740}  # the narrowest phone a page must fit
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


def need_chromium() -> None:
    """A browser story without Chromium fails (or skips where services are optional), saying what to install."""
    if not shutil.which(CHROMIUM):
        service_missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def soon_within_today():
    """Ten minutes from now, but still today in Hồ Chí Minh City: the door lists the local day's classes."""
    now = timezone.localtime()
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(minutes=2):
        time.sleep((midnight - now).total_seconds() + 1)  # too close to midnight: wait for the new day
        now, midnight = timezone.localtime(), midnight + timedelta(days=1)
    return min(now + timedelta(minutes=10), midnight - timedelta(seconds=30))
