"""What the machines app asks about bookings, answered above it.

The machines app knows machines, telemetry and running periods, not reservations. Whether a
run was authorised (a checked-in reservation, a technician's maintenance override), whom to
warn when a machine is in trouble, what the interlock wants each machine to do and how many
hours were booked are decided in booking, which registers its answers here when the apps
are ready (booking/apps.py). With nothing registered nobody is entitled (every run is
reported), nobody is warned, and no machine has a desired state or booked hours.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Entitlement:
    """Someone could use the machine from `start` until `end`: a reservation's holder, or a technician."""

    start: datetime
    end: datetime | None
    user_id: int | None
    reservation_id: int | None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True)
class Answers:
    # Entitlements overlapping [since, until] per machine id, earliest first.
    entitled: Callable[[set[int], datetime, datetime], dict[int, list[Entitlement]]]
    # Confirmed reservations starting in [since, until) per machine id; each has `.user`.
    reservations_starting: Callable[[set[int], datetime, datetime], dict[int, list]]
    # The interlock's stored desired state per machine id (rows with `version`, `holder_name`, …).
    desired_states: Callable[[list[int]], dict[int, object]]
    # Hours booked in [start, end) per "lab/machine" key, for the labs given.
    booked_hours: Callable[[Iterable, datetime, datetime], dict[str, float]]


_answers: list[Answers] = []


def register(answers: Answers) -> None:
    """Called once by the app that decides (booking); a second registration replaces the first."""
    _answers[:] = [answers]


def entitled(machine_ids: set[int], since: datetime, until: datetime) -> dict[int, list[Entitlement]]:
    """The entitlements overlapping [since, until] for each machine, earliest first."""
    if not _answers or not machine_ids:
        return {}
    return _answers[0].entitled(machine_ids, since, until)


def reservations_starting(machine_ids: set[int], since: datetime, until: datetime) -> dict[int, list]:
    """Confirmed reservations of these machines starting in [since, until), whose holders should hear of trouble."""
    if not _answers or not machine_ids:
        return {}
    return _answers[0].reservations_starting(machine_ids, since, until)


def desired_states(machine_ids: list[int]) -> dict[int, object]:
    if not _answers or not machine_ids:
        return {}
    return _answers[0].desired_states(machine_ids)


def booked_hours(labs, start: datetime, end: datetime) -> dict[str, float]:
    if not _answers:
        return {}
    return _answers[0].booked_hours(labs, start, end)
