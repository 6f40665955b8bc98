"""Times the API gives out carry the labs' offset (+07:00), as its schema promises: never a naive
time, never UTC for one session and local for another, never a local-mean-time offset."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.conftest import client_for

LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?\+07:00$")


@pytest.mark.django_db
def test_a_learner_browsing_classes_sees_start_and_end_in_vietnam_time(client):
    session = factories.SessionFactory()
    [listed] = client.get("/api/courses/sessions").json()
    assert LOCAL.match(listed["start"]) and LOCAL.match(listed["end"]), listed
    assert listed["start"].startswith(timezone.localtime(session.start).strftime("%Y-%m-%dT%H:%M"))


@pytest.mark.django_db
def test_a_coordinator_previewing_a_series_sees_offsets_on_every_sitting(coordinator):
    response = client_for(coordinator).post("/api/courses/series/preview", {
        "course": "x", "rule": "FREQ=WEEKLY;COUNT=3", "first_date": "2026-12-05", "start_time": "08:00",
        "end_time": "11:30", "capacity": 15}, content_type="application/json")
    assert response.status_code == 200, response.content
    sittings = response.json()
    assert len(sittings) == 3
    assert all(LOCAL.match(s["start"]) and LOCAL.match(s["end"]) for s in sittings), sittings
    assert sittings[0]["start"] == "2026-12-05T08:00:00+07:00"


@pytest.mark.django_db
def test_a_technicians_timeline_and_door_list_carry_offsets(lab, technician):
    machine = factories.MachineFactory(lab=lab)
    start = timezone.now().replace(microsecond=0) + timedelta(hours=1)
    factories.ReservationFactory(machine=machine, start=start, end=start + timedelta(hours=1))
    client = client_for(technician)
    rows = client.get(f"/api/booking/labs/{lab.slug}/timeline?day={timezone.localdate(start)}").json()
    [reservation] = rows[0]["reservations"]
    assert LOCAL.match(reservation["start"]) and LOCAL.match(reservation["end"]), reservation


@pytest.mark.django_db
def test_a_reservation_with_a_time_given_without_offset_is_read_in_vietnam_time(learner, lab):
    from fablab_ops.booking.models import Certification

    machine = factories.MachineFactory(lab=lab, slug="laser-01")
    Certification.objects.create(user=learner, machine_type=machine.machine_type, method="manual",
                                 granted_at=timezone.now())
    day = timezone.localdate() + timedelta(days=2)
    response = client_for(learner).post("/api/booking/reservations", {
        "lab": lab.slug, "machine": "laser-01", "start": f"{day}T09:00:00", "end": f"{day}T10:00:00",
    }, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["start"] == f"{day}T09:00:00+07:00"


@pytest.mark.django_db
def test_a_session_stored_with_a_nineteenth_century_date_is_never_written_with_a_local_mean_time_offset(client):
    from datetime import UTC, datetime

    old = factories.SessionFactory(start=datetime(1899, 6, 1, 2, 0, tzinfo=UTC),
                                   end=datetime(1899, 6, 1, 5, 0, tzinfo=UTC))
    body = client.get(f"/api/courses/sessions/{old.pk}").json()
    assert "+07:06" not in body["start"] and "+07:06" not in body["end"]
    assert body["start"] in ("1899-06-01T02:00:00Z", "1899-06-01T02:00:00+00:00")
