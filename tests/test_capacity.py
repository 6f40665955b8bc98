"""Capacity is one rule: a seat held for the first person on the waiting list counts like a booked one.

Whatever changes a session's capacity or its seats — a coordinator's cut on the page or the API, a change
to the rest of a series, a learner confirming an offer, a newcomer booking — asks the same question under
the session's lock: how many seats are confirmed, and how many are held for outstanding offers?
"""

import threading
from datetime import date, time, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from fablab_ops.courses import services
from fablab_ops.courses.models import SeatBooking, SeatStatus
from fablab_ops.errors import Conflict
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def full_class_with_an_offer(lab):
    """Two seats, both booked, one learner waiting; then one seat is given up and offered to them."""
    course = factories.CourseFactory(lab=lab, default_capacity=2, min_capacity=1, max_capacity=10)
    session = factories.SessionFactory(course=course, capacity=2)
    first, _second = (services.book_seat(session.pk, factories.LearnerFactory()).booking for _ in range(2))
    waiting = services.book_seat(session.pk, factories.LearnerFactory()).booking
    services.cancel_booking(first.pk, first.learner)
    waiting.refresh_from_db()
    assert services.has_offer(waiting)
    return session, waiting


def confirmed(session) -> int:
    return SeatBooking.objects.filter(session=session, status=SeatStatus.CONFIRMED).count()


@pytest.mark.django_db
def test_a_capacity_cut_while_a_seat_is_offered_cannot_overbook(full_class_with_an_offer, coordinator):
    session, waiting = full_class_with_an_offer
    # One seat is confirmed and one is held for the offer: cutting to one seat would take the held one.
    response = client_for(coordinator).patch(f"/api/courses/sessions/{session.pk}", {"capacity": 1},
                                             content_type="application/json")
    assert response.status_code == 409
    assert response.json()["code"] == "capacity_below_bookings"
    session.refresh_from_db()
    assert session.capacity == 2

    response = client_for(waiting.learner).post(f"/api/courses/bookings/{waiting.pk}/confirm")
    assert response.status_code == 200
    assert confirmed(session) == 2 <= session.capacity


@pytest.mark.django_db
def test_the_coordinators_page_refuses_the_same_cut(full_class_with_an_offer, coordinator):
    session, _waiting = full_class_with_an_offer
    start = timezone.localtime(session.start)
    end = timezone.localtime(session.end)
    page = client_for(coordinator).post(f"/courses/manage/sessions/{session.pk}/", {
        "start": start.strftime("%Y-%m-%dT%H:%M"), "end": end.strftime("%Y-%m-%dT%H:%M"), "capacity": 1,
        "place": "", "scope": "this",
    })
    assert page.status_code == 200  # the form again, with the reason
    session.refresh_from_db()
    assert session.capacity == 2


@pytest.mark.django_db
def test_changing_the_rest_of_a_series_counts_offered_seats_too(lab, coordinator):
    course = factories.CourseFactory(lab=lab, default_capacity=2, min_capacity=1, max_capacity=10)
    series = services.create_series(course=course, by=coordinator, rule="FREQ=WEEKLY;COUNT=2",
                                    first_date=date.today() + timedelta(days=7), start_time=time(8),
                                    end_time=time(11), capacity=2, lab=lab)
    session = series.sessions.order_by("start").first()
    first = services.book_seat(session.pk, factories.LearnerFactory()).booking
    services.book_seat(session.pk, factories.LearnerFactory())
    waiting = services.book_seat(session.pk, factories.LearnerFactory()).booking
    services.cancel_booking(first.pk, first.learner)

    with pytest.raises(Conflict) as refused:
        services.change_series_from(series.pk, date.today(), by=coordinator, capacity=1)
    assert refused.value.code == "capacity_below_bookings"
    services.confirm_offer(waiting.pk, waiting.learner)
    session.refresh_from_db()
    assert confirmed(session) <= session.capacity


@pytest.mark.django_db(transaction=True)
def test_capacity_cuts_racing_offer_confirmations_and_bookings_never_overbook(postgres, lab, coordinator):
    """Round after round, with offers outstanding, a coordinator cuts the capacity to the seats confirmed
    while the offered learners confirm and newcomers book, all at once."""
    course = factories.CourseFactory(lab=lab, default_capacity=8, min_capacity=1, max_capacity=20)
    overbooked = []
    for _round in range(6):
        session = factories.SessionFactory(course=course, capacity=8)
        holders = [services.book_seat(session.pk, factories.LearnerFactory()).booking for _ in range(8)]
        waiting = [services.book_seat(session.pk, factories.LearnerFactory()).booking for _ in range(3)]
        for booking in holders[:3]:
            services.cancel_booking(booking.pk, booking.learner)  # three seats offered to the three waiting
        newcomers = [factories.LearnerFactory() for _ in range(3)]
        barrier = threading.Barrier(1 + len(waiting) + len(newcomers))
        statuses = []

        def cut(session=session, barrier=barrier, statuses=statuses):
            try:
                barrier.wait()
                response = client_for(coordinator).patch(f"/api/courses/sessions/{session.pk}", {"capacity": 5},
                                                         content_type="application/json")
                statuses.append(response.status_code)
            finally:
                connection.close()

        def confirm(booking, barrier=barrier, statuses=statuses):
            try:
                barrier.wait()
                statuses.append(client_for(booking.learner)
                                .post(f"/api/courses/bookings/{booking.pk}/confirm").status_code)
            finally:
                connection.close()

        def book(learner, session=session, barrier=barrier, statuses=statuses):
            try:
                barrier.wait()
                statuses.append(client_for(learner).post(f"/api/courses/sessions/{session.pk}/book").status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=cut)]
        threads += [threading.Thread(target=confirm, args=(b,)) for b in waiting]
        threads += [threading.Thread(target=book, args=(learner,)) for learner in newcomers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)

        assert all(status < 500 for status in statuses), statuses
        session.refresh_from_db()
        now = timezone.now()
        if confirmed(session) > session.capacity or services.seats_taken(session, now) > session.capacity:
            overbooked.append((confirmed(session), services.seats_taken(session, now), session.capacity))
    assert overbooked == []
