"""What machine telemetry means: usage sessions, running hours, live status and alerts.

Called by the ingest (`fablab_ops.machines.ingest`) inside its batch transaction,
and by Celery beat for what only the passing of time reveals (a machine that
stopped sending heartbeats).
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops.booking.models import Reservation, ReservationStatus
from fablab_ops.errors import DomainError
from fablab_ops.machines.models import (
    AlertKind,
    Lab,
    Machine,
    MachineAlert,
    MachineLiveStatus,
    MachineUsageDay,
    MaintenanceLog,
    UsageSession,
)
from fablab_ops.notifications import notify

HEARTBEAT_TIMEOUT = timedelta(seconds=90)
# Holders of reservations starting within this window hear of a broken machine before they travel.
WARN_HOLDERS_WITHIN = timedelta(hours=24)


def covering_reservation(machine_id: int, at: datetime) -> Reservation | None:
    """The checked-in reservation a running machine is being used under, if any."""
    return (Reservation.objects.filter(machine_id=machine_id, start__lte=at, end__gt=at,
                                       status__in=[ReservationStatus.CHECKED_IN, ReservationStatus.COMPLETED])
            .select_related("user").first())


def on_state(machine_id: int, report) -> None:
    open_session = UsageSession.objects.select_for_update().filter(machine_id=machine_id, end__isnull=True).first()
    if report.state == "running":
        if open_session is None:
            _open_session(machine_id, report)
    elif open_session is not None:
        close_session(open_session, report.at)
    if report.state == "error":
        _raise(machine_id, AlertKind.ERROR, _("Máy báo lỗi lúc %(time)s") % {"time": _local(report.at)},
               warn_holders=True)
    else:
        _resolve(machine_id, AlertKind.ERROR)
        _resolve(machine_id, AlertKind.OFFLINE)


def on_late_state(machine_id: int, report) -> None:
    """A report older than the live state: it may only show a running period began earlier."""
    if report.state != "running":
        return
    open_session = UsageSession.objects.select_for_update().filter(machine_id=machine_id, end__isnull=True).first()
    if open_session is not None and timedelta(0) < open_session.start - report.at <= HEARTBEAT_TIMEOUT:
        open_session.start = report.at
        open_session.save(update_fields=["start"])


def on_offline(machine_id: int, at: datetime) -> None:
    live = MachineLiveStatus.objects.filter(machine_id=machine_id).first()
    open_session = UsageSession.objects.select_for_update().filter(machine_id=machine_id, end__isnull=True).first()
    if open_session is not None:
        # The machine was last known running at its last report, not when we noticed silence.
        close_session(open_session, max(open_session.start, (live.last_state_at if live else None) or at))
    _raise(machine_id, AlertKind.OFFLINE, _("Máy mất kết nối từ %(time)s") % {"time": _local(at)},
           warn_holders=True)


def _local(at: datetime) -> str:
    return timezone.localtime(at).strftime("%H:%M %d/%m/%Y")


def _open_session(machine_id: int, report) -> UsageSession:
    reservation = covering_reservation(machine_id, report.at)
    session = UsageSession.objects.create(
        machine_id=machine_id, start=report.at, job=report.job,
        reservation=reservation, user=reservation.user if reservation else None,
    )
    if reservation is None:
        _raise(machine_id, AlertKind.UNAUTHORISED_USE,
               _("Máy đang chạy lúc %(time)s mà không có lượt đặt máy nào đã check-in.")
               % {"time": _local(report.at)})
    return session


def close_session(session: UsageSession, end: datetime) -> None:
    from fablab_ops.machines.ingest import add_running_time

    session.end = max(end, session.start)
    session.save(update_fields=["end"])
    add_running_time(session.machine_id, session.start, session.end, session.energy_wh)
    _resolve(session.machine_id, AlertKind.UNAUTHORISED_USE)
    _check_maintenance(session.machine_id)


def _raise(machine_id: int, kind: str, detail: str, *, warn_holders: bool = False) -> MachineAlert | None:
    """Open an alert (once while it stays open) and tell the lab's technicians."""
    now = timezone.now()
    try:
        with transaction.atomic():
            alert = MachineAlert.objects.create(machine_id=machine_id, kind=kind, raised_at=now, detail=detail)
    except IntegrityError:
        return None  # already open
    machine = Machine.objects.select_related("lab").get(pk=machine_id)
    for technician in machine.lab.technicians.filter(is_active=True):
        notify(technician, "machine_alert", dedup_key=f"machine-alert-{alert.pk}-{technician.pk}",
               context={"alert": alert, "machine": machine})
    if warn_holders:
        upcoming = (Reservation.objects.filter(machine_id=machine_id, status=ReservationStatus.CONFIRMED,
                                               start__gte=now, start__lt=now + WARN_HOLDERS_WITHIN)
                    .select_related("user"))
        for reservation in upcoming:
            notify(reservation.user, "reservation_machine_trouble",
                   dedup_key=f"machine-trouble-{alert.pk}-{reservation.pk}",
                   context={"alert": alert, "machine": machine, "reservation": reservation})
    return alert


def _resolve(machine_id: int, kind: str) -> None:
    MachineAlert.objects.filter(machine_id=machine_id, kind=kind, resolved_at__isnull=True).update(
        resolved_at=timezone.now())


def running_hours_since_maintenance(machine: Machine, now: datetime | None = None) -> float:
    """Running hours since the last maintenance log, summed in the database (history grows)."""
    now = now or timezone.now()
    last = machine.maintenance_logs.order_by("-done_at").values_list("done_at", flat=True).first()
    sessions = machine.usage_sessions.all()
    closed = sessions.filter(end__isnull=False)
    if last is not None:
        closed = closed.filter(start__gte=last)
    total = closed.aggregate(total=Sum(ExpressionWrapper(F("end") - F("start"), output_field=DurationField())))
    seconds = total["total"].total_seconds() if total["total"] else 0.0
    # The few periods still open, or running across the last maintenance, are added by hand.
    partial = sessions.filter(end__isnull=True)
    if last is not None:
        partial = sessions.filter(Q(end__isnull=True) | Q(start__lt=last, end__gt=last))
    for start, end in partial.values_list("start", "end"):
        seconds += ((end or now) - max(start, last or start)).total_seconds()
    return seconds / 3600


def _check_maintenance(machine_id: int) -> None:
    machine = Machine.objects.get(pk=machine_id)
    hours = running_hours_since_maintenance(machine)
    if hours >= machine.maintenance_interval_hours:
        MachineLiveStatus.objects.filter(machine_id=machine_id).update(maintenance_due=True)
        _raise(machine_id, AlertKind.MAINTENANCE_DUE,
               _("Đã chạy %(hours).1f giờ kể từ lần bảo trì trước (chu kỳ %(interval)d giờ).")
               % {"hours": hours, "interval": machine.maintenance_interval_hours})


def record_maintenance(machine: Machine, *, by, note: str, now: datetime | None = None) -> MaintenanceLog:
    """Maintenance done: log it and start counting running hours from zero."""
    from fablab_ops.booking.services import require_staff

    require_staff(by, machine.lab)
    if not note.strip():
        raise DomainError(_("Hãy ghi lại công việc bảo trì đã làm."), code="note_required")
    now = now or timezone.now()
    with transaction.atomic():
        log = MaintenanceLog.objects.create(machine=machine, done_at=now, by=by, note=note.strip(),
                                            running_hours=round(running_hours_since_maintenance(machine, now), 2))
        MachineLiveStatus.objects.filter(machine=machine).update(maintenance_due=False)
        _resolve(machine.pk, AlertKind.MAINTENANCE_DUE)
        return log


def mark_silent_machines_offline(now: datetime | None = None) -> int:
    """Machines whose heartbeats stopped are offline (Celery beat)."""
    now = now or timezone.now()
    silent = list(MachineLiveStatus.objects.filter(online=True, last_seen_at__lt=now - HEARTBEAT_TIMEOUT)
                  .values_list("machine_id", "last_seen_at"))
    for machine_id, last_seen in silent:
        with transaction.atomic():
            updated = MachineLiveStatus.objects.filter(machine_id=machine_id, online=True,
                                                       last_seen_at=last_seen).update(online=False)
            if updated:
                on_offline(machine_id, last_seen)
    return len(silent)


# --- reading ---------------------------------------------------------------

def live_board(lab: Lab | None = None) -> list[dict]:
    """Every machine with its live status, today's running hours and open alerts."""
    today = timezone.localdate()
    machines = Machine.objects.exclude(status="retired").select_related("lab", "machine_type", "live")
    if lab is not None:
        machines = machines.filter(lab=lab)
    today_hours = dict(MachineUsageDay.objects.filter(day=today, machine__in=machines)
                       .values_list("machine_id").annotate(s=Sum("running_seconds")))
    now = timezone.now()
    start_of_day = timezone.make_aware(datetime.combine(today, datetime.min.time()))
    open_now = {machine_id: (now - max(start, start_of_day)).total_seconds() / 3600
                for machine_id, start in UsageSession.objects.filter(end__isnull=True, machine__in=machines)
                .values_list("machine_id", "start")}
    alerts: dict[int, list] = {}
    for alert in MachineAlert.objects.filter(resolved_at__isnull=True, machine__in=machines):
        alerts.setdefault(alert.machine_id, []).append(alert)
    board = []
    for machine in machines:
        live = getattr(machine, "live", None)
        online = bool(live and live.online and live.last_seen_at and now - live.last_seen_at <= HEARTBEAT_TIMEOUT)
        board.append({
            "machine": machine, "online": online, "state": live.state if live else "",
            "power_w": live.power_w if live else None, "last_seen_at": live.last_seen_at if live else None,
            "today_hours": round((today_hours.get(machine.pk, 0.0)) / 3600 + open_now.get(machine.pk, 0.0), 2),
            "since_maintenance": round(running_hours_since_maintenance(machine, now), 1),
            "maintenance_due": bool(live and live.maintenance_due), "alerts": alerts.get(machine.pk, []),
            "gaps": live.lost_messages if live else 0,
        })
    return board



def usage_summary(labs, date_from, date_to) -> dict:
    """Hours used (telemetry roll-up) per machine, lab and day, beside the hours booked."""
    from fablab_ops.booking.models import RESERVATION_BLOCKING

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
    booked: dict[str, float] = {}
    reservations = Reservation.objects.filter(machine__lab__in=labs, status__in=RESERVATION_BLOCKING,
                                              start__lt=end, end__gt=start).select_related("machine__lab")
    for reservation in reservations:
        key = f"{reservation.machine.lab.slug}/{reservation.machine.slug}"
        hours = (min(reservation.end, end) - max(reservation.start, start)).total_seconds() / 3600
        booked[key] = round(booked.get(key, 0) + hours, 3)
    return {"date_from": date_from, "date_to": date_to, "per_day": per_day, "per_machine": per_machine,
            "per_lab": per_lab, "booked_hours": booked}
