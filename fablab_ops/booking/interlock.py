"""Who may use a machine now: the one place that decides a machine's desired state.

Every edge that changes a fact behind the decision — a check-in and its undo, a
technician's switch-off or override, a cancellation, a no-show released, a
reservation completed, maintenance scheduled, a certification granted, revoked or
lapsed, a machine's status — calls `refresh(machine_ids)` inside its own
transaction, and nothing else. `decide` is the rule, a pure function of the facts
loaded for one machine:

1. A technician's override in force wins: "switch off now" opens the interlock
   until the technician ends it; "enable for maintenance until T" closes it for the
   technician until T, whatever the reservations, status or maintenance windows say,
   and `next` is the reservation that takes the machine back at T.
2. Otherwise nobody may use a machine that is not available (maintenance, out of
   order, retired) or inside a maintenance window.
3. Otherwise the holder is the learner of the checked-in reservation whose time covers
   now, if their certification for the machine's type is still valid; the grant ends
   at the reservation's end, or earlier at the start of a maintenance window (a window
   inside a reservation splits it: the learner gets the machine back at its end).
4. `next` is the earliest grant still to start (a checked-in reservation back to back,
   checked in early, or the rest of one after a maintenance window), with the same
   checks: the device moves on to it at its `from` on its own clock, so a reservation
   ending never touches the next one.

`refresh` stores the result with the machine's row locked and bumps the version only
when the decision changed; after commit the stored state is published (retained) by
`booking.tasks`, which always sends the latest version (docs/mqtt.md, protocol 2).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from fablab_ops import handoff
from fablab_ops.booking.models import (
    Certification,
    MachineDesiredState,
    MachineOverride,
    OverrideKind,
    Reservation,
    ReservationStatus,
)
from fablab_ops.machines.entitlements import Entitlement
from fablab_ops.machines.models import Machine, MachineStatus, MaintenanceWindow


@dataclass(frozen=True)
class Grant:
    """Someone may use the machine from `start` until `until` (None: until a technician says otherwise)."""

    holder_name: str
    holder_user_id: int | None
    reservation_id: int | None
    start: datetime
    until: datetime | None


@dataclass(frozen=True)
class Desired:
    """The decision for a machine: who holds it now (None: nobody, interlock open) and who comes next."""

    current: Grant | None
    following: Grant | None = None

    def boundary(self) -> datetime | None:
        """When this decision stops holding by itself and must be made again."""
        moments = [m for m in (self.current and self.current.until, self.following and self.following.start) if m]
        return min(moments) if moments else None


@dataclass(frozen=True)
class ReservationFact:
    id: int
    user_id: int
    holder_name: str
    start: datetime
    end: datetime
    certified: bool


@dataclass(frozen=True)
class OverrideFact:
    kind: str
    holder_user_id: int | None
    holder_name: str
    start: datetime
    end: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Facts:
    """What the decision for one machine depends on, loaded at one moment."""

    available: bool
    maintenance: tuple[tuple[datetime, datetime], ...]  # windows ending after now
    overrides: tuple[OverrideFact, ...]  # in force now
    reservations: tuple[ReservationFact, ...]  # checked in, ending after now, by start


def decide(facts: Facts, now: datetime) -> Desired:
    """The desired state of one machine at `now` (the rules in the module's docstring)."""
    if facts.overrides:
        override = max(facts.overrides, key=lambda o: (o.created_at, o.start))  # the latest word counts
        if override.kind == OverrideKind.OFF:
            return Desired(None)
        current = Grant(override.holder_name, override.holder_user_id, None, override.start, override.end)
        if override.end is None or not facts.available:
            return Desired(current)
        # The machine goes back to the reservations when the override ends: the device is told who comes
        # next now, so nothing has to reach it at that moment.
        after = next((g for g in _reservation_grants(facts) if g.until > override.end), None)
        if after is not None and after.start < override.end:
            after = Grant(after.holder_name, after.holder_user_id, after.reservation_id, override.end, after.until)
        return Desired(current, after)
    if not facts.available:
        return Desired(None)
    grants = _reservation_grants(facts)
    current = next((g for g in grants if g.start <= now < g.until), None)
    following = next((g for g in grants if g.start > now and (current is None or g.start >= current.until)), None)
    return Desired(current, following)


def _reservation_grants(facts: Facts) -> list[Grant]:
    """Every grant the checked-in reservations give, cut by maintenance windows, by start."""
    return sorted((grant for r in facts.reservations if r.certified for grant in _grants(r, facts.maintenance)),
                  key=lambda g: g.start)


def _grants(reservation: ReservationFact, maintenance) -> list[Grant]:
    """A reservation's time as grants: the pieces of it no maintenance window covers."""
    pieces, start = [], reservation.start
    for window_start, window_end in sorted(maintenance):
        if window_end <= start or window_start >= reservation.end:
            continue
        if window_start > start:
            pieces.append((start, window_start))
        start = max(start, window_end)
    if start < reservation.end:
        pieces.append((start, reservation.end))
    return [Grant(reservation.holder_name, reservation.user_id, reservation.id, a, b) for a, b in pieces]


def load_facts(machine: Machine, now: datetime) -> Facts:
    windows = tuple(MaintenanceWindow.objects.filter(machine=machine, end__gt=now).order_by("start")
                    .values_list("start", "end"))
    overrides = tuple(
        OverrideFact(o.kind, o.holder_id or o.by_id, (o.holder or o.by).full_name, o.start, o.end, o.created_at)
        for o in MachineOverride.objects.filter(machine=machine, ended_at__isnull=True, start__lte=now)
        .select_related("holder", "by")
        if o.in_force(now))
    reservations = list(Reservation.objects.filter(machine=machine, status=ReservationStatus.CHECKED_IN, end__gt=now)
                        .select_related("user").order_by("start"))
    certified = set()
    if reservations and machine.machine_type.requires_induction:
        certified = set(Certification.objects.filter(
            user_id__in={r.user_id for r in reservations}, machine_type_id=machine.machine_type_id,
            revoked_at__isnull=True).values_list("user_id", flat=True))
    return Facts(
        available=machine.status == MachineStatus.AVAILABLE,
        maintenance=windows,
        overrides=overrides,
        reservations=tuple(ReservationFact(r.id, r.user_id, r.user.full_name, r.start, r.end,
                                           not machine.machine_type.requires_induction or r.user_id in certified)
                           for r in reservations),
    )


def _moment(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def _grant_json(grant: Grant | None) -> dict | None:
    if grant is None:
        return None
    return {"holder": grant.holder_name, "reservation": grant.reservation_id, "from": _moment(grant.start),
            "until": _moment(grant.until)}


def _stored(state: MachineDesiredState) -> tuple:
    """The stored decision in comparable form; since when nobody holds the machine does not matter."""
    holder = state.holder_name is not None
    return (state.holder_name, state.holder_user_id, state.reservation_id,
            state.valid_from if holder else None, state.until, state.next or None)


def _computed(desired: Desired) -> tuple:
    grant = desired.current
    if grant is None:
        return (None, None, None, None, None, _grant_json(desired.following))
    return (grant.holder_name, grant.holder_user_id, grant.reservation_id, grant.start, grant.until,
            _grant_json(desired.following))


def refresh(machine_ids, now: datetime | None = None) -> list[int]:
    """Decide again for these machines inside the caller's transaction; store what changed with a new version.

    Returns the machines whose desired state changed; they are published after commit.
    """
    now = now or timezone.now()
    ids = sorted({int(pk) for pk in machine_ids if pk is not None})
    if not ids:
        return []
    changed = []
    with transaction.atomic():
        MachineDesiredState.objects.bulk_create([MachineDesiredState(machine_id=pk) for pk in ids],
                                                ignore_conflicts=True)
        # Locked in machine order, so two refreshes of overlapping machines never deadlock.
        states = {s.machine_id: s for s in MachineDesiredState.objects.select_for_update().filter(machine_id__in=ids)
                  .order_by("machine_id")}
        machines = Machine.objects.select_related("machine_type").in_bulk(ids)
        for pk in ids:
            state, machine = states[pk], machines.get(pk)
            if machine is None:
                continue
            desired = decide(load_facts(machine, now), now)
            if _computed(desired) == _stored(state):
                if state.boundary_at != desired.boundary():  # nothing to tell the device; look again then
                    MachineDesiredState.objects.filter(pk=state.pk).update(boundary_at=desired.boundary())
                continue
            _store(state, desired, now)
            changed.append(pk)
        if changed:
            transaction.on_commit(lambda: _publish_after_commit(changed), robust=True)
    return changed


def _store(state: MachineDesiredState, desired: Desired, now: datetime) -> None:
    grant = desired.current
    state.version += 1
    state.holder_name = grant.holder_name if grant else None
    state.holder_user_id = grant.holder_user_id if grant else None
    state.reservation_id = grant.reservation_id if grant else None
    state.valid_from = grant.start if grant else now
    state.until = grant.until if grant else None
    state.next = _grant_json(desired.following)
    state.boundary_at = desired.boundary()
    state.computed_at = now
    state.save()


# How a changed desired state reaches the broker: a Celery task, registered by the app when it is ready (the
# task module imports this one). With nothing registered, the beat's sync publishes what is due.
_publishers: list = []


def register_publisher(publish, *, in_background=lambda: False) -> None:
    """`publish(machine_ids)` asks a worker to publish those machines' latest desired states; while
    `in_background()` says so, from this process's handoff thread (`fablab_ops.handoff`), so no check-in waits
    for the broker (`sync_desired_states` publishes whatever it did not take)."""
    _publishers[:] = [(publish, in_background)]


def _publish_after_commit(machine_ids: list[int]) -> None:
    for publish, in_background in _publishers:
        if in_background():
            handoff.put(machine_ids, publish)
        else:
            publish(machine_ids)


def payload(state: MachineDesiredState) -> dict:
    """The retained message of protocol 2 for a stored desired state (times in local time, +07:00)."""
    return {"v": state.version, "holder": state.holder_name, "reservation": state.reservation_id,
            "from": _moment(state.valid_from or state.computed_at), "until": _moment(state.until),
            "next": state.next or None}


def machines_of_holder(user_id: int, machine_type_id: int | None = None, now: datetime | None = None) -> list[int]:
    """Machines where this person holds a checked-in reservation not yet over: a certification change affects them."""
    reservations = Reservation.objects.filter(user_id=user_id, status=ReservationStatus.CHECKED_IN,
                                              end__gt=now or timezone.now())
    if machine_type_id is not None:
        reservations = reservations.filter(machine__machine_type_id=machine_type_id)
    return list(reservations.values_list("machine_id", flat=True).distinct())


def due_for_refresh(now: datetime | None = None) -> list[int]:
    """Machines whose stored state has reached its boundary (`until` or `next.from`)."""
    return list(MachineDesiredState.objects.filter(boundary_at__lte=now or timezone.now())
                .values_list("machine_id", flat=True))


def entitlements_for(machine_ids: set[int], since: datetime, until: datetime) -> dict[int, list[Entitlement]]:
    """Who was entitled to run these machines during [since, until]: the ingest asks this (machines/entitlements.py)
    to tell a learner's or a technician's run from unauthorised use.

    A checked-in (or completed) reservation entitles its holder over its time; a technician's maintenance
    override entitles the technician until its end or until it was ended.
    """
    found: dict[int, list[Entitlement]] = {}
    for r in Reservation.objects.filter(machine_id__in=machine_ids, start__lte=until, end__gt=since,
                                        status__in=[ReservationStatus.CHECKED_IN, ReservationStatus.COMPLETED]):
        found.setdefault(r.machine_id, []).append(Entitlement(r.start, r.end, r.user_id, r.id))
    for o in MachineOverride.objects.filter(machine_id__in=machine_ids, kind=OverrideKind.MAINTENANCE,
                                            start__lte=until):
        end = min(filter(None, [o.end, o.ended_at]), default=None)
        if end is None or end > since:
            found.setdefault(o.machine_id, []).append(Entitlement(o.start, end, o.holder_id or o.by_id, None))
    for entitlements_of_machine in found.values():
        entitlements_of_machine.sort(key=lambda e: e.start)
    return found


def desired_states(machine_ids: list[int]) -> dict[int, MachineDesiredState]:
    """The stored desired state of each machine that has one (the lab's machines page shows it)."""
    return MachineDesiredState.objects.select_related("holder_user").in_bulk(machine_ids, field_name="machine_id")
