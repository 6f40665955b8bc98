"""Passwords people cannot guess from a name or a list, and a calendar address that can be taken back."""

import pytest
from django.core.cache import cache
from django.test import Client

from fablab_ops.accounts.models import User
from tests.conftest import client_for
from tests.factories import ADULT_SIGNUP, LearnerFactory


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()


def sign_up(password: str, full_name: str = "Phạm Thị Hồng", email: str = "hong@example.vn"):
    return Client().post("/accounts/signup/", {"full_name": full_name, "email": email, "password": password,
                                                 **ADULT_SIGNUP})


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["matkhau123", "Matkhau@123", "anhyeuem2026", "12345678a"])
def test_sign_up_refuses_a_common_vietnamese_password(password):
    response = sign_up(password)
    assert response.status_code == 200
    assert not User.objects.filter(email="hong@example.vn").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["Phạm Thị Hồng", "phamthihong", "PhamThiHong2026", "hong@example.vn!"])
def test_sign_up_refuses_a_password_made_of_the_name_or_address(password):
    response = sign_up(password)
    assert response.status_code == 200
    assert not User.objects.filter(email="hong@example.vn").exists()


@pytest.mark.django_db
def test_a_good_password_is_accepted():
    assert sign_up("Xưởng-chế-tạo-mùa-hè").status_code == 302


def feed_url(client) -> str:
    page = client.get("/courses/my/").content.decode()
    start = page.index("/courses/calendar/")
    return page[start:page.index(".ics", start) + 4]


@pytest.mark.django_db
def test_a_learner_rotates_the_calendar_address_and_the_old_one_stops_working():
    learner = LearnerFactory()
    client = client_for(learner)
    old = feed_url(client)
    assert Client().get(old).status_code == 200
    assert client.post("/accounts/calendar-feed/rotate/").status_code == 302
    new = feed_url(client)
    assert new != old
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200


@pytest.mark.django_db
def test_changing_the_password_rotates_the_calendar_address():
    learner = LearnerFactory()
    old_secret = learner.feed_secret
    learner.set_password("Mot-mat-khau-moi-2026")
    learner.save()
    learner.refresh_from_db()
    assert learner.feed_secret != old_secret
