"""The demo tells the truth: what a newcomer sees after `make run` is what the service would show a lab.

Seeded as of a given moment (any hour of the day): machines are held by the learners checked in for
them, past months hold machine hours on every type, the coming days are booked, the labs have street
addresses under Hồ Chí Minh City's wards.
"""

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from fablab_ops.booking.models import MachineDesiredState, Reservation, ReservationStatus
from fablab_ops.booking.services import check_rules
from fablab_ops.courses.models import SeatBooking, SeatStatus, Session
from fablab_ops.demo import data as demo
from fablab_ops.machines.models import Lab, MachineType
from fablab_ops.reports import services as reports


def moment(hour: int) -> datetime:
    """Tomorrow at `hour`, local time: the seed is as of that moment, whatever the clock says now."""
    return datetime.combine(timezone.localdate() + timedelta(days=1), time(hour, 10),
                            timezone.get_default_timezone())


@pytest.mark.django_db
@pytest.mark.parametrize("hour", [5, 10, 21])
def test_machines_are_held_only_by_learners_checked_in_for_the_moment_the_demo_starts(hour):
    now = moment(hour)
    demo.seed(now=now)
    covering = list(Reservation.objects.filter(start__lte=now, end__gt=now).select_related("user", "machine"))
    assert covering, "some machines run when the demo starts"
    assert all(r.status == ReservationStatus.CHECKED_IN for r in covering)
    held = {s.machine_id: s for s in MachineDesiredState.objects.exclude(holder_name=None)}
    assert set(held) == {r.machine_id for r in covering}, "the interlock hands exactly those machines over"
    for reservation in covering:
        assert held[reservation.machine_id].holder_name == reservation.user.full_name
        assert held[reservation.machine_id].until == reservation.end


@pytest.mark.django_db
def test_last_months_report_on_the_demo_has_machine_hours_for_every_machine_type():
    demo.seed()
    report = reports.monthly_report(reports.last_month())
    hours = {}
    for lab in report.labs:
        for row in lab.machines:
            hours[row.machine_type] = hours.get(row.machine_type, 0) + row.hours_used
    assert {t.name_vi for t in MachineType.objects.all()} <= {name for name, used in hours.items() if used > 0}, hours


@pytest.mark.django_db
def test_the_coming_lab_days_have_seat_bookings_and_machine_reservations_that_obey_the_rules():
    now = moment(9)
    demo.seed(now=now)
    coming = Reservation.objects.filter(start__gt=now, status=ReservationStatus.CONFIRMED).select_related(
        "machine__lab", "machine__machine_type", "user")
    days = {timezone.localtime(r.start).date() for r in coming}
    assert {timezone.localdate(now) + timedelta(days=n) for n in range(1, 8)} <= days
    for reservation in coming:
        # As the learner booked it (when the demo was seeded), every rule held; their own reservation set aside.
        Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.CANCELLED)
        check_rules(reservation.user, reservation.machine, reservation.start, reservation.end, now)
        Reservation.objects.filter(pk=reservation.pk).update(status=ReservationStatus.CONFIRMED)
    upcoming_seats = SeatBooking.objects.filter(session__start__gt=now, session__start__lt=now + timedelta(days=14),
                                                status=SeatStatus.CONFIRMED)
    assert upcoming_seats.exists()


@pytest.mark.django_db
def test_the_labs_have_street_addresses_under_ho_chi_minh_city_wards():
    demo.seed()
    for lab in Lab.objects.all():
        assert "phường" in lab.address and lab.address.endswith("Thành phố Hồ Chí Minh"), lab.address
        assert "tỉnh Bình Dương" not in lab.address + lab.host
    places = Session.objects.exclude(lab=None).values_list("place", flat=True)
    assert places and all(place.endswith("Thành phố Hồ Chí Minh") for place in places), "classes say where they are"


@pytest.mark.django_db
def test_the_demo_started_again_another_day_has_machines_running_and_days_booked_again():
    first = moment(10)
    demo.seed(now=first)
    later = first + timedelta(days=3, hours=1)
    demo.seed(now=later)
    covering = Reservation.objects.filter(start__lte=later, end__gt=later)
    assert covering.exists() and all(r.status == ReservationStatus.CHECKED_IN for r in covering)
    assert Reservation.objects.filter(start__gt=later + timedelta(days=4), status=ReservationStatus.CONFIRMED).exists()
    # What came due while it was stopped is history, not a backlog of no-show e-mails for the first minutes.
    assert not Reservation.objects.filter(status=ReservationStatus.CONFIRMED, start__lte=later).exists()
