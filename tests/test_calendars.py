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


# --- what the event says ---------------------------------------------------------------------------

@pytest.fixture
def soldering(lab):
    course = factories.CourseFactory(lab=lab, title_vi="Hàn mạch cơ bản", title_en="Basic soldering",
                                     what_to_bring="Máy tính xách tay và cáp USB",
                                     what_to_bring_en="A laptop and a USB cable")
    return factories.SessionFactory(course=course, lab=lab)


def only_event(content: bytes):
    return Calendar.from_ical(content.decode()).walk("VEVENT")[0]


@pytest.mark.django_db
def test_a_booking_event_says_what_to_bring_where_and_links_the_ticket(soldering, lab, settings):
    settings.SITE_URL, settings.FABLAB_CONTACT_EMAIL = "https://fablab.example.vn", "lienhe@fablab.example.vn"
    learner = factories.LearnerFactory()
    booking = services.book_seat(soldering.pk, learner).booking
    event = only_event(client_for(learner).get(f"/courses/bookings/{booking.pk}/calendar.ics").content)
    description = str(event["description"])
    assert "Cần mang theo: Máy tính xách tay và cáp USB" in description
    assert lab.address in description
    assert f"https://fablab.example.vn/courses/bookings/{booking.pk}/" in description
    organizer = event["organizer"]
    assert str(organizer) == "mailto:lienhe@fablab.example.vn"
    assert organizer.params["CN"] == lab.name_vi


@pytest.mark.django_db
def test_an_english_speaking_learner_reads_the_event_in_english(soldering, lab):
    learner = factories.LearnerFactory(language="en")
    booking = services.book_seat(soldering.pk, learner).booking
    feed = Calendar.from_ical(client_for(learner).get(f"/courses/calendar/{learner.feed_secret}.ics").content)
    description = str(feed.walk("VEVENT")[0]["description"])
    assert "What to bring: A laptop and a USB cable" in description and "Basic soldering" in description
    assert "Cần mang theo" not in description
    assert f"/courses/bookings/{booking.pk}/" in description


@pytest.mark.django_db
def test_a_reservation_event_names_the_lab_as_organizer_and_links_the_reservation(lab):
    reservation = factories.ReservationFactory(machine=factories.MachineFactory(lab=lab))
    event = only_event(client_for(reservation.user).get(
        f"/booking/reservations/{reservation.pk}/calendar.ics").content)
    assert str(event["organizer"]).startswith("mailto:") and event["organizer"].params["CN"] == lab.name_vi
    assert lab.address in str(event["description"])
    assert f"/booking/reservations/{reservation.pk}/" in str(event["description"])


@pytest.mark.django_db
def test_a_labs_public_feed_links_each_class_and_names_no_learner(soldering, lab, client):
    factories.SeatBookingFactory(session=soldering)
    event = Calendar.from_ical(client.get(f"/courses/calendar/labs/{lab.slug}.ics").content).walk("VEVENT")[0]
    description = str(event["description"])
    assert f"/courses/sessions/{soldering.pk}/" in description and "Máy tính xách tay" in description
    assert "/courses/bookings/" not in description
