"""Guessing passwords is slowed down on every login form, and nobody else pays for an attacker's guesses."""

import time

import pytest
from django.core.cache import cache
from django.test import Client

from tests.factories import ADULT_SIGNUP, TEST_PASSWORD, AdminFactory, LearnerFactory


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()


def site_login(client, username, password, **headers):
    return client.post("/accounts/login/", {"username": username, "password": password}, **headers)


def logged_in(client) -> bool:
    return client.get("/api/accounts/me").status_code == 200


@pytest.mark.django_db
def test_the_admin_login_is_throttled_like_the_sites_login():
    admin = AdminFactory(email="quantri@fablab.test")
    client = Client()
    for _ in range(5):
        client.post("/admin/login/", {"username": admin.email, "password": "doan-mo", "next": "/admin/"})
    response = client.post("/admin/login/", {"username": admin.email, "password": TEST_PASSWORD, "next": "/admin/"})
    assert response.status_code == 200  # the form again, not the redirect into the admin
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_changing_the_case_of_the_address_gives_no_fresh_budget():
    learner = LearnerFactory(email="lan@example.vn")
    client = Client()
    for spelling in ["LAN@example.vn", "Lan@Example.VN", " lan@example.vn", "lan@EXAMPLE.vn", "lAn@example.vn"]:
        site_login(client, spelling, "wrong")
    assert site_login(client, learner.email, TEST_PASSWORD).status_code == 429
    assert not logged_in(client)


@pytest.mark.django_db
def test_a_learner_who_logs_in_often_is_never_slowed_down():
    learner = LearnerFactory()
    client = Client()
    for _ in range(8):
        assert site_login(client, learner.email, TEST_PASSWORD).status_code == 302
        client.post("/accounts/logout/")


@pytest.mark.django_db
def test_behind_the_proxy_each_client_has_its_own_budget(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    learner = LearnerFactory()
    attacker, classmate = Client(), Client()
    for _ in range(5):
        site_login(attacker, learner.email, "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert site_login(attacker, learner.email, TEST_PASSWORD, REMOTE_ADDR="10.0.0.2",
                      HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # The learner, at school behind the same TLS proxy, still gets in.
    assert site_login(classmate, learner.email, TEST_PASSWORD, REMOTE_ADDR="10.0.0.2",
                      HTTP_X_FORWARDED_FOR="198.51.100.4").status_code == 302


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_buys_no_new_budget_without_a_trusted_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 0
    learner = LearnerFactory()
    client = Client()
    for n in range(5):
        site_login(client, learner.email, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    assert site_login(client, learner.email, TEST_PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.77").status_code == 429


@pytest.mark.django_db
def test_an_attackers_lock_out_ends_with_its_window(settings):
    settings.FABLAB = {**settings.FABLAB, "LOGIN_THROTTLE_WINDOW_S": 1}
    learner = LearnerFactory()
    client = Client()
    for _ in range(5):
        site_login(client, learner.email, "wrong")
    assert site_login(client, learner.email, TEST_PASSWORD).status_code == 429
    time.sleep(1.2)
    assert site_login(client, learner.email, TEST_PASSWORD).status_code == 302


@pytest.mark.django_db
def test_sign_up_is_throttled_per_address():
    client = Client()
    statuses = [client.post("/accounts/signup/", {
        "full_name": f"Học Sinh Số {n}", "email": f"hs{n}@truong.edu.vn", "password": "Gio-Mua-He-2026!x",
        **ADULT_SIGNUP,
    }).status_code for n in range(7)]
    assert statuses[:5] == [302] * 5
    assert statuses[5:] == [429, 429]
