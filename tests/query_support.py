"""Query counts of pages and lists: the same for one item as for many.

A page reads with one item, more are added, and it reads again: a query per row (an N+1) makes the second
count larger.
"""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fablab_ops.courses.models import SeatStatus
from tests import factories

MANY = 12


def queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


def same_cost(client, url, add, params=None):
    """The queries of `url` with what is there, then after `add()` made MANY more items."""
    one = queries(client, url, params)
    add()
    many = queries(client, url, params)
    assert many == one, f"{url}: {one} queries for one item, {many} for {MANY + 1}"


def seated_and_waiting(session, n: int, *, first_place: int = 1) -> None:
    """`n` learners with a seat in `session`, and `n` more on its waiting list from place `first_place`."""
    for place in range(first_place, first_place + n):
        factories.SeatBookingFactory(session=session)
        factories.SeatBookingFactory(session=session, status=SeatStatus.WAITLISTED, waitlist_position=place,
                                     confirmed_at=None)


def activity_in(month, n: int) -> None:
    """`n` classes in `month`, each in a lab of its own with a learner who came, a machine reserved and an hour
    of its use: every row the monthly report reads."""
    from fablab_ops.machines.models import MachineUsageDay

    start = timezone.make_aware(timezone.datetime(month.year, month.month, 10, 9))
    for i in range(n):
        course = factories.CourseFactory(lab=factories.LabFactory())
        session = factories.SessionFactory(course=course, start=start + timedelta(hours=i))
        factories.SeatBookingFactory(session=session, status=SeatStatus.ATTENDED)
        machine = factories.MachineFactory(lab=course.lab)
        factories.ReservationFactory(machine=machine, start=start + timedelta(hours=i),
                                     end=start + timedelta(hours=i + 1))
        MachineUsageDay.objects.create(machine=machine, day=start.date(), running_seconds=3600)
