"""Calendar files and feeds a phone accepts, checked with a second, independent parser (vobject)."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import vobject
from icalendar import Calendar

from fablab_ops.courses import services
from tests import factories
from tests.conftest import client_for

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def parse_both(content: bytes):
    text = content.decode()
    return Calendar.from_ical(text), vobject.readOne(text)


@pytest.fixture
def booked(lab, learner):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab, title_vi="Lập trình Arduino ứng dụng"))
    return services.book_seat(session.pk, learner).booking


@pytest.mark.django_db
def test_a_booking_ics_has_a_stable_uid_and_local_time(booked, learner):
    client = client_for(learner)
    first = client.get(f"/api/courses/bookings/{booked.pk}/calendar.ics")
    again = client.get(f"/courses/bookings/{booked.pk}/calendar.ics")
    ical, card = parse_both(first.content)
    event = card.vevent
    assert str(ical["method"]) == "PUBLISH"
    assert event.uid.value == parse_both(again.content)[1].vevent.uid.value
    assert event.summary.value == "Lập trình Arduino ứng dụng"
    assert event.dtstart.value == booked.session.start
    assert event.dtstart.value.utcoffset() == timedelta(hours=7)
    assert "Ho_Chi_Minh" in str(event.dtstart.value.tzinfo)
    assert card.vtimezone.tzid.value == "Asia/Ho_Chi_Minh"


@pytest.mark.django_db
def test_a_cancelled_booking_sends_cancel_with_the_same_uid(booked, learner):
    client = client_for(learner)
    before = parse_both(client.get(f"/api/courses/bookings/{booked.pk}/calendar.ics").content)[1].vevent
    services.cancel_booking(booked.pk, learner)
    ical, card = parse_both(client.get(f"/api/courses/bookings/{booked.pk}/calendar.ics").content)
    assert str(ical["method"]) == "CANCEL"
    assert card.vevent.uid.value == before.uid.value
    assert card.vevent.status.value == "CANCELLED"
    assert int(card.vevent.sequence.value) > int(before.sequence.value)


@pytest.mark.django_db
def test_the_personal_feed_holds_my_bookings_and_reservations_only(booked, learner, client):
    factories.SeatBookingFactory()  # somebody else's
    reservation = factories.ReservationFactory(user=learner)
    response = client.get(f"/courses/calendar/{learner.feed_secret}.ics")
    assert response.status_code == 200
    _, card = parse_both(response.content)
    uids = {event.uid.value for event in card.vevent_list}
    assert uids == {f"seat-{booked.pk}@fablab-ops.binhduong", f"reservation-{reservation.pk}@fablab-ops.binhduong"}


@pytest.mark.django_db
def test_a_wrong_feed_secret_finds_nothing(client, learner):
    assert client.get(f"/courses/calendar/{learner.feed_secret}x.ics").status_code == 404


@pytest.mark.django_db
def test_public_lab_and_course_feeds_list_sessions_without_learners(client, lab, booked):
    other = factories.SessionFactory(course=factories.CourseFactory(lab=lab),
                                     start=booked.session.start + timedelta(days=14))
    course_slug = booked.session.course.slug
    for url in (f"/courses/calendar/labs/{lab.slug}.ics", f"/courses/calendar/courses/{course_slug}.ics"):
        response = client.get(url)
        assert response.status_code == 200
        text = response.content.decode()
        assert booked.learner.full_name not in text and booked.learner.email not in text
        _, card = parse_both(response.content)
        assert len(card.vevent_list) >= 1
    lab_events = parse_both(client.get(f"/courses/calendar/labs/{lab.slug}.ics").content)[1].vevent_list
    assert {e.uid.value for e in lab_events} == {f"session-{booked.session.pk}@fablab-ops.binhduong",
                                                 f"session-{other.pk}@fablab-ops.binhduong"}
