"""Registration day: a booking and a cancellation cost the same few queries however full the session is.

A 20-seat session with its 20 seats taken and 50 learners waiting; every call goes over the API with a
bearer token, as the apps and the flash crowd do. A count that grows with the bookings or the waiting list
fails here.

The budgets are the issue's — 6 statements for a booking (authentication, the locked session, its counts,
the insert, the notification row, and the waiting list's peak when it grows), 8 for a cancellation — plus
the transaction's own begin and end (`TRANSACTION`: here a savepoint and its release, in production BEGIN
and COMMIT), which the issue's list does not count.
"""

import re
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fablab_ops.accounts.models import ApiToken, Notification
from fablab_ops.courses.models import SeatBooking, SeatStatus
from tests import factories
from tests.conftest import waiting_order, waiting_places

BOOKED = 20
WAITING = 50
TRANSACTION = 2
BOOKING = 6 + TRANSACTION
CANCELLATION = 8 + TRANSACTION


def api(user):
    token_row, token = ApiToken.issue(user, "registration day")
    # A token used within the last minute is not written again (see accounts.auth): the steady state.
    ApiToken.objects.filter(pk=token_row.pk).update(last_used_at=timezone.now())
    return Client(headers={"authorization": f"Bearer {token}"})


@pytest.fixture
def crowded(lab):
    """20 of 20 seats booked and 50 learners waiting, positions 1..50."""
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab, default_capacity=BOOKED,
                                                                      max_capacity=40),
                                       capacity=BOOKED)
    for _ in range(BOOKED):
        factories.SeatBookingFactory(session=session)
    for position in range(1, WAITING + 1):
        factories.SeatBookingFactory(session=session, status=SeatStatus.WAITLISTED, waitlist_position=position,
                                     confirmed_at=None)
    return session


@pytest.mark.django_db
def test_joining_a_long_waiting_list_costs_six_queries(crowded, django_assert_max_num_queries):
    client = api(factories.LearnerFactory())
    with django_assert_max_num_queries(BOOKING):
        response = client.post(f"/api/courses/sessions/{crowded.pk}/book")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "waitlisted"
    assert response.json()["waitlist_position"] == WAITING + 1
    assert response.json()["session"]["waiting"] == WAITING + 1


@pytest.mark.django_db
def test_taking_a_free_seat_in_a_big_session_costs_six_queries(crowded, django_assert_max_num_queries):
    roomy = factories.SessionFactory(course=crowded.course, capacity=40)
    for _ in range(BOOKED):
        factories.SeatBookingFactory(session=roomy)
    client = api(factories.LearnerFactory())
    with django_assert_max_num_queries(BOOKING):
        response = client.post(f"/api/courses/sessions/{roomy.pk}/book")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "confirmed"
    assert response.json()["session"]["seats_left"] == 40 - BOOKED - 1


@pytest.mark.django_db
def test_booking_again_costs_no_more(crowded, django_assert_max_num_queries):
    booking = SeatBooking.objects.filter(session=crowded, status=SeatStatus.CONFIRMED).first()
    client = api(booking.learner)
    with django_assert_max_num_queries(BOOKING):
        response = client.post(f"/api/courses/sessions/{crowded.pk}/book")
    assert response.status_code == 200
    assert response.json()["id"] == booking.pk


@pytest.mark.django_db
def test_giving_up_a_seat_offers_it_to_the_next_in_eight_queries(crowded, django_assert_max_num_queries):
    booking = SeatBooking.objects.filter(session=crowded, status=SeatStatus.CONFIRMED).first()
    client = api(booking.learner)
    with django_assert_max_num_queries(CANCELLATION):
        response = client.post(f"/api/courses/bookings/{booking.pk}/cancel")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    first = SeatBooking.objects.get(session=crowded, waitlist_position=1)
    assert first.offer_expires_at is not None
    assert Notification.objects.filter(user=first.learner, kind="seat_offered").exists()
    assert response.json()["session"]["seats_left"] == 0
    assert response.json()["session"]["waiting"] == WAITING - 1


@pytest.mark.django_db
def test_leaving_the_front_of_the_waiting_list_costs_eight_queries(crowded, django_assert_max_num_queries):
    front = SeatBooking.objects.get(session=crowded, waitlist_position=1)
    client = api(front.learner)
    with django_assert_max_num_queries(CANCELLATION):
        response = client.post(f"/api/courses/bookings/{front.pk}/cancel")
    assert response.status_code == 200, response.content
    assert sorted(waiting_places(crowded).values()) == list(range(1, WAITING))
    assert response.json()["session"]["waiting"] == WAITING - 1


def messages_to_postgresql(client, path: str) -> tuple[object, list[str]]:
    """The response, and each message the request sent to PostgreSQL besides its transaction's begin and end."""
    with CaptureQueriesContext(connection) as captured:
        response = client.post(path)
    return response, [query["sql"] for query in captured.captured_queries
                      if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def executed(message: str) -> list[str]:
    """The statements a message runs, by the names they are prepared under (`rows.Prepared`), in its order."""
    return re.findall(r"EXECUTE (\w+)_[0-9a-f]{10}\b", message)


@pytest.mark.django_db
def test_joining_a_waiting_list_reaches_postgresql_in_three_messages(crowded):
    # Each message is a round trip the request's thread and the session's lock wait for: the token, the
    # locked session with its counts, then the booking, the longest waiting list and the e-mail's row together.
    response, messages = messages_to_postgresql(api(factories.LearnerFactory()),
                                                f"/api/courses/sessions/{crowded.pk}/book")
    assert response.status_code == 201, response.content
    assert len(messages) == 3, messages
    assert executed(messages[1]) == ["lock_session", "seat_counts_next_key"]
    assert executed(messages[2]) == ["insert_courses_seatbooking", "update_courses_session", "outbox_insert_1"]
    crowded.refresh_from_db()
    assert crowded.peak_waitlist == WAITING + 1
    booking = SeatBooking.objects.get(pk=response.json()["id"])
    assert Notification.objects.filter(dedup_key=f"seat-waitlisted-{booking.pk}", user=booking.learner).exists()


@pytest.mark.django_db
def test_giving_up_a_seat_reaches_postgresql_in_four_messages(crowded):
    booking = SeatBooking.objects.filter(session=crowded, status=SeatStatus.CONFIRMED).first()
    response, messages = messages_to_postgresql(api(booking.learner), f"/api/courses/bookings/{booking.pk}/cancel")
    assert response.status_code == 200, response.content
    # The token; the lock with the booking and the counts; the cancellation with the seat offered to the next
    # in line; both e-mails' rows.
    assert len(messages) == 4, messages
    assert executed(messages[1]) == ["lock_session_of_booking", "own_booking_with_counts"]
    assert executed(messages[2]) == ["update_courses_seatbooking", "offer_seats"]
    assert executed(messages[3]) == ["outbox_insert_2"]
    assert {row.kind for row in Notification.objects.filter(dedup_key__contains=f"-{booking.pk}")} == {
        "seat_cancelled"}
    assert Notification.objects.filter(kind="seat_offered").count() == 1


def rows_updated(model) -> int:
    """Rows of `model`'s table this transaction has updated so far (PostgreSQL's own count)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_tuples_updated(%s::regclass)", [model._meta.db_table])
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_leaving_a_long_waiting_list_writes_only_the_leavers_booking(crowded):
    # The list keeps its order without renumbering everyone behind the one who leaves: the cost of leaving
    # does not grow with the list.
    middle = SeatBooking.objects.get(session=crowded, waitlist_position=WAITING // 2)
    before = rows_updated(SeatBooking)
    response = api(middle.learner).post(f"/api/courses/bookings/{middle.pk}/cancel")
    assert response.status_code == 200, response.content
    assert rows_updated(SeatBooking) - before == 1
    assert sorted(waiting_places(crowded).values()) == list(range(1, WAITING))


@pytest.mark.django_db
def test_declining_a_held_seat_passes_it_on_in_eight_queries(crowded, django_assert_max_num_queries):
    SeatBooking.objects.filter(session=crowded, status=SeatStatus.CONFIRMED).first().delete()
    front = SeatBooking.objects.get(session=crowded, waitlist_position=1)
    front.offer_expires_at = timezone.now() + timedelta(hours=12)
    front.save()
    behind = waiting_order(crowded)[1:]
    client = api(front.learner)
    with django_assert_max_num_queries(CANCELLATION):
        response = client.post(f"/api/courses/bookings/{front.pk}/cancel")
    assert response.status_code == 200, response.content
    assert waiting_order(crowded) == behind
    nxt = SeatBooking.objects.get(pk=behind[0])
    assert nxt.offer_expires_at is not None
    assert sorted(waiting_places(crowded).values()) == list(range(1, WAITING - 1))


@pytest.mark.django_db
def test_taking_a_held_seat_costs_eight_queries(crowded, django_assert_max_num_queries):
    SeatBooking.objects.filter(session=crowded, status=SeatStatus.CONFIRMED).first().delete()
    front = SeatBooking.objects.get(session=crowded, waitlist_position=1)
    front.offer_expires_at = timezone.now() + timedelta(hours=12)
    front.save()
    client = api(front.learner)
    with django_assert_max_num_queries(CANCELLATION):
        response = client.post(f"/api/courses/bookings/{front.pk}/confirm")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "confirmed"


@pytest.mark.django_db
def test_nothing_is_rendered_inside_the_booking(crowded):
    """The outbox row holds the kind and a reference; the worker renders the e-mail."""
    learner = factories.LearnerFactory(language="en")
    api(learner).post(f"/api/courses/sessions/{crowded.pk}/book")
    row = Notification.objects.get(user=learner, kind="seat_waitlisted")
    assert row.body == "" and row.context


@pytest.mark.django_db
def test_looking_at_a_waiting_place_costs_two_queries(crowded, django_assert_max_num_queries):
    # As an app polls it after the e-mail: the token, then the booking with its session, its place and the
    # session's counts in one statement.
    waiting = SeatBooking.objects.get(session=crowded, waitlist_position=3)
    client = api(waiting.learner)
    with django_assert_max_num_queries(2):
        response = client.get(f"/api/courses/bookings/{waiting.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["waiting_place"], body["session"]["waiting"], body["session"]["seats_left"]) == (3, WAITING, 0)


@pytest.mark.django_db
def test_each_learner_sees_the_place_and_counts_the_lists_show(crowded):
    """What one learner reads about their booking agrees with what the lists count, whoever they are: a seat,
    an offer held ahead of others, an offer that ran out, a place on the list, a cancelled place."""
    now = timezone.now()
    SeatBooking.objects.filter(session=crowded, waitlist_position=2).update(offer_expires_at=now + timedelta(hours=2))
    SeatBooking.objects.filter(session=crowded, waitlist_position=4).update(offer_expires_at=now - timedelta(hours=1))
    SeatBooking.objects.filter(session=crowded, waitlist_position=6).update(status=SeatStatus.CANCELLED,
                                                                            waitlist_position=None)
    expected_places = waiting_places(crowded)
    shown = {}
    for booking in SeatBooking.objects.filter(session=crowded).select_related("learner"):
        body = api(booking.learner).get(f"/api/courses/bookings/{booking.pk}").json()
        shown[booking.pk] = body
        assert (body["session"]["seats_left"], body["session"]["waiting"]) == (0, WAITING - 2)
    def holds_an_offer(body):
        return bool(body["offer_expires_at"]) and datetime.fromisoformat(body["offer_expires_at"]) > now

    on_the_list = {pk: body["waiting_place"] for pk, body in shown.items()
                   if body["status"] == "waitlisted" and not holds_an_offer(body)}
    assert on_the_list == expected_places
    assert sorted(expected_places.values()) == list(range(1, WAITING - 1))
    by_position = {body["waitlist_position"]: body for body in shown.values() if body["waitlist_position"]}
    assert by_position[2]["waiting_place"] == 1  # the offer holder: one still waiting ahead of them
    assert by_position[1]["waiting_place"] == 1 and by_position[3]["waiting_place"] == 2
    assert all(body["waiting_place"] is None for body in shown.values() if body["status"] == "confirmed")
