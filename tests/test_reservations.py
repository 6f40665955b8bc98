"""Learners reserve machine time in any lab once certified; every refusal names its rule."""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.booking import services
from fablab_ops.booking.models import Reservation, ReservationStatus
from fablab_ops.machines.models import MachineStatus
from tests import factories
from tests.conftest import client_for

HCM = timezone.get_default_timezone()


def at(days: int, hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), HCM)


@pytest.fixture
def laser_type(db):
    return factories.MachineTypeFactory(slug="laser-cutter", name_vi="Máy cắt laser", requires_induction=True,
                                        min_reservation_minutes=30, max_reservation_minutes=180,
                                        booking_horizon_days=14, weekly_hours_limit=4)


@pytest.fixture
def laser(lab, laser_type):
    return factories.MachineFactory(lab=lab, machine_type=laser_type, slug="laser-01", name="Laser BIIC")


@pytest.fixture
def certified(learner, laser_type):
    factories.CertificationFactory(user=learner, machine_type=laser_type)
    return learner


def reserve_via_api(user, machine, start, end):
    return client_for(user).post("/api/booking/reservations", {
        "lab": machine.lab.slug, "machine": machine.slug, "start": start.isoformat(), "end": end.isoformat(),
    }, content_type="application/json")


@pytest.mark.django_db
def test_a_certified_learner_reserves_a_laser_cutter(certified, laser):
    response = reserve_via_api(certified, laser, at(1, 10), at(1, 11))
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "confirmed" and body["ticket"]
    assert Notification.objects.filter(user=certified, kind="reservation_confirmed").exists()


@pytest.mark.django_db
def test_back_to_back_slots_both_succeed(certified, laser):
    assert reserve_via_api(certified, laser, at(1, 10), at(1, 11)).status_code == 201
    other = factories.LearnerFactory()
    factories.CertificationFactory(user=other, machine_type=laser.machine_type)
    assert reserve_via_api(other, laser, at(1, 11), at(1, 12)).status_code == 201
    assert reserve_via_api(other, laser, at(1, 10, 30), at(1, 11, 30)).json()["code"] == "slot_taken"


@pytest.mark.parametrize("case, code", [
    ("uncertified", "not_certified"),
    ("before_opening", "outside_opening_hours"),
    ("too_short", "too_short"),
    ("too_long", "too_long"),
    ("too_far", "too_far_ahead"),
    ("past", "in_the_past"),
    ("out_of_order", "machine_unavailable"),
    ("maintenance", "in_maintenance"),
    ("weekly", "weekly_limit_reached"),
])
@pytest.mark.django_db
def test_each_refusal_names_its_rule(case, code, learner, laser):
    user = learner
    if case != "uncertified":
        factories.CertificationFactory(user=learner, machine_type=laser.machine_type)
    start, end = at(1, 10), at(1, 11)
    if case == "before_opening":
        start, end = at(1, 6), at(1, 7)
    elif case == "too_short":
        end = start + timedelta(minutes=15)
    elif case == "too_long":
        end = start + timedelta(hours=4)
    elif case == "too_far":
        start, end = at(20, 10), at(20, 11)
    elif case == "past":
        start, end = at(-1, 10), at(-1, 11)
    elif case == "out_of_order":
        laser.status = MachineStatus.OUT_OF_ORDER
        laser.save()
    elif case == "maintenance":
        factories.MaintenanceWindowFactory(machine=laser, start=at(1, 9), end=at(1, 12))
    elif case == "weekly":
        day = timezone.localdate() + timedelta(days=7)
        monday = day - timedelta(days=day.weekday())
        start = datetime.combine(monday, time(9), HCM)
        end = start + timedelta(hours=3)
        assert reserve_via_api(user, laser, start, end).status_code == 201
        start, end = start + timedelta(days=1), start + timedelta(days=1, hours=2)
    response = reserve_via_api(user, laser, start, end)
    assert response.status_code == 409
    assert response.json()["code"] == code
    assert response.json()["message"]


@pytest.mark.django_db
def test_a_machine_type_without_induction_needs_no_certificate(learner, lab):
    bench = factories.MachineFactory(lab=lab, machine_type=factories.MachineTypeFactory(requires_induction=False))
    assert reserve_via_api(learner, bench, at(1, 10), at(1, 11)).status_code == 201


@pytest.mark.django_db
def test_maintenance_flags_the_reservations_it_hits_and_tells_their_holders(certified, laser, technician):
    hit = services.reserve(certified, laser, at(2, 10), at(2, 11))
    spared = services.reserve(certified, laser, at(2, 14), at(2, 15))
    response = client_for(technician).post(f"/api/booking/machines/{laser.lab.slug}/{laser.slug}/maintenance", {
        "start": at(2, 9).isoformat(), "end": at(2, 12).isoformat(), "reason": "Thay ống laser",
    }, content_type="application/json")
    assert response.status_code == 201 and response.json()["flagged_reservations"] == 1
    hit.refresh_from_db()
    spared.refresh_from_db()
    assert hit.maintenance_conflict and not spared.maintenance_conflict
    assert Notification.objects.filter(user=certified, kind="reservation_maintenance").count() == 1


@pytest.mark.django_db
def test_a_technician_of_another_lab_cannot_schedule_maintenance(laser, other_lab):
    outsider = factories.TechnicianFactory(labs=[other_lab])
    response = client_for(outsider).post(f"/api/booking/machines/{laser.lab.slug}/{laser.slug}/maintenance", {
        "start": at(2, 9).isoformat(), "end": at(2, 12).isoformat(), "reason": "x",
    }, content_type="application/json")
    assert response.status_code == 403


@pytest.mark.django_db
def test_a_reservation_not_checked_in_is_released_as_a_no_show_and_the_slot_reopens(certified, laser):
    reservation = services.reserve(certified, laser, at(1, 10), at(1, 11))
    assert services.release_no_shows(now=reservation.start + timedelta(minutes=10)) == 0
    assert services.release_no_shows(now=reservation.start + timedelta(minutes=16)) == 1
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.NO_SHOW
    other = factories.LearnerFactory()
    factories.CertificationFactory(user=other, machine_type=laser.machine_type)
    later = services.reserve(other, laser, reservation.start + timedelta(minutes=30), reservation.end,
                             now=reservation.start + timedelta(minutes=20))
    assert later.status == ReservationStatus.CONFIRMED
    assert Notification.objects.filter(user=certified, kind="reservation_no_show").exists()


@pytest.mark.django_db
def test_three_no_shows_in_sixty_days_shorten_the_horizon_and_say_why(certified, laser):
    for days_ago in (3, 10, 20):
        factories.ReservationFactory(user=certified, machine=laser, status=ReservationStatus.NO_SHOW,
                                     start=timezone.now() - timedelta(days=days_ago),
                                     end=timezone.now() - timedelta(days=days_ago) + timedelta(hours=1))
    response = reserve_via_api(certified, laser, at(5, 10), at(5, 11))
    assert response.status_code == 409
    assert response.json()["code"] == "no_show_penalty"
    assert reserve_via_api(certified, laser, at(1, 10), at(1, 11)).status_code == 201


@pytest.mark.django_db
def test_cancelling_frees_the_slot(certified, laser):
    reservation = services.reserve(certified, laser, at(1, 10), at(1, 11))
    assert client_for(certified).post(f"/api/booking/reservations/{reservation.pk}/cancel").status_code == 200
    other = factories.LearnerFactory()
    factories.CertificationFactory(user=other, machine_type=laser.machine_type)
    assert reserve_via_api(other, laser, at(1, 10), at(1, 11)).status_code == 201


@pytest.mark.django_db
def test_a_learner_cannot_see_or_cancel_another_learners_reservation(certified, laser, learner):
    stranger = factories.LearnerFactory()
    reservation = services.reserve(certified, laser, at(1, 10), at(1, 11))
    client = client_for(stranger)
    assert client.get(f"/api/booking/reservations/{reservation.pk}").status_code == 404
    assert client.post(f"/api/booking/reservations/{reservation.pk}/cancel").status_code == 404
    assert client.get(f"/booking/reservations/{reservation.pk}/").status_code == 404
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.CONFIRMED


@pytest.mark.django_db
def test_the_network_search_finds_the_earliest_slots_in_every_lab(certified, laser, other_lab):
    far = factories.MachineFactory(lab=other_lab, machine_type=laser.machine_type, slug="laser-01")
    # BIIC's laser is busy all tomorrow morning; the search still offers both labs, soonest first.
    response = client_for(certified).get("/api/booking/search", {"machine_type": "laser-cutter", "minutes": 60})
    assert response.status_code == 200
    slots = response.json()
    assert {s["lab"] for s in slots} == {laser.lab.slug, far.lab.slug}
    assert [s["start"] for s in slots] == sorted(s["start"] for s in slots)
    first = slots[0]
    assert reserve_via_api(certified, services.machine_by_slug(first["lab"], first["machine"]),
                           datetime.fromisoformat(first["start"]), datetime.fromisoformat(first["end"])
                           ).status_code == 201


@pytest.mark.django_db
def test_the_network_search_is_refused_without_the_certificate(learner, laser):
    response = client_for(learner).get("/api/booking/search", {"machine_type": "laser-cutter", "minutes": 60})
    assert response.status_code == 409 and response.json()["code"] == "not_certified"


@pytest.mark.django_db
def test_a_lab_day_timeline_is_for_its_technicians_and_coordinators(certified, laser, technician, other_lab,
                                                                    coordinator):
    reservation = services.reserve(certified, laser, at(1, 10), at(1, 11))
    url = f"/api/booking/labs/{laser.lab.slug}/timeline"
    rows = client_for(technician).get(url, {"day": timezone.localdate(reservation.start).isoformat()}).json()
    assert rows[0]["reservations"][0]["user"] == certified.full_name
    assert client_for(coordinator).get(url).status_code == 200
    assert client_for(certified).get(url).status_code == 403
    assert client_for(factories.TechnicianFactory(labs=[other_lab])).get(url).status_code == 403
    assert client_for(technician).get(f"/booking/labs/{laser.lab.slug}/day/").status_code == 200
    assert client_for(certified).get(f"/booking/labs/{laser.lab.slug}/day/").status_code == 403


@pytest.mark.django_db
def test_reservation_ticket_and_calendar(certified, laser):
    reservation = services.reserve(certified, laser, at(1, 10), at(1, 11))
    client = client_for(certified)
    page = client.get(f"/booking/reservations/{reservation.pk}/").content.decode()
    assert "<svg" in page and 'id="ticket-token"' in page
    ics = client.get(f"/api/booking/reservations/{reservation.pk}/calendar.ics").content.decode()
    assert f"UID:reservation-{reservation.pk}@" in ics and "TZID=Asia/Ho_Chi_Minh" in ics


@pytest.mark.django_db
def test_an_uncertified_learner_is_pointed_to_the_next_induction_that_still_has_a_seat(learner, laser, laser_type,
                                                                                      lab):
    induction = factories.InductionCourseFactory(lab=lab, certifies=laser_type, title_vi="Hướng dẫn máy cắt laser")
    full = factories.SessionFactory(course=induction, lab=lab, start=at(2, 9), end=at(2, 11), capacity=1)
    factories.SeatBookingFactory(session=full)
    open_one = factories.SessionFactory(course=induction, lab=lab, start=at(5, 14), end=at(5, 16), capacity=10)

    refused = reserve_via_api(learner, laser, at(1, 10), at(1, 11))
    body = refused.json()
    assert refused.status_code == 409 and body["code"] == "not_certified"
    day = timezone.localtime(open_one.start)
    assert f"Hướng dẫn máy cắt laser, 14:00 ngày {day:%d/%m/%Y}, {lab.name_vi}" in body["message"]
    assert body["details"]["next_induction"]["url"] == f"/courses/sessions/{open_one.pk}/"

    page = client_for(learner).get("/booking/search/", {"machine_type": laser_type.slug, "minutes": 60})
    assert f'href="/courses/sessions/{open_one.pk}/"' in page.content.decode()
    assert f"/courses/sessions/{full.pk}/" not in page.content.decode()

    followed = client_for(learner).post("/booking/reserve/", {
        "lab": lab.slug, "machine": laser.slug, "start": at(1, 10).isoformat(), "end": at(1, 11).isoformat()},
        follow=True)
    assert f'<a href="/courses/sessions/{open_one.pk}/">' in followed.content.decode()


@pytest.mark.django_db
def test_with_no_induction_open_the_refusal_says_so(learner, laser):
    body = reserve_via_api(learner, laser, at(1, 10), at(1, 11)).json()
    assert "Hiện chưa có buổi hướng dẫn nào còn chỗ" in body["message"]
