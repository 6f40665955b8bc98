"""Every page and list costs the same number of queries for one item as for many.

Each test reads a page with one item, adds more, reads it again and compares the counts: a query per
row (an N+1) makes the second count larger and fails here.
"""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.conftest import client_for
from tests.query_support import MANY, activity_in, same_cost, seated_and_waiting


@pytest.fixture
def course(lab):
    return factories.CourseFactory(lab=lab)


def sessions(course, n):
    start = timezone.now().replace(microsecond=0) + timedelta(days=3)
    made = []
    for i in range(n):
        session = factories.SessionFactory(course=factories.CourseFactory(lab=course.lab),
                                           start=start + timedelta(hours=i))
        factories.SeatBookingFactory(session=session)
        made.append(session)
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/courses/", "/api/courses/sessions"])
def test_the_sessions_list(course, learner, url):
    sessions(course, 1)
    same_cost(client_for(learner), url, lambda: sessions(course, MANY))


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/courses/my/", "/api/courses/bookings/mine"])
def test_my_bookings(course, learner, url):
    def book(n):
        for session in sessions(course, n):
            factories.SeatBookingFactory(session=session, learner=learner)

    book(1)
    same_cost(client_for(learner), url, lambda: book(MANY))


@pytest.mark.django_db
def test_a_roster(course, coordinator):
    session = factories.SessionFactory(course=course, capacity=40)
    seated_and_waiting(session, 1)
    same_cost(client_for(coordinator), f"/courses/manage/sessions/{session.pk}/roster/",
              lambda: seated_and_waiting(session, MANY, first_place=2))


@pytest.mark.django_db
def test_the_coordinators_sessions(course, coordinator):
    sessions(course, 1)
    same_cost(client_for(coordinator), "/courses/manage/", lambda: sessions(course, MANY))


def machines(lab, kind, n):
    for _ in range(n):
        machine = factories.MachineFactory(lab=lab, machine_type=kind)
        factories.ReservationFactory(machine=machine)


def running_machines(lab, kind, n):
    """Machines as the live board shows them: each running since this morning, held by someone, with an alert."""
    from fablab_ops.booking.models import MachineDesiredState
    from fablab_ops.machines.models import AlertKind, MachineAlert, MachineLiveStatus, UsageSession

    now = timezone.now()
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), datetime.min.time()))
    for _ in range(n):
        machine = factories.MachineFactory(lab=lab, machine_type=kind)
        MachineLiveStatus.objects.create(machine=machine, online=True, state="running", last_seen_at=now)
        UsageSession.objects.create(machine=machine, start=midnight, end=min(midnight + timedelta(minutes=30), now))
        MachineDesiredState.objects.create(machine=machine, version=1, holder_name="Võ Minh Khoa")
        MachineAlert.objects.create(machine=machine, kind=AlertKind.OFFLINE, raised_at=now)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/machines/live/", "/machines/live/board/", "/api/machines/live"])
def test_live_machines(lab, technician, url):
    kind = factories.MachineTypeFactory()
    running_machines(lab, kind, 1)
    same_cost(client_for(technician), url, lambda: running_machines(lab, kind, MANY))


@pytest.mark.django_db
def test_the_lab_day(lab, technician):
    kind = factories.MachineTypeFactory()
    machines(lab, kind, 1)
    # The day the reservations are on (the factory's: a day ahead), so the page lists them.
    day = timezone.localdate(timezone.now() + timedelta(days=1))
    same_cost(client_for(technician), f"/booking/labs/{lab.slug}/day/", lambda: machines(lab, kind, MANY),
              {"day": day.isoformat()})


@pytest.mark.django_db
def test_the_reservations_search(lab, learner):
    kind = factories.MachineTypeFactory(requires_induction=False)
    machines(lab, kind, 1)
    same_cost(client_for(learner), "/booking/search/", lambda: machines(lab, kind, MANY),
              {"machine_type": kind.slug, "minutes": 60})


@pytest.mark.django_db
def test_the_monthly_report(lab, coordinator):
    from fablab_ops.reports import services as reports

    month = reports.last_month()
    activity_in(month, 1)
    same_cost(client_for(coordinator), "/reports/", lambda: activity_in(month, MANY), {"month": f"{month:%Y-%m}"})
