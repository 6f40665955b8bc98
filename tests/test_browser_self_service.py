"""In a real Chromium at a phone's size: a learner who forgot the password resets it through the e-mailed link,
logs in, puts their school in the profile, creates an API token, sees it once and calls the API with it."""

import os
import re
from pathlib import Path

import pytest
from django.core import mail
from django.core.cache import cache

from fablab_ops.accounts.models import ApiToken, User
from tests import factories
from tests.browser_support import PHONE, in_browser, need_chromium

NEW_PASSWORD = "Xuong-che-tao-mua-he-2026"


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_learner_resets_a_forgotten_password_edits_the_profile_and_uses_a_new_api_token(live_server, settings):
    need_chromium()
    cache.clear()
    settings.SITE_URL = live_server.url  # the links in the e-mails point at this test's server
    learner = factories.LearnerFactory(email="lan@example.vn", full_name="Nguyen Thi Lan", phone="")
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", "test-results"))
    artifacts.mkdir(parents=True, exist_ok=True)
    base = live_server.url

    def story(browser):
        context = browser.new_context(locale="vi-VN", viewport=PHONE, is_mobile=True, has_touch=True)
        page = context.new_page()

        # Forgot the password: the login page offers the way back.
        page.goto(f"{base}/accounts/login/")
        page.click("text=Quên mật khẩu?")
        page.fill("#id_email", "lan@example.vn")
        page.click("main button[type=submit]")
        page.wait_for_selector("text=Hãy kiểm tra hộp thư")
        letter = mail.outbox[-1]
        link = re.search(r"https?://\S+", letter.body).group(0)

        page.goto(link)
        page.fill("#id_new_password1", NEW_PASSWORD)
        page.fill("#id_new_password2", NEW_PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_selector("h1:has-text('Đã đổi mật khẩu')")
        page.click("main a.btn:has-text('Đăng nhập')")
        page.fill("#id_username", "lan@example.vn")
        page.fill("#id_password", NEW_PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(lambda url: "/accounts/login/" not in url)

        # The profile, from the menu.
        page.click("header summary >> text=Menu")  # on a phone the menu is folded
        page.click("nav >> text=Hồ sơ của tôi")
        page.wait_for_selector("h1:has-text('Hồ sơ của tôi')")
        page.fill("#id_full_name", "Nguyễn Thị Lan")
        page.fill("#id_phone", "0912 345 678")
        page.fill("#id_organisation", "THPT Chuyên Hùng Vương")
        page.click("main button:has-text('Lưu hồ sơ')")
        page.wait_for_selector("text=Đã lưu hồ sơ.")
        profile_fits = fits_the_screen(page)
        page.screenshot(path=str(artifacts / "profile-phone.png"), full_page=True)

        # A token for the learner's own script, shown once.
        page.click("header summary >> text=Menu")  # on a phone the menu is folded
        page.click("nav >> text=Khóa API")
        page.fill("#id_name", "Điện thoại của Lan")
        page.click("main button:has-text('Tạo khóa')")
        page.wait_for_selector("#issued-token >> text=Chỉ hiện một lần.")
        secret = page.input_value("#new-token")
        page.screenshot(path=str(artifacts / "token-phone.png"), full_page=True)
        page.goto(f"{base}/accounts/tokens/")
        listing = page.content()
        tokens_fit = fits_the_screen(page)

        # The API, as a script would call it: the token, no browser session.
        script = browser.new_context()
        answer = script.request.get(f"{base}/api/accounts/me", headers={"Authorization": f"Bearer {secret}"})
        me = answer.json()
        script.close()
        return {"secret": secret, "listing": listing, "me": me, "status": answer.status,
                "fits": (profile_fits, tokens_fit), "letter_to": letter.to}

    result = in_browser(story)
    assert result["letter_to"] == ["lan@example.vn"]
    assert result["status"] == 200
    assert result["me"]["email"] == "lan@example.vn"
    assert result["me"]["full_name"] == "Nguyễn Thị Lan"
    assert result["me"]["organisation"] == "THPT Chuyên Hùng Vương"
    assert result["secret"].startswith("fo_")
    assert result["secret"] not in result["listing"]  # shown once
    assert "Điện thoại của Lan" in result["listing"] and result["secret"][:8] in result["listing"]
    assert result["fits"] == (True, True)
    learner.refresh_from_db()
    assert learner.phone == "0912345678" and learner.check_password(NEW_PASSWORD)
    assert ApiToken.objects.get(user=learner).last_used_at is not None
    assert User.objects.get(pk=learner.pk).email_verified
