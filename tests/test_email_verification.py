"""A new account may look around at once, but books a seat or a machine only once its e-mail address is proven."""

import importlib
import re
from datetime import timedelta

import pytest
from django.core import mail, signing
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from fablab_ops.accounts.models import User
from fablab_ops.booking.models import Reservation
from fablab_ops.courses.models import SeatBooking
from tests import factories
from tests.conftest import client_for


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()


def sign_up(client, email="hong@example.vn"):
    response = client.post("/accounts/signup/", {
        "full_name": "Phạm Thị Hồng", "email": email, "phone": "", "password": "m4y-in-3d-rat-vui",
        **factories.ADULT_SIGNUP,
    })
    assert response.status_code == 302
    return User.objects.get(email=email)


def link_path(message) -> str:
    return re.sub(r"^https?://[^/]+", "", re.search(r"https?://\S+", message.body).group(0))


def tomorrow_at(hour: int):
    day = timezone.localdate() + timedelta(days=1)
    return timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time())) + timedelta(hours=hour)


@pytest.mark.django_db
def test_sign_up_sends_a_verification_link_and_the_learner_may_browse_meanwhile(client):
    learner = sign_up(client)
    assert learner.email_verified_at is None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["hong@example.vn"]
    assert "Xác nhận email" in mail.outbox[0].subject
    page = client.get("/courses/").content.decode()
    assert page.count("Email của bạn chưa được xác nhận") == 1
    assert "Gửi lại email xác nhận" in page
    assert client.get("/api/accounts/me").json()["email_verified"] is False


@pytest.mark.django_db
def test_an_unverified_learner_cannot_book_a_seat_until_the_link_is_followed(client):
    session = factories.SessionFactory()
    learner = sign_up(client)

    refused = client.post(f"/api/courses/sessions/{session.pk}/book")
    assert refused.status_code == 403
    assert refused.json()["code"] == "email_unverified"

    page = client.post(f"/courses/sessions/{session.pk}/book/", follow=True).content.decode()
    assert "Hãy xác nhận email của bạn" in page
    assert "Gửi lại email xác nhận" in page
    assert not SeatBooking.objects.filter(learner=learner).exists()

    done = client.get(link_path(mail.outbox[0]), follow=True)
    assert "Đã xác nhận email" in done.content.decode()
    learner.refresh_from_db()
    assert learner.email_verified_at is not None
    assert "Email của bạn chưa được xác nhận" not in client.get("/courses/").content.decode()
    assert client.post(f"/api/courses/sessions/{session.pk}/book").status_code == 201


@pytest.mark.django_db
def test_an_unverified_learner_cannot_reserve_a_machine(client):
    machine = factories.MachineFactory(machine_type=factories.MachineTypeFactory(requires_induction=False))
    sign_up(client)
    start = tomorrow_at(9)
    response = client.post("/api/booking/reservations", {
        "lab": machine.lab.slug, "machine": machine.slug, "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "email_unverified"
    assert not Reservation.objects.exists()


@pytest.mark.django_db
def test_the_verification_link_can_be_sent_again_but_not_endlessly(client):
    sign_up(client)
    response = client.post("/accounts/verify/resend/", {"next": "/courses/"})
    assert response.status_code == 302 and response["Location"] == "/courses/"
    assert len(mail.outbox) == 2
    for _ in range(4):
        client.post("/accounts/verify/resend/")
    assert len(mail.outbox) == 3
    assert "thử lại sau" in client.get("/courses/").content.decode()


@pytest.mark.django_db
def test_the_resend_button_never_sends_the_learner_elsewhere(client):
    sign_up(client)
    response = client.post("/accounts/verify/resend/", {"next": "https://evil.example/"})
    assert response["Location"] == "/courses/"


@pytest.mark.django_db
def test_an_old_verification_link_has_expired(client, monkeypatch):
    learner = sign_up(client)
    path = link_path(mail.outbox[0])
    later = timezone.now().timestamp() + 8 * 24 * 3600
    monkeypatch.setattr(signing.time, "time", lambda: later)
    page = client.get(path)
    assert page.status_code == 400
    assert "Liên kết xác nhận đã hết hạn" in page.content.decode()
    assert "Gửi lại email xác nhận" in page.content.decode()
    learner.refresh_from_db()
    assert learner.email_verified_at is None


@pytest.mark.django_db
def test_a_forged_verification_link_verifies_nobody(client):
    learner = sign_up(client)
    forged = signing.dumps({"u": learner.pk, "e": learner.email}, salt="something else")
    assert client.get(f"/accounts/verify/{forged}/").status_code == 400
    learner.refresh_from_db()
    assert learner.email_verified_at is None


@pytest.mark.django_db
def test_resetting_the_password_through_the_mailed_link_also_proves_the_address(client):
    learner = sign_up(client)
    other_device = Client()
    other_device.post("/accounts/password_reset/", {"email": learner.email})
    form_page = other_device.get(link_path(mail.outbox[-1]), follow=True)
    password = "Xuong-che-tao-mua-he-2026"
    other_device.post(form_page.redirect_chain[-1][0], {"new_password1": password, "new_password2": password})
    learner.refresh_from_db()
    assert learner.email_verified_at is not None


@pytest.mark.django_db
def test_accounts_made_before_verification_existed_count_as_verified():
    migration = importlib.import_module("fablab_ops.accounts.migrations.0004_self_service")
    old = factories.LearnerFactory(email_verified_at=None)
    from django.apps import apps

    migration.verify_existing_accounts(apps, None)
    old.refresh_from_db()
    assert old.email_verified_at is not None


@pytest.mark.django_db
def test_the_demo_accounts_are_verified():
    from fablab_ops.demo import data as demo

    demo.seed()
    assert not User.objects.filter(email_verified_at__isnull=True).exists()
    learner = User.objects.get(email="hocvien@fablab.local")
    assert learner.email_verified


@pytest.mark.django_db
def test_people_made_by_the_factories_are_verified(learner):
    assert learner.email_verified
    response = client_for(learner).post(f"/api/courses/sessions/{factories.SessionFactory().pk}/book")
    assert response.status_code == 201


@pytest.mark.django_db
def test_an_administrator_may_mark_an_address_verified_for_someone_registered_at_the_desk():
    person = factories.LearnerFactory(email_verified_at=None)
    response = client_for(factories.AdminFactory()).post("/admin/accounts/user/", {
        "action": "mark_email_verified", "_selected_action": [person.pk],
    })
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.email_verified
