"""Personal API tokens: named, shown once at creation, listed with their prefix and last use, revoked on purpose."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from fablab_ops.accounts.models import ApiToken
from tests.conftest import client_for
from tests.factories import AdminFactory, LearnerFactory

SECRET = re.compile(r"fo_[A-Za-z0-9_-]{40,}")


def api_me(token: str):
    return Client().get("/api/accounts/me", headers={"authorization": f"Bearer {token}"})


def create_token(client, name="Home Assistant") -> str:
    response = client.post("/accounts/tokens/", {"name": name})
    assert response.status_code == 200
    return SECRET.search(response.content.decode()).group(0)


@pytest.mark.django_db
def test_a_learner_creates_a_named_token_sees_it_once_and_uses_it():
    learner = LearnerFactory(email="lan@example.vn")
    client = client_for(learner)
    assert "Chưa có khóa API nào" in client.get("/accounts/tokens/").content.decode()

    response = client.post("/accounts/tokens/", {"name": "Home Assistant"})
    page = response.content.decode()
    assert "Chỉ hiện một lần" in page
    secret = SECRET.search(page).group(0)
    assert "no-store" in response.headers["Cache-Control"]

    assert api_me(secret).json()["email"] == "lan@example.vn"

    listing = client.get("/accounts/tokens/").content.decode()
    assert "Home Assistant" in listing
    assert secret[:8] in listing
    assert secret not in listing
    assert "Chưa dùng" not in listing  # it was just used
    token = ApiToken.objects.get(user=learner)
    assert token.digest == ApiToken.hash(secret) and token.last_used_at is not None


@pytest.mark.django_db
def test_a_token_needs_a_name():
    client = client_for(LearnerFactory())
    response = client.post("/accounts/tokens/", {"name": "  "})
    assert response.status_code == 200
    assert not ApiToken.objects.exists()
    assert SECRET.search(response.content.decode()) is None


@pytest.mark.django_db
def test_revoking_asks_once_more_then_the_token_stops_working():
    learner = LearnerFactory()
    client = client_for(learner)
    secret = create_token(client)
    token = ApiToken.objects.get(user=learner)

    confirm = client.get(f"/accounts/tokens/{token.pk}/revoke/")
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Home Assistant" in text
    assert "sẽ không dùng được khóa này nữa" in text
    assert api_me(secret).status_code == 200  # looking is not revoking

    response = client.post(f"/accounts/tokens/{token.pk}/revoke/")
    assert response.status_code == 302
    assert api_me(secret).status_code == 401
    listing = client.get("/accounts/tokens/").content.decode()
    assert "Đã thu hồi khóa API “Home Assistant”" in listing
    assert f"/accounts/tokens/{token.pk}/revoke/" not in listing


@pytest.mark.django_db
def test_nobody_revokes_or_sees_another_learners_token():
    owner, other = LearnerFactory(), LearnerFactory()
    secret = create_token(client_for(owner), name="Máy in ở nhà")
    token = ApiToken.objects.get(user=owner)
    intruder = client_for(other)
    assert "Máy in ở nhà" not in intruder.get("/accounts/tokens/").content.decode()
    assert intruder.get(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert intruder.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert api_me(secret).status_code == 200


@pytest.mark.django_db
def test_the_tokens_page_needs_a_login():
    response = Client().get("/accounts/tokens/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_token_without_a_digest_cannot_be_saved():
    learner = LearnerFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.create(user=learner, name="made by hand")


@pytest.mark.django_db
def test_an_administrator_creates_a_token_in_the_admin_and_sees_the_secret_once():
    admin = AdminFactory()
    learner = LearnerFactory(email="lan@example.vn")
    client = client_for(admin)
    assert client.get("/admin/accounts/apitoken/add/").status_code == 200
    response = client.post("/admin/accounts/apitoken/add/", {"user": learner.pk, "name": "Tích hợp báo cáo"})
    assert response.status_code == 200
    page = response.content.decode()
    secret = SECRET.search(page).group(0)
    assert "Chỉ hiện một lần" in page
    token = ApiToken.objects.get(user=learner)
    assert token.name == "Tích hợp báo cáo"
    assert token.digest == ApiToken.hash(secret)
    assert api_me(secret).json()["email"] == "lan@example.vn"
    assert secret not in client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()


@pytest.mark.django_db
def test_the_admin_revokes_tokens_with_an_action():
    admin = AdminFactory()
    learner = LearnerFactory()
    secret = create_token(client_for(learner))
    token = ApiToken.objects.get(user=learner)
    response = client_for(admin).post("/admin/accounts/apitoken/", {
        "action": "revoke_tokens", "_selected_action": [token.pk],
    })
    assert response.status_code == 302
    assert api_me(secret).status_code == 401
