"""A learner who forgot the password gets a link by e-mail and sets a new one; a logged-in one changes it."""

import re

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client

from tests.conftest import client_for
from tests.factories import TEST_PASSWORD, LearnerFactory

NEW_PASSWORD = "Xuong-che-tao-mua-he-2026"


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()


def link_in(message) -> str:
    return re.search(r"https?://\S+", message.body).group(0)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


@pytest.mark.django_db
def test_the_login_page_offers_a_way_back_for_a_forgotten_password(client):
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in page
    assert "Quên mật khẩu?" in page


@pytest.mark.django_db
def test_a_learner_who_forgot_the_password_resets_it_by_email_and_logs_in(client):
    learner = LearnerFactory(email="lan@example.vn", full_name="Nguyễn Thị Lan")
    page = client.get("/accounts/password_reset/")
    assert page.status_code == 200
    assert "Đặt lại mật khẩu" in page.content.decode()

    response = client.post("/accounts/password_reset/", {"email": "Lan@Example.vn"})
    assert response.status_code == 302
    assert "Hãy kiểm tra hộp thư" in client.get(response["Location"]).content.decode()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["lan@example.vn"]
    assert "Đặt lại mật khẩu" in mail.outbox[0].subject

    # The link carries a one-time token; Django swaps it for a session-bound address before the form.
    form_page = client.get(path_of(link_in(mail.outbox[0])), follow=True)
    assert "Mật khẩu mới" in form_page.content.decode()
    response = client.post(form_page.redirect_chain[-1][0],
                           {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert "Đã đổi mật khẩu" in client.get(response["Location"]).content.decode()

    fresh = Client()
    assert fresh.post("/accounts/login/", {"username": learner.email, "password": TEST_PASSWORD}).status_code == 200
    assert fresh.post("/accounts/login/", {"username": learner.email, "password": NEW_PASSWORD}).status_code == 302
    assert fresh.get("/api/accounts/me").json()["email"] == "lan@example.vn"


@pytest.mark.django_db
def test_a_reset_link_works_once(client):
    LearnerFactory(email="lan@example.vn")
    client.post("/accounts/password_reset/", {"email": "lan@example.vn"})
    link = path_of(link_in(mail.outbox[0]))
    form_page = client.get(link, follow=True)
    client.post(form_page.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    again = Client().get(link, follow=True).content.decode()
    assert "Liên kết đặt lại mật khẩu không còn dùng được" in again


@pytest.mark.django_db
def test_an_unknown_address_gets_the_same_answer_and_no_mail(client):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.vn"})
    assert response.status_code == 302
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_new_password_must_pass_the_same_rules_as_at_sign_up(client):
    LearnerFactory(email="lan@example.vn", full_name="Nguyễn Thị Lan")
    client.post("/accounts/password_reset/", {"email": "lan@example.vn"})
    form_page = client.get(path_of(link_in(mail.outbox[0])), follow=True)
    response = client.post(form_page.redirect_chain[-1][0],
                           {"new_password1": "matkhau123", "new_password2": "matkhau123"})
    assert response.status_code == 200
    assert "quá phổ biến" in response.content.decode()


@pytest.mark.django_db
def test_a_logged_in_learner_changes_the_password_and_stays_logged_in():
    learner = LearnerFactory()
    client = client_for(learner)
    assert client.get("/accounts/password_change/").status_code == 200
    response = client.post("/accounts/password_change/", {
        "old_password": TEST_PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert response.status_code == 302
    assert client.get("/api/accounts/me").status_code == 200
    assert Client().post("/accounts/login/", {"username": learner.email, "password": NEW_PASSWORD}).status_code == 302


@pytest.mark.django_db
def test_changing_the_password_needs_the_old_one():
    client = client_for(LearnerFactory())
    response = client.post("/accounts/password_change/", {
        "old_password": "not-my-password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD,
    })
    assert response.status_code == 200
    assert "Mật khẩu cũ không chính xác" in response.content.decode()


@pytest.mark.django_db
def test_the_reset_pages_speak_english_when_asked(client):
    page = client.get("/accounts/password_reset/", headers={"accept-language": "en"}).content.decode()
    assert "Reset your password" in page


@pytest.mark.django_db
def test_reset_mails_to_one_address_are_limited_and_the_answer_does_not_change(client):
    LearnerFactory(email="lan@example.vn")
    for _ in range(5):
        response = client.post("/accounts/password_reset/", {"email": "lan@example.vn"})
        assert response.status_code == 302
        assert response["Location"] == "/accounts/password_reset/done/"
    assert len(mail.outbox) == 3


@pytest.mark.django_db
def test_the_reset_mail_is_written_in_the_language_the_learner_chose(client):
    LearnerFactory(email="lan@example.vn", language="en")
    client.post("/accounts/password_reset/", {"email": "lan@example.vn"})
    assert mail.outbox[0].subject == "Reset your Fablab Bình Dương password"
    assert "Open this link to set a new password" in mail.outbox[0].body
