"""Technicians check people in at the door by their QR ticket; every refusal says why."""

import json
import threading
import uuid
from datetime import datetime, time, timedelta
from time import monotonic as time_now

import paho.mqtt.client as mqtt
import pytest
from django.db import connection
from django.utils import timezone

from fablab_ops.booking import services, tickets
from fablab_ops.booking.models import CheckInRecord, MachineDesiredState, Reservation, ReservationStatus
from fablab_ops.courses import services as courses
from fablab_ops.courses.models import SeatBooking, SeatStatus
from fablab_ops.door import services as door
from fablab_ops.machines.commands import broker_settings
from tests import factories
from tests.conftest import client_for


def seat_token(booking) -> str:
    return tickets.sign(tickets.SEAT, booking.ticket_code)


@pytest.fixture
def class_now(lab):
    """An Arduino class at the lab that started ten minutes ago."""
    start = timezone.now() - timedelta(minutes=10)
    return factories.SessionFactory(course=factories.CourseFactory(lab=lab), start=start,
                                    end=start + timedelta(hours=3))


@pytest.fixture
def seat(class_now, learner):
    return factories.SeatBookingFactory(session=class_now, learner=learner)


def scan(user, token, lab):
    return client_for(user).post("/api/booking/checkin", {"token": token, "lab": lab.slug},
                                 content_type="application/json")


@pytest.mark.django_db
def test_a_valid_ticket_checks_the_learner_in_and_says_who(technician, seat, lab):
    response = scan(technician, seat_token(seat), lab)
    assert response.status_code == 200
    body = response.json()
    assert (body["outcome"], body["person"]) == ("checked_in", seat.learner.full_name)
    seat.refresh_from_db()
    assert seat.status == SeatStatus.ATTENDED and seat.checked_in_by == technician
    record = CheckInRecord.objects.get(pk=body["record_id"])
    assert (record.lab, record.by, record.seat_booking) == (lab, technician, seat)


@pytest.mark.django_db
def test_a_second_scan_says_already_checked_in_and_counts_once(technician, seat, lab):
    first = scan(technician, seat_token(seat), lab).json()
    second = scan(technician, seat_token(seat), lab).json()
    at = timezone.localtime(timezone.datetime.fromisoformat(first["checked_in_at"])).strftime("%H:%M")
    assert second["outcome"] == "already_checked_in"
    assert second["message"] == f"Đã check-in lúc {at}"
    assert SeatBooking.objects.filter(pk=seat.pk, status=SeatStatus.ATTENDED).count() == 1
    assert CheckInRecord.objects.filter(outcome="checked_in").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_doors_scanning_the_same_ticket_at_once_check_in_once(postgres, lab):
    start = timezone.now() - timedelta(minutes=5)
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), start=start,
                                       end=start + timedelta(hours=2))
    booking = factories.SeatBookingFactory(session=session)
    doors = [factories.TechnicianFactory(labs=[lab]) for _ in range(8)]
    barrier = threading.Barrier(len(doors))
    outcomes = []

    def door(technician):
        try:
            barrier.wait()
            outcomes.append(scan(technician, seat_token(booking), lab).json()["outcome"])
        finally:
            connection.close()

    threads = [threading.Thread(target=door, args=(t,)) for t in doors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["already_checked_in"] * 7 + ["checked_in"]
    assert CheckInRecord.objects.filter(outcome="checked_in").count() == 1


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-3],                              # truncated
    lambda t: t[:5] + ("A" if t[5] != "A" else "B") + t[6:],  # one character altered
    lambda t: "S" + "x" * 22 + "." + "y" * 22,     # forged from scratch
    lambda t: "",                                   # empty
    lambda t: "https://example.com/not-a-ticket",   # another QR code entirely
])
@pytest.mark.django_db
def test_forged_altered_or_truncated_tickets_are_refused_and_recorded(tamper, technician, seat, lab):
    response = scan(technician, tamper(seat_token(seat)), lab)
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_token"
    assert SeatBooking.objects.get(pk=seat.pk).status == SeatStatus.CONFIRMED
    assert CheckInRecord.objects.filter(outcome="refused", reason="invalid_token").count() == 1


@pytest.mark.django_db
def test_one_bookings_ticket_never_checks_in_another(technician, class_now, lab):
    first = factories.SeatBookingFactory(session=class_now)
    second = factories.SeatBookingFactory(session=class_now)
    scan(technician, seat_token(first), lab)
    assert SeatBooking.objects.get(pk=second.pk).status == SeatStatus.CONFIRMED
    # A seat ticket cannot be replayed as a machine reservation ticket either.
    payload, mac = seat_token(first).split(".")
    assert scan(technician, "R" + payload[1:] + "." + mac, lab).json()["code"] == "invalid_token"


@pytest.mark.django_db
def test_a_rotated_ticket_replaces_the_old_one(technician, seat, lab, learner):
    leaked = seat_token(seat)
    response = client_for(learner).post(f"/api/courses/bookings/{seat.pk}/rotate-ticket")
    fresh = response.json()["ticket"]
    assert fresh != leaked
    assert scan(technician, leaked, lab).json()["code"] == "unknown_token"
    assert scan(technician, fresh, lab).json()["outcome"] == "checked_in"


@pytest.mark.django_db
def test_a_cancelled_booking_is_refused(technician, lab, learner):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    booking = courses.book_seat(session.pk, learner).booking
    token = seat_token(booking)
    courses.cancel_booking(booking.pk, learner)
    session.start = timezone.now() - timedelta(minutes=1)
    session.save()
    assert scan(technician, token, lab).json()["code"] == "cancelled"


@pytest.mark.django_db
def test_refusals_for_the_wrong_door_or_time(lab, other_lab, learner):
    technician = factories.TechnicianFactory(labs=[lab, other_lab])
    soon = timezone.now() + timedelta(hours=2)
    later = factories.SeatBookingFactory(session__course__lab=lab, session__lab=lab, session__start=soon,
                                         session__end=soon + timedelta(hours=1))
    past = timezone.now() - timedelta(hours=3)
    over = factories.SeatBookingFactory(session__course__lab=lab, session__lab=lab, session__start=past,
                                        session__end=past + timedelta(hours=1))
    assert scan(technician, seat_token(later), lab).json()["code"] == "too_early"
    assert scan(technician, seat_token(over), lab).json()["code"] == "too_late"
    assert scan(technician, seat_token(later), other_lab).json()["code"] == "wrong_lab"
    reasons = set(CheckInRecord.objects.filter(outcome="refused").values_list("reason", flat=True))
    assert reasons == {"too_early", "too_late", "wrong_lab"}


@pytest.mark.django_db
def test_check_in_opens_thirty_minutes_before_the_start(technician, lab):
    start = timezone.now() + timedelta(minutes=25)
    booking = factories.SeatBookingFactory(session__course__lab=lab, session__lab=lab, session__start=start,
                                           session__end=start + timedelta(hours=1))
    assert scan(technician, seat_token(booking), lab).json()["outcome"] == "checked_in"


@pytest.mark.django_db
def test_only_the_labs_technicians_and_coordinators_may_scan(seat, lab, other_lab, coordinator, learner):
    outsider = factories.TechnicianFactory(labs=[other_lab])
    assert scan(outsider, seat_token(seat), lab).status_code == 403
    assert scan(learner, seat_token(seat), lab).status_code == 403
    assert SeatBooking.objects.get(pk=seat.pk).status == SeatStatus.CONFIRMED
    assert scan(coordinator, seat_token(seat), lab).json()["outcome"] == "checked_in"


@pytest.mark.django_db
def test_checking_in_to_an_induction_records_attendance_and_certifies_nobody(technician, lab, learner):
    """The trainer certifies after the induction (tests/test_induction_results.py); the door only lets people in."""
    start = timezone.now() - timedelta(minutes=5)
    induction = factories.InductionCourseFactory(lab=lab)
    booking = factories.SeatBookingFactory(learner=learner, session__course=induction, session__lab=lab,
                                           session__start=start, session__end=start + timedelta(hours=2))
    assert scan(technician, seat_token(booking), lab).json()["outcome"] == "checked_in"
    assert SeatBooking.objects.get(pk=booking.pk).status == SeatStatus.ATTENDED
    assert not services.is_certified(learner, induction.certifies)


@pytest.mark.django_db
def test_a_mistaken_check_in_can_be_undone_within_minutes_only(technician, seat, lab):
    record_id = scan(technician, seat_token(seat), lab).json()["record_id"]
    client = client_for(technician)
    assert client.post(f"/api/booking/checkin/{record_id}/undo").status_code == 200
    assert SeatBooking.objects.get(pk=seat.pk).status == SeatStatus.CONFIRMED
    record_id = scan(technician, seat_token(seat), lab).json()["record_id"]
    with pytest.raises(Exception) as too_late:
        door.undo_check_in(record_id, by=technician, now=timezone.now() + timedelta(minutes=10))
    assert too_late.value.code == "undo_window_passed"


@pytest.mark.django_db
def test_manual_check_in_finds_people_by_name_or_phone(technician, seat, lab):
    client = client_for(technician)
    found = client.get(f"/api/booking/labs/{lab.slug}/door", {"q": seat.learner.phone[-4:]}).json()
    assert [entry["person"] for entry in found] == [seat.learner.full_name]
    response = client.post("/api/booking/checkin/manual", {"kind": "seat", "id": seat.pk, "lab": lab.slug},
                           content_type="application/json")
    assert response.json()["outcome"] == "checked_in"
    assert CheckInRecord.objects.get(pk=response.json()["record_id"]).method == "manual"


@pytest.mark.django_db
def test_coordinators_see_refused_scans_with_reasons(technician, seat, lab, coordinator):
    scan(technician, "garbage", lab)
    rows = client_for(coordinator).get("/api/booking/checkin/refused").json()
    assert [(r["lab"], r["reason"]) for r in rows] == [(lab.slug, "invalid_token")]


@pytest.mark.django_db
def test_the_scanner_page_is_for_the_labs_staff(technician, lab, other_lab, learner):
    assert client_for(technician).get(f"/booking/labs/{lab.slug}/scanner/").status_code == 200
    assert client_for(learner).get(f"/booking/labs/{lab.slug}/scanner/").status_code == 403
    outsider = factories.TechnicianFactory(labs=[other_lab])
    assert client_for(outsider).get(f"/booking/labs/{lab.slug}/scanner/").status_code == 403


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_checking_in_a_reservation_publishes_the_machines_desired_state_over_mqtt(mqtt_url, settings, lab,
                                                                                   technician):
    settings.MQTT_URL = mqtt_url
    machine = factories.MachineFactory(lab=lab, slug=f"laser-{uuid.uuid4().hex[:6]}", has_interlock=True)
    learner = factories.LearnerFactory(full_name="Trần Minh Khoa")
    factories.CertificationFactory(user=learner, machine_type=machine.machine_type)
    start = timezone.now() - timedelta(minutes=2)
    reservation = factories.ReservationFactory(machine=machine, user=learner, start=start,
                                               end=start + timedelta(hours=1))
    received, subscribed = [], threading.Event()
    broker = broker_settings(mqtt_url)
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    listener.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{machine.topic_prefix}/desired", qos=1)
    listener.on_subscribe = lambda *args: subscribed.set()
    # An empty payload is the retained message being cleared at the end of the test, not a state.
    listener.on_message = lambda c, u, message: message.payload and received.append(
        (json.loads(message.payload), message.retain))
    listener.connect(broker["host"], broker["port"])
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        token = tickets.sign(tickets.RESERVATION, reservation.ticket_code)
        assert scan(technician, token, lab).json()["outcome"] == "checked_in"
        deadline = timezone.now() + timedelta(seconds=10)
        while not received and timezone.now() < deadline:
            threading.Event().wait(0.1)
    finally:
        listener.publish(f"{machine.topic_prefix}/desired", b"", qos=1, retain=True).wait_for_publish(5)
        listener.loop_stop()
        listener.disconnect()
    assert len(received) == 1
    desired, _retain = received[0]
    assert (desired["v"], desired["holder"], desired["reservation"]) == (1, "Trần Minh Khoa", reservation.pk)
    assert timezone.datetime.fromisoformat(desired["until"]) == reservation.end
    assert MachineDesiredState.objects.get(machine=machine).published_version == 1
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.CHECKED_IN


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_hung_broker_does_not_hold_the_technicians_check_in_and_the_machine_is_told_later(
        postgres, private_redis, mqtt_url, settings, lab, technician):
    from fablab_ops.booking.tasks import sync_desired_states
    from fablab_ops.celery import app as celery_app
    from tests.outbox_support import use_broker

    settings.MQTT_URL = mqtt_url
    machine = factories.MachineFactory(lab=lab, slug=f"laser-{uuid.uuid4().hex[:6]}", has_interlock=True)
    learner = factories.LearnerFactory()
    factories.CertificationFactory(user=learner, machine_type=machine.machine_type)
    start = timezone.now() - timedelta(minutes=2)
    reservation = factories.ReservationFactory(machine=machine, user=learner, start=start,
                                               end=start + timedelta(hours=1))
    use_broker(celery_app, private_redis.url)
    private_redis.freeze()
    # Whatever happens, the broker answers again after a while (a request that waited for it returns then).
    thaw = threading.Timer(6, private_redis.thaw)
    thaw.start()
    try:
        started = time_now()
        answer = scan(technician, tickets.sign(tickets.RESERVATION, reservation.ticket_code), lab).json()
        took = time_now() - started
    finally:
        thaw.cancel()
        private_redis.thaw()
    assert answer["outcome"] == "checked_in"
    assert took < 3, f"the check-in waited {took:.1f} s for the broker"
    # No worker runs here: the state waits, stored, for the beat's sync, which tells the machine.
    state = MachineDesiredState.objects.get(machine=machine)
    assert (state.version, state.published_version) == (1, 0)
    assert sync_desired_states()["published"] == 1
    assert MachineDesiredState.objects.get(machine=machine).published_version == 1


@pytest.mark.django_db(transaction=True)
def test_when_a_reservation_ends_it_is_completed_and_its_machine_decided_again(lab, settings):
    from fablab_ops.booking.tasks import finish_reservations

    settings.MQTT_URL = "mqtt://127.0.0.1:9"  # nothing listens: the publication fails and is recorded
    start = timezone.now() - timedelta(hours=2)
    reservation = factories.ReservationFactory(machine__lab=lab, start=start, end=start + timedelta(hours=1),
                                               status=ReservationStatus.CHECKED_IN, checked_in_at=start)
    MachineDesiredState.objects.create(machine=reservation.machine, version=4, holder_name="Lan",
                                       reservation=reservation, valid_from=start, until=reservation.end,
                                       published_version=4)
    assert finish_reservations() == 1
    assert Reservation.objects.get(pk=reservation.pk).status == ReservationStatus.COMPLETED
    state = MachineDesiredState.objects.get(machine=reservation.machine)
    assert (state.version, state.holder_name, state.published_version) == (5, None, 4)
    assert state.last_error and state.attempts == 1


@pytest.mark.django_db
def test_too_early_says_the_local_time_check_in_opens(technician, lab):
    soon = timezone.now() + timedelta(hours=2)
    today_later = factories.SeatBookingFactory(session__course__lab=lab, session__lab=lab, session__start=soon,
                                               session__end=soon + timedelta(hours=1))
    body = scan(technician, seat_token(today_later), lab).json()
    assert body["code"] == "too_early"
    assert timezone.localtime(soon - timedelta(minutes=30)).strftime("%H:%M") in body["message"]

    day = timezone.localdate() + timedelta(days=3)
    start = timezone.make_aware(datetime.combine(day, time(14, 0)))
    in_three_days = factories.SeatBookingFactory(session__course__lab=lab, session__lab=lab, session__start=start,
                                                 session__end=start + timedelta(hours=2))
    body = scan(technician, seat_token(in_three_days), lab).json()
    assert body["message"] == f"Chưa đến giờ check-in: mở lúc 13:30 ngày {day:%d/%m/%Y}."
