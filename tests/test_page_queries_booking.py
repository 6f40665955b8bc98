"""The machine-booking pages and lists cost the same number of queries for one item as for many.

Each test reads a page with one item, adds more, and reads it again: a query per row (an N+1) makes the second
count larger and fails here. Every row carries what the page shows of it (its machine and lab, its holder, who
scanned or granted it), so a relation read once per row would show.
"""

from datetime import datetime, time, timedelta
from itertools import count

import pytest
from django.utils import timezone

from fablab_ops.booking.models import (
    CertificationAction,
    CertificationEvent,
    CheckInOutcome,
    CheckInRecord,
    MachineOverride,
    OverrideKind,
    ReservationStatus,
)
from tests import factories
from tests.conftest import client_for
from tests.query_support import MANY, same_cost


def local(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), timezone.get_default_timezone())


def planned_day():
    """A day far enough ahead that every reservation on it is still to come, near enough to be bookable."""
    return timezone.localdate() + timedelta(days=2)


def earlier_today():
    """A moment of today already past: the door's no-shows and late arrivals are of sessions already started."""
    now = timezone.localtime()
    midnight = datetime.combine(now.date(), time.min, now.tzinfo)
    return (midnight + (now - midnight) / 2).replace(microsecond=0)


# --- a learner's reservations and certifications ----------------------------------------------------------

def my_reservations(learner, n):
    """Upcoming and past reservations, each on a machine of its own in a lab of its own."""
    now = timezone.now().replace(microsecond=0)
    for i in range(n):
        for start in (now + timedelta(days=1, hours=i), now - timedelta(days=3, hours=i)):
            machine = factories.MachineFactory(lab=factories.LabFactory())
            factories.ReservationFactory(machine=machine, user=learner, start=start, end=start + timedelta(hours=1))


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "params"), [("/booking/reservations/", None),
                                             ("/api/booking/reservations/mine", None),
                                             ("/api/booking/reservations/mine", {"past": "true"})])
def test_my_reservations(learner, url, params):
    my_reservations(learner, 1)
    same_cost(client_for(learner), url, lambda: my_reservations(learner, MANY), params)


def certifications_of(learner, n, by):
    """Certifications of machine types of their own, each with its history: granted by someone, every other one
    revoked since."""
    now = timezone.now()
    for i in range(n):
        certification = factories.CertificationFactory(user=learner, granted_by=by)
        CertificationEvent.objects.create(certification=certification, action=CertificationAction.GRANTED,
                                          at=now, by=by, reason="Đạt buổi hướng dẫn")
        if i % 2:
            certification.revoked_at, certification.revoked_by, certification.revoke_reason = now, by, "Vi phạm an toàn"
            certification.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
            CertificationEvent.objects.create(certification=certification, action=CertificationAction.REVOKED,
                                              at=now, by=by, reason="Vi phạm an toàn")


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/booking/certifications/", "/api/booking/certifications/mine"])
def test_my_certifications(learner, technician, url):
    certifications_of(learner, 1, technician)
    same_cost(client_for(learner), url, lambda: certifications_of(learner, MANY, technician))


NAMES = count(1)


def certified_learners(kind, lab, n, by):
    """Learners named alike (the search finds them all), certified for a type the lab teaches, by another person
    each time."""
    for _ in range(n):
        learner = factories.LearnerFactory(full_name=f"Phạm Thị Hoa {next(NAMES)}")
        granter = factories.TechnicianFactory(labs=[lab])
        certification = factories.CertificationFactory(user=learner, machine_type=kind, granted_by=granter)
        CertificationEvent.objects.create(certification=certification, action=CertificationAction.GRANTED,
                                          at=timezone.now(), by=granter, reason="Đạt buổi hướng dẫn")
        CertificationEvent.objects.create(certification=certification, action=CertificationAction.GRANTED,
                                          at=timezone.now(), by=by, reason="Cấp lại")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["technician", "coordinator"])
def test_the_staff_certifications_search(lab, role, request):
    user = request.getfixturevalue(role)
    kind = factories.MachineFactory(lab=lab).machine_type
    certifications_of(user, 1, user)
    certified_learners(kind, lab, 1, user)

    def more():
        certifications_of(user, MANY, user)
        certified_learners(kind, lab, MANY, user)

    same_cost(client_for(user), "/booking/certifications/", more, {"q": "Phạm Thị Hoa"})


# --- a lab's day for its technicians ----------------------------------------------------------------------

def busy_machines(lab, n, day):
    """Machines of the lab, each with a reservation by someone, a maintenance window and a switch-off in force
    by one of its technicians."""
    for _ in range(n):
        machine = factories.MachineFactory(lab=lab)
        factories.ReservationFactory(machine=machine, start=local(day, 9), end=local(day, 10))
        factories.MaintenanceWindowFactory(machine=machine, start=local(day, 13), end=local(day, 14))
        MachineOverride.objects.create(machine=machine, kind=OverrideKind.OFF,
                                       by=factories.TechnicianFactory(labs=[lab]),
                                       start=timezone.now() - timedelta(minutes=5))


@pytest.mark.django_db
def test_the_lab_timeline(lab, technician):
    day = planned_day()
    busy_machines(lab, 1, day)
    same_cost(client_for(technician), f"/api/booking/labs/{lab.slug}/timeline",
              lambda: busy_machines(lab, MANY, day), {"day": day.isoformat()})


@pytest.mark.django_db
def test_the_maintenance_planner(lab, technician):
    factories.MachineFactory(lab=lab)
    same_cost(client_for(technician), f"/booking/labs/{lab.slug}/maintenance/",
              lambda: [factories.MachineFactory(lab=lab) for _ in range(MANY)])


# --- one machine's day ------------------------------------------------------------------------------------

def booked_machine(lab):
    return factories.MachineFactory(lab=lab, machine_type=factories.MachineTypeFactory(requires_induction=False))


def book_half_hours(machine, day, first, n):
    """n back-to-back half hours of the machine from the `first`th of the day (08:00), every other one a
    maintenance window."""
    for i in range(first, first + n):
        start = local(day, 8) + timedelta(minutes=30 * i)
        if i % 2:
            factories.MaintenanceWindowFactory(machine=machine, start=start, end=start + timedelta(minutes=30))
        else:
            factories.ReservationFactory(machine=machine, start=start, end=start + timedelta(minutes=30))


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/booking/machines/{lab}/{machine}/",
                                  "/api/booking/machines/{lab}/{machine}/availability"])
def test_a_machines_day(lab, learner, page):
    day = planned_day()
    machine = booked_machine(lab)
    book_half_hours(machine, day, 0, 1)
    same_cost(client_for(learner), page.format(lab=lab.slug, machine=machine.slug),
              lambda: book_half_hours(machine, day, 1, MANY), {"day": day.isoformat()})


def machines_across_the_network(kind, n):
    """Machines of one type, each in a lab of its own (with its opening hours) and already booked once."""
    for _ in range(n):
        machine = factories.MachineFactory(lab=factories.LabFactory(), machine_type=kind)
        factories.ReservationFactory(machine=machine)


@pytest.mark.django_db
def test_the_reservations_search_over_the_api(learner):
    kind = factories.MachineTypeFactory(requires_induction=False)
    machines_across_the_network(kind, 1)
    same_cost(client_for(learner), "/api/booking/search", lambda: machines_across_the_network(kind, MANY),
              {"machine_type": kind.slug, "minutes": 60})


# --- the door ---------------------------------------------------------------------------------------------

def expected_today(lab, n, *, start=None, checked_in=False):
    """Today's bookings at the lab: a seat in a session of a course of its own and a reservation of a machine of
    its own, each by someone else. Returns them."""
    start = start or local(timezone.localdate(), 10)
    made = []
    for _ in range(n):
        session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), start=start,
                                           end=start + timedelta(hours=3))
        seat = factories.SeatBookingFactory(session=session)
        reservation = factories.ReservationFactory(machine=factories.MachineFactory(lab=lab), start=start,
                                                   end=start + timedelta(hours=1))
        if checked_in:
            for booking in (seat, reservation):
                booking.checked_in_at = start + timedelta(minutes=20)
                booking.save(update_fields=["checked_in_at"])
        made += [seat, reservation]
    return made


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["technician", "coordinator"])
def test_the_door_list(lab, role, request):
    expected_today(lab, 1, checked_in=True)
    same_cost(client_for(request.getfixturevalue(role)), f"/api/booking/labs/{lab.slug}/door",
              lambda: expected_today(lab, MANY, checked_in=True))


def scanned(lab, n):
    """Refused scans at the lab's door, each of a booking of its own (seats and reservations in turn), each by a
    technician of their own."""
    for booking in expected_today(lab, (n + 1) // 2, start=earlier_today())[:n]:
        seat = booking if hasattr(booking, "session") else None
        CheckInRecord.objects.create(at=timezone.now(), lab=lab, by=factories.TechnicianFactory(labs=[lab]),
                                     outcome=CheckInOutcome.REFUSED, reason="too_late", method="qr",
                                     seat_booking=seat, reservation=None if seat else booking)


@pytest.mark.django_db
@pytest.mark.parametrize("one_lab", [False, True])
def test_the_refused_scans(lab, technician, one_lab):
    scanned(lab, 2)
    same_cost(client_for(technician), "/api/booking/checkin/refused", lambda: scanned(lab, 2 * MANY),
              {"lab": lab.slug} if one_lab else None)


def missed_and_late(lab, n):
    """A day's exceptions at the door: seats and reservations nobody came for, late arrivals, refused scans."""
    start = earlier_today()
    for booking in expected_today(lab, n, start=start):
        if not hasattr(booking, "session"):
            booking.status = ReservationStatus.NO_SHOW
            booking.save(update_fields=["status"])
    expected_today(lab, n, start=start, checked_in=True)
    scanned(lab, 2 * n)


@pytest.mark.django_db
def test_the_lab_absences(lab, technician):
    missed_and_late(lab, 1)
    same_cost(client_for(technician), f"/booking/labs/{lab.slug}/absences/", lambda: missed_and_late(lab, MANY))


def at_the_door(lab, n, technician):
    """Today's list at the door with some already in, and the technician's own check-ins still undoable."""
    expected_today(lab, n)
    for booking in expected_today(lab, n, start=earlier_today(), checked_in=True):
        seat = booking if hasattr(booking, "session") else None
        CheckInRecord.objects.create(at=timezone.now(), lab=lab, by=technician, outcome=CheckInOutcome.CHECKED_IN,
                                     method="manual", seat_booking=seat, reservation=None if seat else booking)


@pytest.mark.django_db
def test_the_door_scanner(lab, technician):
    at_the_door(lab, 1, technician)
    same_cost(client_for(technician), f"/booking/labs/{lab.slug}/scanner/",
              lambda: at_the_door(lab, MANY, technician))

