"""What machine telemetry means: usage sessions, running hours, live status and alerts.

Called by the ingest (`fablab_ops.machines.ingest`) inside its batch transaction,
through `TelemetryEffects`, and by Celery beat for what only the passing of time
reveals (a machine that stopped sending heartbeats).
"""

from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops import policy
from fablab_ops.errors import Conflict, DomainError, NotFound
from fablab_ops.machines import entitlements
from fablab_ops.machines.entitlements import Entitlement
from fablab_ops.machines.models import (
    AlertKind,
    IngestHealth,
    Lab,
    Machine,
    MachineAlert,
    MachineLiveStatus,
    MachineUsageDay,
    MaintenanceLog,
    MaintenanceWindow,
    QuarantinedMessage,
    UsageCounter,
    UsageSession,
    machine_state_label,
)
from fablab_ops.machines.sql import update_many
from fablab_ops.notifications import notify

HEARTBEAT_TIMEOUT = timedelta(seconds=90)
# A counter's difference is never taken as more running time than passed between its two reports, give
# or take the clocks: a report is placed at most 5 minutes (the ingest's clock-skew limit) from where the
# device's clock says, so two of them may look up to 10 minutes closer than they were. A device that
# counts wrong cannot add more than that to the hours of one interval.
COUNTER_SLACK_S = 600.0
# Holders of reservations starting within this window hear of a broken machine before they travel.
WARN_HOLDERS_WITHIN = timedelta(hours=24)


class TelemetryEffects:
    """What state reports do to usage sessions, usage hours and alerts, for the machines of one ingest batch.

    The reports are walked in memory (`state`, `late_state`, `counter`, `offline`), then `apply()`
    writes what they amount to in a handful of set-based statements, however many
    times the machines changed state: opened and closed running periods, hours per
    day, alerts raised and cleared, maintenance flags, notifications.

    Created inside the batch's transaction once the machines' live-status rows are
    locked. Every other writer of a machine's sessions and alerts (the heartbeat
    timeout, a maintenance log) takes that lock too, so what is read here once, on
    first need, stays true until the batch commits.
    """

    def __init__(self, machine_ids, since: datetime, until: datetime):
        self.machine_ids = set(machine_ids)
        self.since, self.until = since, until
        self.now = timezone.now()  # one clock for the batch: alerts raised and cleared, notifications
        self._loaded = False
        self._open_sessions: dict[int, UsageSession] = {}
        self._open_alerts: dict[tuple[int, str], MachineAlert] = {}
        self._entitlements: dict[int, list[Entitlement]] | None = None
        self._machine_rows: dict[int, Machine] | None = None
        self._new_sessions: list[UsageSession] = []
        self._changed_sessions: dict[int, UsageSession] = {}
        self._running_seconds: dict[tuple[int, date], float] = {}
        self._energy_wh: dict[tuple[int, date], float] = {}
        self._counters: dict[tuple[int, str], UsageCounter] = {}
        self._changed_counters: dict[tuple[int, str], UsageCounter] = {}
        self._new_alerts: list[tuple[MachineAlert, bool]] = []  # (alert, warn the holders of upcoming bookings)
        self._resolved_alerts: list[MachineAlert] = []
        self._closed: set[int] = set()

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        ids = self.machine_ids
        self._open_sessions = {session.machine_id: session for session in UsageSession.objects
                               .select_for_update().filter(machine_id__in=ids, end__isnull=True)}
        self._open_alerts = {(alert.machine_id, alert.kind): alert for alert in MachineAlert.objects
                             .filter(machine_id__in=ids, resolved_at__isnull=True)}

    def _machines(self) -> dict[int, Machine]:
        if self._machine_rows is None:
            self._machine_rows = Machine.objects.select_related("lab").in_bulk(self.machine_ids)
        return self._machine_rows

    def _entitlement(self, machine_id: int, at: datetime) -> Entitlement | None:
        """Whoever was entitled to run the machine at `at` (a checked-in reservation, a technician), if anyone."""
        if self._entitlements is None:
            self._entitlements = entitlements.entitled(self.machine_ids, self.since, self.until)
        return next((e for e in self._entitlements.get(machine_id, ()) if e.covers(at)), None)

    # --- what reports mean (in memory)

    def state(self, machine_id: int, report) -> None:
        """A machine's state changed, it came back, or it runs: open or close its running period, raise or clear alerts.

        A machine that reports `running` with no open period gets one, whatever came before.
        For a counter device (its report carries `run_s`) hours come from the counters
        (`counter`): closing its period adds nothing to the day's hours.
        """
        self._load()
        open_session = self._open_sessions.get(machine_id)
        if report.state == "running":
            if open_session is None:
                self._open_session(machine_id, report)
        elif open_session is not None:
            self._close_session(open_session, report.at, add_hours=report.run_s is None)
        if report.state == "error":
            self._raise(machine_id, AlertKind.ERROR, _("Máy báo lỗi lúc %(time)s") % {"time": _local(report.at)},
                        warn_holders=True)
        else:
            self._resolve(machine_id, AlertKind.ERROR)
            self._resolve(machine_id, AlertKind.OFFLINE)

    def late_state(self, machine_id: int, report) -> None:
        """A report older than the live state: it may only show a running period began earlier."""
        if report.state != "running":
            return
        self._load()
        open_session = self._open_sessions.get(machine_id)
        if open_session is not None and timedelta(0) < open_session.start - report.at <= HEARTBEAT_TIMEOUT:
            open_session.start = report.at
            self._changed(open_session)

    def offline(self, machine_id: int, at: datetime, last_state_at: datetime | None, *, counted: bool = False) -> None:
        """The machine went offline; `counted`: its hours come from counters, closing its period adds none."""
        self._load()
        open_session = self._open_sessions.get(machine_id)
        if open_session is not None:
            # The machine was last known running at its last report, not when we noticed silence.
            self._close_session(open_session, max(open_session.start, last_state_at or at), add_hours=not counted)
        self._raise(machine_id, AlertKind.OFFLINE, _("Máy mất kết nối từ %(time)s") % {"time": _local(at)},
                    warn_holders=True)

    def _open_session(self, machine_id: int, report) -> None:
        entitlement = self._entitlement(machine_id, report.at)
        session = UsageSession(machine_id=machine_id, start=report.at, job=report.job,
                               reservation_id=entitlement.reservation_id if entitlement else None,
                               user_id=entitlement.user_id if entitlement else None)
        self._new_sessions.append(session)
        self._open_sessions[machine_id] = session
        if entitlement is None:
            self._raise(machine_id, AlertKind.UNAUTHORISED_USE,
                        _("Máy đang chạy lúc %(time)s mà không có lượt đặt máy nào đã check-in.")
                        % {"time": _local(report.at)})

    def expect_counters(self, keys: set[tuple[int, str]]) -> None:
        """Read the stored counters of these (machine, boot) pairs, once for the batch, before any `counter`."""
        if not keys:
            return
        self._counters = {(c.machine_id, c.boot): c for c in UsageCounter.objects.filter(
            machine_id__in={machine_id for machine_id, _boot in keys}, boot__in={boot for _id, boot in keys})
            if (c.machine_id, c.boot) in keys}

    def counter(self, machine_id: int, report) -> None:
        """A counter report: add the running time and energy since the boot's previous highest `seq`.

        The difference is spread over the local days between the two reports. The
        first report of a boot counts its whole `run_s`, from `run_s` before it. A late
        report (lower `seq`) adds nothing: its counts are inside a later difference already.
        """
        key = (machine_id, report.boot)
        last = self._counters.get(key)
        if last is not None and report.seq <= last.seq:
            return
        if last is None:
            seconds = min(report.run_s, (report.at - BEFORE_ANY_MAINTENANCE).total_seconds())
            since, run, energy = report.at - timedelta(seconds=seconds), seconds, report.energy_wh or 0.0
        else:
            since = min(last.at, report.at)
            run = max(report.run_s - last.run_s, 0.0)
            energy = (max(report.energy_wh - last.energy_wh, 0.0)
                      if report.energy_wh is not None and last.energy_wh is not None else 0.0)
        run = min(run, (report.at - since).total_seconds() + COUNTER_SLACK_S)
        for day, share in _shares_by_day(since, report.at):
            day_key = (machine_id, day)
            if run:
                self._running_seconds[day_key] = self._running_seconds.get(day_key, 0.0) + run * share
            if energy:
                self._energy_wh[day_key] = self._energy_wh.get(day_key, 0.0) + energy * share
        if energy:
            self._load()
            open_session = self._open_sessions.get(machine_id)
            if open_session is not None:  # drawn while the period that is open until this report ran
                open_session.energy_wh += energy
                self._changed(open_session)
        counter = UsageCounter(machine_id=machine_id, boot=report.boot, seq=report.seq, at=report.at,
                               run_s=report.run_s, energy_wh=report.energy_wh)
        self._counters[key] = self._changed_counters[key] = counter

    def _close_session(self, session: UsageSession, end: datetime, *, add_hours: bool = True) -> None:
        session.end = max(end, session.start)
        self._changed(session)
        del self._open_sessions[session.machine_id]
        for day, seconds in running_seconds_by_day(session.start, session.end) if add_hours else ():
            key = (session.machine_id, day)
            self._running_seconds[key] = self._running_seconds.get(key, 0.0) + seconds
        self._resolve(session.machine_id, AlertKind.UNAUTHORISED_USE)
        self._closed.add(session.machine_id)

    def _changed(self, session: UsageSession) -> None:
        if session.pk is not None:  # a new one is written whole by apply()
            self._changed_sessions[session.pk] = session

    def _raise(self, machine_id: int, kind: str, detail: str, *, warn_holders: bool = False) -> None:
        """Open an alert, once while it stays open."""
        if (machine_id, kind) in self._open_alerts:
            return
        alert = MachineAlert(machine_id=machine_id, kind=kind, raised_at=self.now, detail=detail[:300])
        self._open_alerts[(machine_id, kind)] = alert
        self._new_alerts.append((alert, warn_holders))

    def _resolve(self, machine_id: int, kind: str) -> None:
        alert = self._open_alerts.pop((machine_id, kind), None)
        if alert is None:
            return
        alert.resolved_at = self.now
        if alert.pk is not None:  # a new one is written already resolved: raised and cleared within the batch
            self._resolved_alerts.append(alert)

    # --- writing it down

    def apply(self) -> None:
        if self._changed_sessions:
            # Closing comes first: a machine may have only one open period at a time.
            update_many(UsageSession, list(self._changed_sessions.values()), ["start", "end", "energy_wh"])
        if self._new_sessions:
            UsageSession.objects.bulk_create(self._new_sessions)
        if self._running_seconds or self._energy_wh:
            add_usage(self._running_seconds, self._energy_wh)
        if self._changed_counters:
            save_counters(list(self._changed_counters.values()))
        self._check_maintenance()
        if self._resolved_alerts:
            MachineAlert.objects.filter(pk__in=[alert.pk for alert in self._resolved_alerts]).update(
                resolved_at=self.now)
        if self._new_alerts:
            MachineAlert.objects.bulk_create([alert for alert, _warn in self._new_alerts])
            self._tell_about(self._new_alerts)

    def _check_maintenance(self) -> None:
        candidates = {machine_id for machine_id in self._closed
                      if (machine_id, AlertKind.MAINTENANCE_DUE) not in self._open_alerts}
        if not candidates:
            return
        hours = running_hours_since_maintenance_of(candidates)
        due = [machine for machine_id, machine in self._machines().items()
               if machine_id in candidates and hours[machine_id] >= machine.maintenance_interval_hours]
        if not due:
            return
        MachineLiveStatus.objects.filter(machine__in=due).update(maintenance_due=True)
        for machine in due:
            self._raise(machine.pk, AlertKind.MAINTENANCE_DUE,
                        _("Đã chạy %(hours).1f giờ kể từ lần bảo trì trước (chu kỳ %(interval)d giờ).")
                        % {"hours": hours[machine.pk], "interval": machine.maintenance_interval_hours})

    def _tell_about(self, new_alerts: list[tuple[MachineAlert, bool]]) -> None:
        """The lab's technicians hear of every new alert; holders of bookings soon, of a machine in trouble."""
        machines = self._machines()
        technicians: dict[int, list] = {}
        for membership in (Lab.technicians.through.objects.filter(
                lab_id__in={machine.lab_id for machine in machines.values()}, user__is_active=True)
                .select_related("user")):
            technicians.setdefault(membership.lab_id, []).append(membership.user)
        now = self.now
        warned = {alert.machine_id for alert, warn in new_alerts if warn}
        upcoming = entitlements.reservations_starting(warned, now, now + WARN_HOLDERS_WITHIN) if warned else {}
        for alert, warn in new_alerts:
            machine = machines[alert.machine_id]
            for technician in technicians.get(machine.lab_id, ()):
                notify(technician, "machine_alert", dedup_key=f"machine-alert-{alert.pk}-{technician.pk}",
                       context={"alert": alert, "machine": machine})
            for reservation in upcoming.get(alert.machine_id, ()) if warn else ():
                notify(reservation.user, "reservation_machine_trouble",
                       dedup_key=f"machine-trouble-{alert.pk}-{reservation.pk}",
                       context={"alert": alert, "machine": machine, "reservation": reservation})


def on_offline(machine_id: int, at: datetime) -> None:
    """A machine went offline (last will, or silence past the heartbeat timeout)."""
    live = MachineLiveStatus.objects.filter(machine_id=machine_id).first()
    counted = bool(live and live.boot and UsageCounter.objects.filter(machine_id=machine_id, boot=live.boot).exists())
    effects = TelemetryEffects([machine_id], since=at, until=at)
    effects.offline(machine_id, at, live.last_state_at if live else None, counted=counted)
    effects.apply()


def on_online(machine_ids: list[int]) -> None:
    """Machines (re)connected: they are no longer offline. A running period is opened by the next `running` report."""
    if machine_ids:
        MachineAlert.objects.filter(machine_id__in=machine_ids, kind=AlertKind.OFFLINE,
                                    resolved_at__isnull=True).update(resolved_at=timezone.now())


def _local(at: datetime) -> str:
    return timezone.localtime(at).strftime("%H:%M %d/%m/%Y")


def running_seconds_by_day(start: datetime, end: datetime) -> list[tuple[date, float]]:
    """A running period split at local midnights: (local day, seconds) pieces."""
    pieces = []
    cursor = start
    while cursor < end:
        local = timezone.localtime(cursor)
        next_midnight = timezone.make_aware(datetime.combine(local.date() + timedelta(days=1), datetime.min.time()))
        piece_end = min(end, next_midnight)
        pieces.append((local.date(), (piece_end - cursor).total_seconds()))
        cursor = piece_end
    return pieces


def _shares_by_day(start: datetime, end: datetime) -> list[tuple[date, float]]:
    """The local days of [start, end] with the share of the interval each holds (all of it on one instant's day)."""
    if end <= start:
        return [(timezone.localtime(end).date(), 1.0)]
    total = (end - start).total_seconds()
    return [(day, seconds / total) for day, seconds in running_seconds_by_day(start, end)]


def add_running_time(machine_id: int, start: datetime, end: datetime) -> None:
    """Add one running period to the per-day roll-up."""
    add_running_seconds({(machine_id, day): seconds for day, seconds in running_seconds_by_day(start, end)})


def add_running_seconds(seconds_by_machine_day: dict[tuple[int, date], float]) -> None:
    add_usage(seconds_by_machine_day, {})


def add_usage(seconds_by_machine_day: dict[tuple[int, date], float],
              energy_by_machine_day: dict[tuple[int, date], float]) -> None:
    """Add running seconds and energy to the per-day roll-up in one statement, whether or not the days have rows yet.

    Adding (not overwriting) in the database keeps two writers of the same day both counted.
    """
    keys = [key for key in {**seconds_by_machine_day, **energy_by_machine_day}
            if seconds_by_machine_day.get(key) or energy_by_machine_day.get(key)]
    if not keys:
        return
    values = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(ADD_USAGE.format(values=values), [
            value for key in keys
            for value in (*key, seconds_by_machine_day.get(key, 0.0), energy_by_machine_day.get(key, 0.0))])


ADD_USAGE = """
INSERT INTO machines_machineusageday (machine_id, day, running_seconds, energy_wh) VALUES {values}
ON CONFLICT (machine_id, day) DO UPDATE
SET running_seconds = machines_machineusageday.running_seconds + excluded.running_seconds,
    energy_wh = machines_machineusageday.energy_wh + excluded.energy_wh
"""


def save_counters(counters: list[UsageCounter]) -> None:
    """Keep each (machine, boot)'s counters at its highest `seq`, in one statement."""
    if connection.vendor != "postgresql":
        for c in counters:
            UsageCounter.objects.update_or_create(machine_id=c.machine_id, boot=c.boot, defaults={
                "seq": c.seq, "at": c.at, "run_s": c.run_s, "energy_wh": c.energy_wh})
        return
    with connection.cursor() as cursor:
        cursor.execute(SAVE_COUNTERS, [[getattr(c, name) for c in counters]
                                       for name in ("machine_id", "boot", "seq", "at", "run_s", "energy_wh")])


SAVE_COUNTERS = """
INSERT INTO machines_usagecounter (machine_id, boot, seq, "at", run_s, energy_wh)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::timestamptz[], %s::float8[], %s::float8[])
ON CONFLICT (machine_id, boot) DO UPDATE
SET seq = excluded.seq, "at" = excluded."at", run_s = excluded.run_s, energy_wh = excluded.energy_wh
WHERE excluded.seq > machines_usagecounter.seq
"""


def running_hours_since_maintenance(machine: Machine, now: datetime | None = None) -> float:
    """Running hours since the machine's last maintenance log."""
    return running_hours_since_maintenance_of([machine.pk], now)[machine.pk]


def running_hours_since_maintenance_of(machine_ids, now: datetime | None = None) -> dict[int, float]:
    """Running hours since each machine's last maintenance log, summed in the database in one query.

    A period still open counts up to now; one running across the last maintenance counts from it.
    """
    now = now or timezone.now()
    last = Subquery(MaintenanceLog.objects.filter(machine_id=OuterRef("machine_id"))
                    .order_by("-done_at").values("done_at")[:1])
    since = Coalesce(last, Value(BEFORE_ANY_MAINTENANCE, output_field=DateTimeField()))
    until = Coalesce("end", Value(now, output_field=DateTimeField()))
    totals = dict(UsageSession.objects.filter(machine_id__in=machine_ids).annotate(since=since)
                  .filter(Q(end__isnull=True) | Q(end__gt=F("since")))
                  .values("machine_id").order_by()
                  .annotate(total=Sum(ExpressionWrapper(until - Greatest("start", "since"),
                                                        output_field=DurationField())))
                  .values_list("machine_id", "total"))
    return {machine_id: max(totals[machine_id].total_seconds(), 0.0) / 3600 if totals.get(machine_id) else 0.0
            for machine_id in machine_ids}


BEFORE_ANY_MAINTENANCE = datetime(2000, 1, 1, tzinfo=UTC)


def record_maintenance(machine: Machine, *, by, note: str, now: datetime | None = None) -> MaintenanceLog:
    """Maintenance done: log it and start counting running hours from zero."""
    policy.require_lab_staff(by, machine.lab)
    if not note.strip():
        raise DomainError(_("Hãy ghi lại công việc bảo trì đã làm."), code="note_required")
    now = now or timezone.now()
    with transaction.atomic():
        log = MaintenanceLog.objects.create(machine=machine, done_at=now, by=by, note=note.strip()[:300],
                                            running_hours=round(running_hours_since_maintenance(machine, now), 2))
        MachineLiveStatus.objects.filter(machine=machine).update(maintenance_due=False)
        MachineAlert.objects.filter(machine=machine, kind=AlertKind.MAINTENANCE_DUE, resolved_at__isnull=True).update(
            resolved_at=now, resolved_by=by, resolution_note=log.note[:300])
        return log


# --- technicians' handling of alerts ----------------------------------------

NOTE_MAX = 300


def _locked_alert(lab: Lab, alert_id: int, by) -> MachineAlert:
    """The lab's alert, with its machine's live-status row locked as the ingest's batches lock it."""
    policy.require_lab_staff(by, lab)
    machine_id = (MachineAlert.objects.filter(pk=alert_id, machine__lab=lab)
                  .values_list("machine_id", flat=True).first())
    if machine_id is None:
        raise NotFound(_("Không tìm thấy cảnh báo."))
    list(MachineLiveStatus.objects.select_for_update().filter(machine_id=machine_id))
    return MachineAlert.objects.select_for_update().select_related("machine").get(pk=alert_id)


def acknowledge_alert(lab: Lab, alert_id: int, *, by, note: str, now: datetime | None = None) -> MachineAlert:
    """A technician takes an open alert in hand, saying what is being done; it stays open until resolved."""
    note = note.strip()
    if not note:
        raise DomainError(_("Hãy ghi lại việc bạn sẽ làm với cảnh báo này."), code="note_required")
    with transaction.atomic():
        alert = _locked_alert(lab, alert_id, by)
        if alert.resolved_at is not None:
            raise Conflict(_("Cảnh báo này đã được xử lý."), code="already_resolved")
        alert.acknowledged_at = now or timezone.now()
        alert.acknowledged_by = by
        alert.acknowledgement_note = note[:NOTE_MAX]
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledgement_note"])
        return alert


def resolve_alert(lab: Lab, alert_id: int, *, by, note: str = "", now: datetime | None = None) -> MachineAlert:
    """A technician closes an alert whose cause is dealt with; the telemetry raises it again if it comes back.

    "Maintenance due" is closed by recording the maintenance (`record_maintenance`), which also
    starts the hours counter again: closing it alone would leave the machine due.
    """
    with transaction.atomic():
        alert = _locked_alert(lab, alert_id, by)
        if alert.resolved_at is not None:
            raise Conflict(_("Cảnh báo này đã được xử lý."), code="already_resolved")
        if alert.kind == AlertKind.MAINTENANCE_DUE:
            raise Conflict(_("Hãy ghi nhận bảo trì đã làm: cảnh báo đến hạn bảo trì sẽ tự đóng."),
                           code="record_maintenance")
        alert.resolved_at = now or timezone.now()
        alert.resolved_by = by
        alert.resolution_note = note.strip()[:NOTE_MAX]
        alert.save(update_fields=["resolved_at", "resolved_by", "resolution_note"])
        return alert


def mark_silent_machines_offline(now: datetime | None = None) -> int:
    """Machines whose heartbeats stopped are offline (Celery beat)."""
    now = now or timezone.now()
    silent = list(MachineLiveStatus.objects.filter(online=True, last_seen_at__lt=now - HEARTBEAT_TIMEOUT)
                  .values_list("machine_id", "last_seen_at"))
    for machine_id, last_seen in silent:
        with transaction.atomic():
            # The UPDATE takes the live-status row lock the ingest's batches take (see TelemetryEffects).
            updated = MachineLiveStatus.objects.filter(machine_id=machine_id, online=True,
                                                       last_seen_at=last_seen).update(online=False)
            if updated:
                on_offline(machine_id, last_seen)
    return len(silent)


# --- reading ---------------------------------------------------------------

def live_board_today(lab: Lab | None = None, *, now: datetime | None = None) -> list[dict]:
    """The live board with, per machine, who holds it now (the name the interlock shows, as on the lab's
    machines page: no contact details) and the periods it ran today (local time), for the day's timeline."""
    now = now or timezone.now()
    board = live_board(lab)
    ids = [row["machine"].pk for row in board]
    holders = {machine_id: (state.holder_name, state.until)
               for machine_id, state in entitlements.desired_states(ids).items() if state.holder_name}
    start = timezone.make_aware(datetime.combine(timezone.localdate(now), datetime.min.time()))
    runs: dict[int, list] = {}
    for machine_id, begin, end in (UsageSession.objects.filter(machine_id__in=ids, start__lt=now)
                                   .filter(Q(end__isnull=True) | Q(end__gt=start))
                                   .order_by("start").values_list("machine_id", "start", "end")):
        runs.setdefault(machine_id, []).append((timezone.localtime(max(begin, start)),
                                                timezone.localtime(min(end or now, now))))
    for row in board:
        machine_id = row["machine"].pk
        row["holder"], row["holder_until"] = holders.get(machine_id, (None, None))
        row["runs"] = runs.get(machine_id, [])
        row["day_start"] = timezone.localtime(start)
        interval = row["machine"].maintenance_interval_hours
        row["to_maintenance"] = round(max(interval - row["since_maintenance"], 0), 1) if interval else None
    return board


def live_board(lab: Lab | None = None) -> list[dict]:
    """Every machine with its live status, today's running hours and open alerts.

    `stale_minutes` says how old a machine's data is when its last message is older than
    the heartbeat timeout (a silent machine, or an ingest that is behind); else None.
    """
    today = timezone.localdate()
    machines = Machine.objects.exclude(status="retired").select_related("lab", "machine_type", "live")
    if lab is not None:
        machines = machines.filter(lab=lab)
    today_hours = dict(MachineUsageDay.objects.filter(day=today, machine__in=machines)
                       .values_list("machine_id").annotate(s=Sum("running_seconds")))
    now = timezone.now()
    start_of_day = timezone.make_aware(datetime.combine(today, datetime.min.time()))
    # A counter device's hours are in the roll-up up to its last counter report: only the time since counts on top.
    counted_until = dict(UsageCounter.objects.filter(machine__in=machines, boot=F("machine__live__boot"))
                         .values_list("machine_id", "at"))
    open_now = {machine_id: max((now - max(start, start_of_day, counted_until.get(machine_id, start)))
                                .total_seconds(), 0.0) / 3600
                for machine_id, start in UsageSession.objects.filter(end__isnull=True, machine__in=machines)
                .values_list("machine_id", "start")}
    alerts: dict[int, list] = {}
    for alert in MachineAlert.objects.filter(resolved_at__isnull=True, machine__in=machines).select_related(
            "acknowledged_by"):
        alerts.setdefault(alert.machine_id, []).append(alert)
    since_maintenance = running_hours_since_maintenance_of([machine.pk for machine in machines], now)
    board = []
    for machine in machines:
        live = getattr(machine, "live", None)
        online = bool(live and live.online and live.last_seen_at and now - live.last_seen_at <= HEARTBEAT_TIMEOUT)
        board.append({
            "machine": machine, "online": online, "state": live.state if live else "",
            "state_label": machine_state_label(live.state) if live and live.state else _("Chưa có dữ liệu"),
            "power_w": live.power_w if live else None, "last_seen_at": live.last_seen_at if live else None,
            "today_hours": round((today_hours.get(machine.pk, 0.0)) / 3600 + open_now.get(machine.pk, 0.0), 2),
            "since_maintenance": round(since_maintenance[machine.pk], 1),
            "maintenance_due": bool(live and live.maintenance_due), "alerts": alerts.get(machine.pk, []),
            "gaps": live.lost_messages if live else 0,
            "stale_minutes": _stale_minutes(live.last_seen_at if live else None, now),
        })
    return board


RECENT_ALERTS = timedelta(days=7)
QUARANTINE_PAGE = 25


def lab_machines(lab: Lab, *, by, now: datetime | None = None) -> dict:
    """A lab's machines page: the live board, each machine's desired state and maintenance, recent alerts."""
    policy.require_lab_staff(by, lab)
    now = now or timezone.now()
    board = live_board(lab)
    ids = [row["machine"].pk for row in board]
    desired = entitlements.desired_states(ids)
    applied = dict(MachineLiveStatus.objects.filter(machine_id__in=ids).values_list("machine_id", "desired_applied_v"))
    windows: dict[int, list] = {}
    for window in MaintenanceWindow.objects.filter(machine_id__in=ids, end__gt=now).select_related("created_by"):
        windows.setdefault(window.machine_id, []).append(window)
    last_logs: dict[int, MaintenanceLog] = {}
    for log in MaintenanceLog.objects.filter(machine_id__in=ids).select_related("by").order_by("machine_id",
                                                                                                 "-done_at"):
        last_logs.setdefault(log.machine_id, log)
    for row in board:
        machine_id = row["machine"].pk
        row["desired"] = desired.get(machine_id)
        row["applied_version"] = applied.get(machine_id, 0)
        row["windows"] = windows.get(machine_id, [])
        row["last_maintenance"] = last_logs.get(machine_id)
    recent = (MachineAlert.objects.filter(machine__lab=lab, resolved_at__gte=now - RECENT_ALERTS)
              .select_related("machine", "acknowledged_by", "resolved_by").order_by("-resolved_at")[:50])
    return {"board": board, "recent_alerts": list(recent)}


def quarantined_messages(lab: Lab, *, by, reason: str = ""):
    """Telemetry the ingest refused on the lab's topics (`fablab/{lab}/…`), newest first, optionally of one reason."""
    policy.require_lab_staff(by, lab)
    messages = QuarantinedMessage.objects.filter(topic__startswith=f"fablab/{lab.slug}/")
    if reason:
        messages = messages.filter(reason=reason)
    return messages.order_by("-received_at", "-pk")


def quarantine_reasons(lab: Lab) -> list[str]:
    """The reasons the lab's quarantined messages were refused for (the page's filter)."""
    return list(QuarantinedMessage.objects.filter(topic__startswith=f"fablab/{lab.slug}/")
                .values_list("reason", flat=True).distinct().order_by("reason"))


def _stale_minutes(last: datetime | None, now: datetime) -> int | None:
    if last is None or now - last <= HEARTBEAT_TIMEOUT:
        return None
    return int((now - last).total_seconds() // 60)


# An ingest replica is unhealthy when it has not said it is alive for this long (stopped, or cannot reach
# the database), or when reports wait in its queue and it has committed nothing for this long.
INGEST_STALE_AFTER = timedelta(seconds=120)


def ingest_health(now: datetime | None = None, stale_after: timedelta = INGEST_STALE_AFTER) -> list[dict]:
    """Each ingest replica's figures, its lag (now - newest stored report's receive time) and what is wrong."""
    now = now or timezone.now()
    replicas = []
    for health in IngestHealth.objects.order_by("client_id"):
        problems = []
        if health.alive_at is None or now - health.alive_at > stale_after:
            problems.append("not alive")
        if health.queued and (health.last_commit_at is None or now - health.last_commit_at > stale_after):
            problems.append("reports waiting, nothing committed")
        replicas.append({
            "client_id": health.client_id, "stored": health.stored, "duplicates": health.duplicates,
            "quarantined": dict(health.quarantined), "last_commit_at": health.last_commit_at,
            "newest_received_at": health.newest_received_at, "alive_at": health.alive_at, "queued": health.queued,
            "lag_s": (now - health.newest_received_at).total_seconds() if health.newest_received_at else None,
            "problems": problems,
        })
    return replicas


def ingest_stale_minutes(now: datetime | None = None) -> int | None:
    """How old the newest stored report is, in minutes, when that is past the heartbeat timeout; else None.

    Devices send a heartbeat every 30 s: nothing newer than this means the ingest is behind
    or stopped (or no device is on), and every figure on the machines page is that old.
    """
    now = now or timezone.now()
    newest = IngestHealth.objects.aggregate(newest=Max("newest_received_at"))["newest"]
    return _stale_minutes(newest, now)



def usage_summary(labs, date_from, date_to) -> dict:
    """Hours used (telemetry roll-up) per machine, lab and day, beside the hours booked."""
    days = (MachineUsageDay.objects.filter(machine__lab__in=labs, day__gte=date_from, day__lte=date_to)
            .select_related("machine__lab").order_by("day", "machine__lab__slug", "machine__slug"))
    per_day, per_machine, per_lab = [], {}, {}
    for row in days:
        hours = round(row.running_seconds / 3600, 3)
        key = f"{row.machine.lab.slug}/{row.machine.slug}"
        per_day.append({"lab": row.machine.lab.slug, "machine": row.machine.slug, "day": row.day, "hours_used": hours})
        per_machine[key] = round(per_machine.get(key, 0) + hours, 3)
        per_lab[row.machine.lab.slug] = round(per_lab.get(row.machine.lab.slug, 0) + hours, 3)
    tz = timezone.get_default_timezone()
    start = datetime.combine(date_from, datetime.min.time(), tz)
    end = datetime.combine(date_to + timedelta(days=1), datetime.min.time(), tz)
    booked = entitlements.booked_hours(labs, start, end)
    return {"date_from": date_from, "date_to": date_to, "per_day": per_day, "per_machine": per_machine,
            "per_lab": per_lab, "booked_hours": booked}
