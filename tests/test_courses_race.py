"""Seats are scarce: many learners pressing "book" at the same moment never overbook."""

import threading
from collections import Counter

import pytest
from django.db import connection

from fablab_ops.courses import services
from fablab_ops.courses.models import SeatBooking, SeatStatus
from tests import factories
from tests.conftest import client_for, waiting_places

RACERS = 60


def race(session, learners):
    """Every learner posts "book" at once through the HTTP API; returns the responses."""
    barrier = threading.Barrier(len(learners))
    responses = [None] * len(learners)

    def run(index, learner):
        client = client_for(learner)
        try:
            barrier.wait()
            response = client.post(f"/api/courses/sessions/{session.pk}/book")
            responses[index] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, learner)) for i, learner in enumerate(learners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


@pytest.mark.django_db(transaction=True)
def test_sixty_learners_racing_for_the_last_five_seats_never_overbook(postgres, lab):
    course = factories.CourseFactory(lab=lab, default_capacity=20, min_capacity=15, max_capacity=20)
    session = factories.SessionFactory(course=course, capacity=20)
    for _ in range(15):
        services.book_seat(session.pk, factories.LearnerFactory())
    learners = [factories.LearnerFactory() for _ in range(RACERS)]
    # Some learners double-click: the same person races against themself.
    racers = learners + learners[:5]

    responses = race(session, racers)

    assert all(r is not None for r in responses)
    assert Counter(status for status, _ in responses) <= Counter({201: RACERS, 200: 5})
    assert {status for status, _ in responses} <= {200, 201}, "no 5xx, no refusal"
    live = SeatBooking.objects.filter(session=session).exclude(status=SeatStatus.CANCELLED)
    assert live.filter(status=SeatStatus.CONFIRMED).count() == 20
    assert services.seats_taken(session) == 20
    per_learner = Counter(live.values_list("learner_id", flat=True))
    assert max(per_learner.values()) == 1, "one seat per learner"
    assert live.count() == 15 + RACERS
    waiting = list(live.filter(status=SeatStatus.WAITLISTED).order_by("waitlist_position"))
    places = waiting_places(session)
    assert [places[b.pk] for b in waiting] == list(range(1, RACERS - 5 + 1))
    # First come, first served: the queue follows the order the bookings were made.
    assert [b.pk for b in waiting] == sorted(b.pk for b in waiting)
    # What each learner was told matches what the database holds.
    for _, body in responses:
        stored = SeatBooking.objects.get(pk=body["id"])
        assert stored.status == body["status"]
        assert stored.waitlist_position == body["waitlist_position"]
        if stored.status == SeatStatus.WAITLISTED:
            assert places[stored.pk] == body["waiting_place"]


@pytest.mark.django_db(transaction=True)
def test_cancellations_racing_with_bookings_keep_the_count_exact(postgres, lab):
    course = factories.CourseFactory(lab=lab, default_capacity=10, min_capacity=1, max_capacity=10)
    session = factories.SessionFactory(course=course, capacity=10)
    holders = [services.book_seat(session.pk, factories.LearnerFactory()).booking for _ in range(10)]
    newcomers = [factories.LearnerFactory() for _ in range(40)]
    barrier = threading.Barrier(len(holders) + len(newcomers))
    failures = []

    def cancel(booking):
        try:
            barrier.wait()
            response = client_for(booking.learner).post(f"/api/courses/bookings/{booking.pk}/cancel")
            if response.status_code != 200:
                failures.append(response.status_code)
        finally:
            connection.close()

    def book(learner):
        try:
            barrier.wait()
            response = client_for(learner).post(f"/api/courses/sessions/{session.pk}/book")
            if response.status_code != 201:
                failures.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=cancel, args=(b,)) for b in holders]
    threads += [threading.Thread(target=book, args=(learner,)) for learner in newcomers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert failures == []
    assert services.seats_taken(session) == 10
    waiting = list(session.bookings.filter(status=SeatStatus.WAITLISTED).order_by("waitlist_position"))
    places = waiting_places(session)
    assert [places[b.pk] for b in waiting if b.pk in places] == list(range(1, len(places) + 1))
    confirmed = session.bookings.filter(status=SeatStatus.CONFIRMED).count()
    offered = sum(1 for b in waiting if services.has_offer(b))
    assert confirmed + offered == 10
