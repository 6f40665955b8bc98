"""A learner books seats, waits, is offered a freed seat, cancels — and is told each time."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.courses import services
from fablab_ops.courses.models import SeatBooking, SeatStatus, SessionStatus
from fablab_ops.errors import Conflict
from fablab_ops.notifications import send_due
from tests import factories
from tests.conftest import client_for, waiting_order, waiting_places


@pytest.fixture
def arduino_class(lab):
    course = factories.CourseFactory(lab=lab, default_capacity=20, min_capacity=15, max_capacity=20)
    return factories.SessionFactory(course=course, capacity=20)


@pytest.fixture
def small_class(lab):
    course = factories.CourseFactory(lab=lab, default_capacity=2, min_capacity=1, max_capacity=10)
    return factories.SessionFactory(course=course, capacity=2)


def fill(session, count):
    return [services.book_seat(session.pk, factories.LearnerFactory()).booking for _ in range(count)]


@pytest.mark.django_db
def test_twenty_first_learner_goes_to_waiting_list(arduino_class):
    fill(arduino_class, 20)
    result = services.book_seat(arduino_class.pk, factories.LearnerFactory())
    assert result.booking.status == SeatStatus.WAITLISTED
    assert result.position == 1
    assert services.seats_taken(arduino_class) == 20


@pytest.mark.django_db
def test_learner_booking_through_the_api_sees_seat_then_queue_position(small_class, learner):
    fill(small_class, 1)
    client = client_for(learner)
    response = client.post(f"/api/courses/sessions/{small_class.pk}/book")
    assert response.status_code == 201
    assert response.json()["status"] == "confirmed"
    assert response.json()["ticket"]
    late = client_for(factories.LearnerFactory())
    body = late.post(f"/api/courses/sessions/{small_class.pk}/book").json()
    assert (body["status"], body["waitlist_position"], body["ticket"]) == ("waitlisted", 1, None)
    assert client.get(f"/api/courses/sessions/{small_class.pk}").json()["seats_left"] == 0


@pytest.mark.django_db
def test_a_double_click_books_one_seat(small_class, learner):
    client = client_for(learner)
    first = client.post(f"/api/courses/sessions/{small_class.pk}/book")
    again = client.post(f"/api/courses/sessions/{small_class.pk}/book")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert SeatBooking.objects.filter(session=small_class, learner=learner).count() == 1


@pytest.mark.django_db
def test_a_freed_seat_is_offered_to_the_first_waiting_and_held_for_them(small_class):
    first, _second = fill(small_class, 2)
    waiting = fill(small_class, 2)
    services.cancel_booking(first.pk, first.learner)
    head = SeatBooking.objects.get(pk=waiting[0].pk)
    assert head.offer_expires_at is not None
    # The held seat is not bookable by a newcomer.
    newcomer = services.book_seat(small_class.pk, factories.LearnerFactory()).booking
    assert newcomer.status == SeatStatus.WAITLISTED
    confirmed = services.confirm_offer(head.pk, head.learner)
    assert confirmed.status == SeatStatus.CONFIRMED
    assert waiting_places(small_class) == {waiting[1].pk: 1, newcomer.pk: 2}
    assert services.seats_taken(small_class) == 2


@pytest.mark.django_db
def test_the_offer_window_never_runs_past_the_start(lab, coordinator):
    course = factories.CourseFactory(lab=lab, default_capacity=1, min_capacity=1, max_capacity=5)
    session = factories.SessionFactory(course=course, capacity=1, start=timezone.now() + timedelta(hours=10))
    fill(session, 1)
    (waiting,) = fill(session, 1)
    services.update_session(session.pk, by=coordinator, capacity=2)
    assert SeatBooking.objects.get(pk=waiting.pk).offer_expires_at == session.start


@pytest.mark.django_db
def test_an_unconfirmed_offer_passes_to_the_next_and_everyone_is_told(small_class):
    first, _ = fill(small_class, 2)
    head, nxt = fill(small_class, 2)
    services.cancel_booking(first.pk, first.learner)
    later = timezone.now() + timedelta(hours=25)
    assert services.expire_offers(now=later) == 1
    head.refresh_from_db()
    nxt.refresh_from_db()
    assert head.status == SeatStatus.CANCELLED
    assert nxt.offer_expires_at is not None and waiting_order(small_class) == [nxt.pk]
    kinds = set(Notification.objects.filter(user=head.learner).values_list("kind", flat=True))
    assert {"seat_waitlisted", "seat_offered", "seat_offer_expired"} <= kinds
    assert Notification.objects.filter(user=nxt.learner, kind="seat_offered").exists()
    with pytest.raises(Conflict) as refused:
        services.confirm_offer(head.pk, head.learner, now=later)
    assert refused.value.code == "no_offer"


@pytest.mark.django_db
def test_cancelling_after_the_deadline_is_refused_with_the_reason(lab, learner):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab),
                                       start=timezone.now() + timedelta(hours=10))
    booking = services.book_seat(session.pk, learner).booking
    response = client_for(learner).post(f"/api/courses/bookings/{booking.pk}/cancel")
    assert response.status_code == 409
    assert response.json()["code"] == "deadline_passed"
    assert SeatBooking.objects.get(pk=booking.pk).status == SeatStatus.CONFIRMED


@pytest.mark.django_db
def test_leaving_the_waiting_list_moves_the_others_up(small_class):
    fill(small_class, 2)
    a, b, c = fill(small_class, 3)
    services.cancel_booking(a.pk, a.learner)
    assert waiting_places(small_class) == {b.pk: 1, c.pk: 2}


@pytest.mark.django_db
def test_a_learner_cannot_touch_another_learners_booking(small_class, learner):
    (other,) = fill(small_class, 1)
    client = client_for(learner)
    assert client.post(f"/api/courses/bookings/{other.pk}/cancel").status_code == 404
    assert client.get(f"/api/courses/bookings/{other.pk}").status_code == 404
    assert client.get(f"/api/courses/bookings/{other.pk}/calendar.ics").status_code == 404
    assert client.post(f"/courses/bookings/{other.pk}/cancel/").status_code == 404
    assert SeatBooking.objects.get(pk=other.pk).status == SeatStatus.CONFIRMED


@pytest.mark.django_db
def test_booking_needs_a_login(small_class, client):
    assert client.post(f"/api/courses/sessions/{small_class.pk}/book").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_session_tells_everyone_once_and_frees_nothing(small_class, coordinator):
    booked = fill(small_class, 2)
    waiting = fill(small_class, 1)
    services.cancel_session(small_class.pk, by=coordinator, reason="Mất điện")
    services.cancel_session(small_class.pk, by=coordinator, reason="Mất điện")
    small_class.refresh_from_db()
    assert small_class.status == SessionStatus.CANCELLED
    statuses = set(SeatBooking.objects.filter(session=small_class).values_list("status", flat=True))
    assert statuses == {SeatStatus.CANCELLED}
    told = Notification.objects.filter(kind="session_cancelled")
    assert sorted(told.values_list("user_id", flat=True)) == sorted(b.learner_id for b in booked + waiting)
    assert not Notification.objects.filter(kind="seat_offered").exists()
    assert len([m for m in mail.outbox if "Mất điện" in m.body]) == 3


@pytest.mark.django_db
def test_a_session_below_its_minimum_is_cancelled_at_the_decision_time(lab):
    course = factories.CourseFactory(lab=lab, min_learners=8, decision_hours_before=48)
    session = factories.SessionFactory(course=course, start=timezone.now() + timedelta(hours=40))
    healthy = factories.SessionFactory(course=course, start=timezone.now() + timedelta(hours=41))
    not_yet = factories.SessionFactory(course=course, start=timezone.now() + timedelta(days=5))
    fill(session, 3)
    fill(healthy, 8)
    assert services.cancel_undersubscribed() == [session.pk]
    assert services.cancel_undersubscribed() == []
    session.refresh_from_db()
    not_yet.refresh_from_db()
    assert session.status == SessionStatus.CANCELLED and "3/8" in session.cancel_reason
    assert not_yet.status == SessionStatus.SCHEDULED
    assert Notification.objects.filter(kind="session_cancelled").count() == 3


@pytest.mark.django_db(transaction=True)
def test_the_day_before_reminder_is_sent_once_even_if_the_job_runs_twice(lab):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab),
                                       start=timezone.now() + timedelta(hours=20))
    fill(session, 3)
    mail.outbox.clear()
    assert services.send_reminders() == 3
    assert services.send_reminders() == 0
    assert len(mail.outbox) == 3
    assert all(m.subject.startswith("Nhắc lịch") for m in mail.outbox)


@pytest.mark.django_db
def test_confirmed_learners_who_never_came_become_no_shows_after_the_end(lab):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab),
                                       start=timezone.now() - timedelta(hours=5))
    came = factories.SeatBookingFactory(session=session, status=SeatStatus.ATTENDED)
    absent = factories.SeatBookingFactory(session=session)
    assert services.mark_no_shows() == 1
    assert SeatBooking.objects.get(pk=absent.pk).status == SeatStatus.NO_SHOW
    assert SeatBooking.objects.get(pk=came.pk).status == SeatStatus.ATTENDED


@pytest.mark.django_db
def test_notifications_speak_the_learners_language(small_class):
    english = factories.LearnerFactory(language="en")
    services.book_seat(small_class.pk, english)
    send_due(limit=100)  # the worker renders the e-mail, in the learner's language
    note = Notification.objects.get(user=english, kind="seat_confirmed")
    assert note.subject.startswith("Seat confirmed")


@pytest.mark.django_db
def test_a_learner_books_and_cancels_through_the_pages(small_class, learner):
    client = client_for(learner)
    response = client.post(f"/courses/sessions/{small_class.pk}/book/", follow=True)
    booking = SeatBooking.objects.get(session=small_class, learner=learner)
    assert response.status_code == 200
    assert 'id="ticket-token"' in response.content.decode()
    assert "<svg" in response.content.decode()
    assert client.get(f"/courses/bookings/{booking.pk}/calendar.ics")["Content-Type"].startswith("text/calendar")
    page = client.get("/courses/my/").content.decode()
    assert small_class.course.title_vi in page
    client.post(f"/courses/bookings/{booking.pk}/cancel/")
    assert SeatBooking.objects.get(pk=booking.pk).status == SeatStatus.CANCELLED


@pytest.mark.django_db
def test_a_waiting_learner_reads_a_place_that_agrees_with_the_number_waiting(lab):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), capacity=1)
    first = factories.LearnerFactory()
    services.book_seat(session.pk, first)
    waiting = [factories.LearnerFactory() for _ in range(4)]
    for person in waiting:
        services.book_seat(session.pk, person)
    # The seat comes free: it is held for the first person waiting, who is no longer waiting.
    services.cancel_booking(SeatBooking.objects.get(learner=first).pk, first)
    last = waiting[-1]
    page = client_for(last).get(f"/courses/sessions/{session.pk}/").content.decode()
    assert "3 người chờ" in page
    assert "Bạn đứng thứ 3 trong danh sách chờ." in page
    assert "Bạn đứng thứ 4" not in page
    assert "vị trí 3" in client_for(last).get("/courses/my/").content.decode()
    # The next to join is told the place they will read on the page.
    newcomer = factories.LearnerFactory()
    response = client_for(newcomer).post(f"/courses/sessions/{session.pk}/book/", follow=True)
    assert "bạn đứng thứ 4 trong danh sách chờ" in response.content.decode()


@pytest.mark.django_db
def test_the_api_gives_the_place_among_those_still_waiting(lab):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), capacity=1)
    first = factories.LearnerFactory()
    services.book_seat(session.pk, first)
    second, third = factories.LearnerFactory(), factories.LearnerFactory()
    services.book_seat(session.pk, second)
    booking = services.book_seat(session.pk, third).booking
    services.cancel_booking(SeatBooking.objects.get(learner=first).pk, first)  # the seat is held for `second`
    body = client_for(third).get(f"/api/courses/bookings/{booking.pk}").json()
    assert body["session"]["waiting"] == 1 and body["waiting_place"] == 1
