import pytest
from django.core.cache import cache

from tests.factories import ADULT_SIGNUP, TEST_PASSWORD


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()


@pytest.mark.django_db
def test_a_newcomer_signs_up_with_email_and_is_logged_in(client):
    response = client.post("/accounts/signup/", {
        "full_name": "Phạm Thị Hồng", "email": "Hong@Example.vn", "phone": "", "password": "m4y-in-3d-rat-vui",
        **ADULT_SIGNUP,
    })
    assert response.status_code == 302
    me = client.get("/api/accounts/me").json()
    assert me["email"] == "hong@example.vn"
    assert me["role"] == "learner"


@pytest.mark.django_db
def test_signup_refuses_an_email_already_registered(client, learner):
    response = client.post("/accounts/signup/", {
        "full_name": "Ai Đó", "email": learner.email.upper(), "password": "m4y-in-3d-rat-vui",
    })
    assert response.status_code == 200
    assert "Email này đã được đăng ký." in response.content.decode()


@pytest.mark.django_db
def test_a_learner_logs_in_with_email_and_password(client, learner):
    response = client.post("/accounts/login/", {"username": learner.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.get("/api/accounts/me").status_code == 200


@pytest.mark.django_db
def test_password_guessing_is_throttled_even_with_the_right_password_afterwards(client, learner):
    for _ in range(5):
        assert client.post("/accounts/login/", {"username": learner.email, "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": learner.email, "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert client.get("/api/accounts/me").status_code == 401
