"""Who may do what: learners only their own, technicians only their labs, coordinators the network.

Every boundary is tried from the wrong side and must answer 401/403/404 without data.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from fablab_ops.accounts.models import ApiToken
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def world(lab, other_lab):
    owner = factories.LearnerFactory(full_name="Chủ Sở Hữu Bí Mật", email="owner@example.vn")
    seat = factories.SeatBookingFactory(learner=owner, session__course__lab=lab, session__lab=lab)
    machine = factories.MachineFactory(lab=lab)
    reservation = factories.ReservationFactory(user=owner, machine=machine)
    return {"owner": owner, "seat": seat, "reservation": reservation, "machine": machine, "lab": lab,
            "other_lab": other_lab}


def own_things(world):
    seat, reservation = world["seat"].pk, world["reservation"].pk
    return [
        ("get", f"/api/courses/bookings/{seat}"),
        ("post", f"/api/courses/bookings/{seat}/cancel"),
        ("post", f"/api/courses/bookings/{seat}/confirm"),
        ("post", f"/api/courses/bookings/{seat}/rotate-ticket"),
        ("get", f"/api/courses/bookings/{seat}/ticket.svg"),
        ("get", f"/api/courses/bookings/{seat}/calendar.ics"),
        ("get", f"/api/booking/reservations/{reservation}"),
        ("post", f"/api/booking/reservations/{reservation}/cancel"),
        ("post", f"/api/booking/reservations/{reservation}/rotate-ticket"),
        ("get", f"/api/booking/reservations/{reservation}/ticket.svg"),
        ("get", f"/api/booking/reservations/{reservation}/calendar.ics"),
        ("get", f"/courses/bookings/{seat}/"),
        ("get", f"/booking/reservations/{reservation}/"),
    ]


def staff_things(world, lab):
    return [
        ("post", "/api/booking/checkin", {"token": "x", "lab": lab.slug}),
        ("post", "/api/booking/checkin/manual", {"kind": "seat", "id": world["seat"].pk, "lab": lab.slug}),
        ("get", f"/api/booking/labs/{lab.slug}/door", None),
        ("get", f"/api/booking/labs/{lab.slug}/timeline", None),
        ("post", f"/api/booking/machines/{world['machine'].lab.slug}/{world['machine'].slug}/maintenance",
         {"start": timezone.now().isoformat(), "end": (timezone.now() + timedelta(hours=1)).isoformat(),
          "reason": "x"}),
        ("get", f"/booking/labs/{lab.slug}/scanner/", None),
        ("get", f"/booking/labs/{lab.slug}/day/", None),
    ]


def call(client, method, url, body=None):
    if method == "get":
        return client.get(url)
    return client.post(url, body or {}, content_type="application/json")


@pytest.mark.django_db
def test_another_learner_gets_404_and_no_data_for_someone_elses_bookings(world):
    intruder = client_for(factories.LearnerFactory())
    for method, url in own_things(world):
        response = call(intruder, method, url)
        assert response.status_code == 404, url
        assert b"owner@example.vn" not in response.content and "Chủ Sở Hữu".encode() not in response.content
    world["seat"].refresh_from_db()
    assert world["seat"].status == "confirmed"


@pytest.mark.django_db
def test_the_owner_reaches_their_own_bookings(world):
    owner = client_for(world["owner"])
    for method, url in own_things(world):
        if method == "get":
            assert owner.get(url).status_code == 200, url


@pytest.mark.django_db
def test_nobody_logged_out_reaches_personal_or_staff_endpoints(world, client):
    for method, url in own_things(world):
        if url.startswith("/api/"):
            assert call(client, method, url).status_code == 401, url
        else:
            assert call(client, method, url).status_code == 302, url  # to the login page
    assert client.get("/api/booking/reservations/mine").status_code == 401
    assert client.get("/api/courses/bookings/mine").status_code == 401


@pytest.mark.django_db
def test_a_learner_calling_technician_endpoints_is_refused(world, learner):
    client = client_for(learner)
    for method, url, body in staff_things(world, world["lab"]):
        assert call(client, method, url, body).status_code == 403, url
    assert client.get("/api/booking/checkin/refused").status_code == 403
    assert client.post("/api/booking/certifications", {"user_email": learner.email, "machine_type": "x",
                                                       "reason": "x"}, content_type="application/json"
                       ).status_code == 403


@pytest.mark.django_db
def test_a_technician_acts_only_for_their_own_lab(world, other_lab):
    stranger = client_for(factories.TechnicianFactory(labs=[other_lab]))
    for method, url, body in staff_things(world, world["lab"]):
        assert call(stranger, method, url, body).status_code == 403, url


@pytest.mark.django_db
def test_learners_and_technicians_cannot_schedule_classes(world, learner, technician):
    session = world["seat"].session
    for user in (learner, technician):
        client = client_for(user)
        assert client.post(f"/api/courses/sessions/{session.pk}/cancel", {"reason": "x"},
                           content_type="application/json").status_code == 403
        assert client.patch(f"/api/courses/sessions/{session.pk}", {"capacity": 16},
                            content_type="application/json").status_code == 403
        assert client.post("/api/courses/courses", {"kind": "other", "slug": "x", "title_vi": "x"},
                           content_type="application/json").status_code == 403
        assert client.get("/courses/manage/").status_code == 403
    session.refresh_from_db()
    assert session.status == "scheduled"


@pytest.mark.django_db
def test_coordinators_see_the_whole_network(world, coordinator):
    client = client_for(coordinator)
    for lab in (world["lab"], world["other_lab"]):
        assert client.get(f"/api/booking/labs/{lab.slug}/door").status_code == 200
        assert client.get(f"/api/booking/labs/{lab.slug}/timeline").status_code == 200


@pytest.mark.django_db
def test_browser_sessions_need_csrf_but_api_tokens_do_not(world, learner):
    session = world["seat"].session
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(learner)
    assert browser.post(f"/api/courses/sessions/{session.pk}/book").status_code == 403
    _, token = ApiToken.issue(learner, "integration")
    integration = Client(enforce_csrf_checks=True)
    response = integration.post(f"/api/courses/sessions/{session.pk}/book", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 201


@pytest.mark.django_db
def test_a_revoked_api_token_stops_working(learner, client):
    row, token = ApiToken.issue(learner, "old phone")
    assert client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    row.revoked_at = timezone.now()
    row.save()
    assert client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
