"""A learner keeps their own details: name, phone, school, language, e-mail address (confirmed), calendar address."""

import re

import pytest
from django.core import mail, signing
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from fablab_ops.accounts.models import User
from tests.conftest import client_for
from tests.factories import ADULT_SIGNUP, TEST_PASSWORD, LearnerFactory


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()


def link_path(message) -> str:
    return re.sub(r"^https?://[^/]+", "", re.search(r"https?://\S+", message.body).group(0))


def profile_form(**changes):
    form = {"full_name": "Nguyễn Thị Lan", "phone": "0912 345 678", "organisation": "", "language": "vi"}
    form.update(changes)
    return form


@pytest.mark.django_db
def test_a_learner_edits_name_phone_school_and_language():
    learner = LearnerFactory(full_name="Nguyen Thi Lan", phone="")
    client = client_for(learner)
    page = client.get("/accounts/profile/").content.decode()
    assert "Hồ sơ của tôi" in page and learner.email in page

    response = client.post("/accounts/profile/", profile_form(
        full_name="Nguyễn Thị Lan", phone="0912 345 678", organisation="THPT Chuyên Hùng Vương", language="en",
    ))
    assert response.status_code == 302
    learner.refresh_from_db()
    assert (learner.full_name, learner.phone, learner.organisation, learner.language) == (
        "Nguyễn Thị Lan", "0912345678", "THPT Chuyên Hùng Vương", "en")
    # The chosen language is the site's from now on, not only the e-mails'.
    assert "My profile" in client.get("/accounts/profile/").content.decode()
    assert client.get("/api/accounts/me").json()["organisation"] == "THPT Chuyên Hùng Vương"


@pytest.mark.django_db
def test_a_phone_number_that_is_not_one_is_refused():
    learner = LearnerFactory(phone="0912345678")
    response = client_for(learner).post("/accounts/profile/", profile_form(phone="gọi tôi đi"))
    assert response.status_code == 200
    assert "Số điện thoại không hợp lệ" in response.content.decode()
    learner.refresh_from_db()
    assert learner.phone == "0912345678"


@pytest.mark.django_db
def test_the_name_cannot_be_emptied():
    learner = LearnerFactory(full_name="Nguyễn Thị Lan")
    response = client_for(learner).post("/accounts/profile/", profile_form(full_name="   "))
    assert response.status_code == 200
    learner.refresh_from_db()
    assert learner.full_name == "Nguyễn Thị Lan"


@pytest.mark.django_db
def test_the_profile_needs_a_login():
    response = Client().get("/accounts/profile/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_calendar_address_is_rotated_from_the_profile_and_back_to_it():
    learner = LearnerFactory()
    client = client_for(learner)
    old = learner.feed_secret
    page = client.get("/accounts/profile/").content.decode()
    assert f"/courses/calendar/{old}.ics" in page
    response = client.post("/accounts/calendar-feed/rotate/", {"next": "/accounts/profile/"})
    assert response["Location"] == "/accounts/profile/"
    learner.refresh_from_db()
    assert learner.feed_secret != old
    assert Client().get(f"/courses/calendar/{old}.ics").status_code == 404
    assert f"/courses/calendar/{learner.feed_secret}.ics" in client.get("/accounts/profile/").content.decode()


@pytest.mark.django_db
def test_changing_the_email_waits_for_the_link_sent_to_the_new_address_and_tells_the_old_one():
    learner = LearnerFactory(email="lan@example.vn")
    client = client_for(learner)
    response = client.post("/accounts/profile/email/", {"new_email": "Lan.Nguyen@Truong.edu.vn",
                                                         "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert "Chúng tôi đã gửi liên kết xác nhận tới lan.nguyen@truong.edu.vn" in client.get(
        response["Location"]).content.decode()
    assert [m.to for m in mail.outbox] == [["lan.nguyen@truong.edu.vn"]]
    learner.refresh_from_db()
    assert learner.email == "lan@example.vn"  # nothing changes before the link is followed

    link = link_path(mail.outbox[0])
    confirm = Client().get(link)  # e.g. opened on the phone, not logged in
    assert confirm.status_code == 200
    assert "lan.nguyen@truong.edu.vn" in confirm.content.decode()
    learner.refresh_from_db()
    assert learner.email == "lan@example.vn"  # looking is not confirming

    done = Client().post(link, follow=True)
    assert "Đã đổi email" in done.content.decode()
    learner.refresh_from_db()
    assert learner.email == "lan.nguyen@truong.edu.vn"
    assert learner.email_verified_at is not None
    told = mail.outbox[-1]
    assert told.to == ["lan@example.vn"]
    assert "lan.nguyen@truong.edu.vn" in told.body

    assert Client().post("/accounts/login/", {"username": "lan.nguyen@truong.edu.vn",
                                              "password": TEST_PASSWORD}).status_code == 302
    assert Client().post(link).status_code == 400  # used once


@pytest.mark.django_db
def test_changing_the_email_needs_the_password():
    learner = LearnerFactory(email="lan@example.vn")
    response = client_for(learner).post("/accounts/profile/email/", {"new_email": "khac@example.vn",
                                                                     "password": "not-mine"})
    assert response.status_code == 200
    assert "Mật khẩu không đúng" in response.content.decode()
    assert mail.outbox == []


@pytest.mark.django_db
def test_an_address_that_belongs_to_someone_else_is_refused():
    LearnerFactory(email="taken@example.vn")
    learner = LearnerFactory(email="lan@example.vn")
    response = client_for(learner).post("/accounts/profile/email/", {"new_email": "TAKEN@example.vn",
                                                                     "password": TEST_PASSWORD})
    assert response.status_code == 200
    assert "Email này đã được đăng ký." in response.content.decode()
    assert mail.outbox == []


@pytest.mark.django_db
def test_an_email_change_link_expires(monkeypatch):
    learner = LearnerFactory(email="lan@example.vn")
    client_for(learner).post("/accounts/profile/email/", {"new_email": "moi@example.vn", "password": TEST_PASSWORD})
    link = link_path(mail.outbox[0])
    later = timezone.now().timestamp() + 2 * 24 * 3600
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = Client().post(link)
    assert response.status_code == 400
    assert "Liên kết đổi email đã hết hạn" in response.content.decode()
    learner.refresh_from_db()
    assert learner.email == "lan@example.vn"


@pytest.mark.django_db
def test_a_link_for_an_address_taken_meanwhile_changes_nothing():
    learner = LearnerFactory(email="lan@example.vn")
    client_for(learner).post("/accounts/profile/email/", {"new_email": "moi@example.vn", "password": TEST_PASSWORD})
    LearnerFactory(email="moi@example.vn")
    response = Client().post(link_path(mail.outbox[0]))
    assert response.status_code == 400
    learner.refresh_from_db()
    assert learner.email == "lan@example.vn"
    assert User.objects.filter(email="moi@example.vn").count() == 1


@pytest.mark.django_db
def test_the_menu_leads_a_logged_in_person_to_the_profile_and_the_tokens():
    menu = client_for(LearnerFactory()).get("/courses/").content.decode()
    assert 'href="/accounts/profile/">Hồ sơ của tôi</a>' in menu
    assert 'href="/accounts/tokens/">Khóa API</a>' in menu
    english = client_for(LearnerFactory(language="en")).get("/courses/", headers={"accept-language": "en"})
    assert ">My profile</a>" in english.content.decode() and ">API tokens</a>" in english.content.decode()
    anonymous = Client().get("/courses/").content.decode()
    assert "/accounts/profile/" not in anonymous and "/accounts/tokens/" not in anonymous


@pytest.mark.django_db
def test_sign_up_checks_and_tidies_the_phone_number_like_the_profile():
    form = {"full_name": "Phạm Thị Hồng", "email": "hong@example.vn", "password": "m4y-in-3d-rat-vui",
            **ADULT_SIGNUP}
    assert Client().post("/accounts/signup/", {**form, "phone": "không có"}).status_code == 200
    assert not User.objects.filter(email="hong@example.vn").exists()
    assert Client().post("/accounts/signup/", {**form, "phone": "0912.345.678"}).status_code == 302
    assert User.objects.get(email="hong@example.vn").phone == "0912345678"
