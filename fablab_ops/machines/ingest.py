"""From MQTT messages to telemetry: parsing (pure) and applying a batch (one transaction).

`parse()` turns (topic, payload) into a typed message or a `Rejection` with its
reason, without touching the database. `apply_batch()` stores a batch of parsed
messages in one transaction and derives what they mean: live status, gaps in
`seq`, usage sessions and their daily roll-up, alerts. Storing is idempotent on
(machine, boot, seq): a redelivered message is recognised and changes nothing.

Messages are placed by their own time (`ts`), not by arrival, unless the device's
clock is more than MAX_CLOCK_SKEW off the receive time: then it is flagged and the
receive time is used.
"""

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from fablab_ops.machines import services
from fablab_ops.machines.models import (
    Machine,
    MachineCommand,
    MachineLiveStatus,
    QuarantinedMessage,
    TelemetryMessage,
)
from fablab_ops.machines.sql import update_many

log = logging.getLogger(__name__)
MAX_PAYLOAD_BYTES = 4096
MAX_CLOCK_SKEW = timedelta(minutes=5)
STATES = {"off", "idle", "running", "error"}
KINDS = {"state", "status", "ack"}


@dataclass(frozen=True)
class Rejection:
    reason: str
    detail: str = ""


class StateReport(NamedTuple):
    """A device's state report; a tuple, because one is made for every message."""

    lab: str
    machine: str
    boot: str
    seq: int
    ts: datetime | None
    state: str
    power_w: float | None
    job: str


@dataclass(frozen=True)
class StatusReport:
    lab: str
    machine: str
    online: bool


@dataclass(frozen=True)
class CommandAck:
    lab: str
    machine: str
    command_id: str
    ok: bool
    reason: str


@dataclass
class Incoming:
    """A message as received: kept whole so a rejection can be quarantined verbatim."""

    topic: str
    payload: bytes
    received_at: datetime
    parsed: StateReport | StatusReport | CommandAck | Rejection | None = None


class Row(NamedTuple):
    """A state report ready to store; plain data, cheaper than a model instance per message."""

    machine_id: int
    boot: str
    seq: int
    at: datetime
    device_ts: datetime | None
    received_at: datetime
    clock_skewed: bool
    state: str
    power_w: float | None
    job: str


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    gaps: int = 0


def _timestamp(value) -> datetime | None:
    if type(value) is int or type(value) is float:  # not bool, which is an int too
        if not math.isfinite(value):
            raise ValueError("ts")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None or parsed.tzinfo is None:
            raise ValueError("ts")
        return parsed
    raise ValueError("ts")


def parse(topic: str, payload: bytes) -> StateReport | StatusReport | CommandAck | Rejection:
    """What a message says, or why it is refused; no database, no side effects."""
    parts = topic.split("/")
    if len(parts) != 4 or parts[0] != "fablab" or parts[3] not in KINDS or not parts[1] or not parts[2]:
        return Rejection("bad_topic", topic[:300])
    _, lab, machine, kind = parts
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection("oversized", f"{len(payload)} bytes")
    if kind == "status":
        text = payload.decode("utf-8", "replace").strip()
        if text not in ("online", "offline"):
            return Rejection("bad_status", text[:100])
        return StatusReport(lab, machine, text == "online")
    try:
        body = orjson.loads(payload)  # bytes straight in; invalid UTF-8, NaN and Infinity are refused
    except orjson.JSONDecodeError:
        return Rejection("malformed_json")
    if not isinstance(body, dict):
        return Rejection("not_an_object")
    device = body.get("device")
    if device is not None and device != f"{lab}.{machine}":
        return Rejection("wrong_publisher", f"{device} published for {lab}.{machine}")
    if kind == "ack":
        if not isinstance(body.get("id"), str) or not isinstance(body.get("ok", True), bool):
            return Rejection("wrong_type", "ack needs a string id and a boolean ok")
        return CommandAck(lab, machine, body["id"], body.get("ok", True), str(body.get("reason", ""))[:300])
    for name in ("seq", "boot", "ts", "state"):
        if name not in body:
            return Rejection("missing_field", name)
    # `type(x) is int`, not isinstance: JSON true/false arrive as bool, a subclass of int.
    seq, boot, state = body["seq"], body["boot"], body["state"]
    if type(seq) is not int or seq < 0:
        return Rejection("wrong_type", "seq must be a non-negative integer")
    if type(boot) is int:
        boot = str(boot)
    if type(boot) is not str or not 0 < len(boot) <= 64:
        return Rejection("wrong_type", "boot must be an integer or a short string")
    if type(state) is not str or state not in STATES:
        return Rejection("wrong_type", f"state must be one of {sorted(STATES)}")
    power = body.get("power_w")
    if power is not None:
        if type(power) is int:
            power = float(power)
        if type(power) is not float or not math.isfinite(power) or power < 0:
            return Rejection("wrong_type", "power_w must be a non-negative number")
    job = body.get("job", "")
    if not isinstance(job, str):
        return Rejection("wrong_type", "job must be a string")
    try:
        ts = _timestamp(body["ts"])
    except (ValueError, OverflowError, OSError):
        return Rejection("wrong_type", "ts must be RFC 3339 with a zone, or Unix milliseconds")
    return StateReport(lab, machine, boot, seq, ts, state, power, job[:200])


# --- applying a batch -----------------------------------------------------

class MachineDirectory:
    """Machines by (lab slug, machine slug), read once per ingest process.

    A name not found is asked again after a while, not at every message: a device
    publishing for an unknown machine must not cost a query per message, and a
    machine registered while the ingest runs must still be found.
    """

    UNKNOWN_FOR_S = 60.0

    def __init__(self):
        self._known: dict[tuple[str, str], int] | None = None
        self._unknown_until: dict[tuple[str, str], float] = {}

    def resolve(self, lab: str, machine: str) -> int | None:
        if self._known is None:
            self._known = {(lab_slug, slug): pk for pk, lab_slug, slug in
                           Machine.objects.values_list("pk", "lab__slug", "slug")}
        key = (lab, machine)
        found = self._known.get(key)
        if found is not None:
            return found
        if self._unknown_until.get(key, 0.0) > time.monotonic():
            return None
        found = Machine.objects.filter(lab__slug=lab, slug=machine).values_list("pk", flat=True).first()
        if found is None:
            self._unknown_until[key] = time.monotonic() + self.UNKNOWN_FOR_S
        else:
            self._known[key] = found
        return found


def placed_at(report: StateReport, received_at: datetime) -> tuple[datetime, bool]:
    """The time a report belongs to, and whether the device's clock was too far off to trust."""
    if report.ts is None or abs(report.ts - received_at) > MAX_CLOCK_SKEW:
        return received_at, report.ts is not None
    return report.ts, False


def parse_safely(topic: str, payload: bytes) -> StateReport | StatusReport | CommandAck | Rejection:
    """`parse`, with any slip of its own kept as a rejection: one odd message must never stall the stream."""
    try:
        return parse(topic, payload)
    except Exception as error:
        log.exception("the message handler failed on %s", topic[:300])
        return Rejection("handler_error", repr(error)[:300])


def apply_batch(messages: list[Incoming], directory: MachineDirectory | None = None) -> BatchResult:
    """Store and interpret a batch in one transaction; safe to apply again after a crash."""
    directory = directory or MachineDirectory()
    result = BatchResult()
    with transaction.atomic():
        accepted: list[tuple[int, Incoming]] = []
        for message in messages:
            parsed = message.parsed or parse_safely(message.topic, message.payload)
            message.parsed = parsed
            if isinstance(parsed, Rejection):
                _quarantine(message, parsed, result)
                continue
            machine_id = directory.resolve(parsed.lab, parsed.machine)
            if machine_id is None:
                _quarantine(message, Rejection("unknown_machine", f"{parsed.lab}/{parsed.machine}"), result)
                continue
            accepted.append((machine_id, message))
        states = [(mid, m) for mid, m in accepted if isinstance(m.parsed, StateReport)]
        _store_states(states, result)
        for machine_id, message in accepted:
            if isinstance(message.parsed, StatusReport):
                _apply_status(machine_id, message.parsed, message.received_at)
            elif isinstance(message.parsed, CommandAck):
                MachineCommand.objects.filter(command_id=message.parsed.command_id, machine_id=machine_id).update(
                    acked_at=message.received_at, ack_ok=message.parsed.ok, error=message.parsed.reason)
    return result


def _quarantine(message: Incoming, rejection: Rejection, result: BatchResult) -> None:
    result.rejected[rejection.reason] = result.rejected.get(rejection.reason, 0) + 1
    QuarantinedMessage.objects.create(
        received_at=message.received_at, topic=message.topic[:300],
        payload=message.payload[:MAX_PAYLOAD_BYTES].decode("utf-8", "replace"), payload_size=len(message.payload),
        reason=rejection.reason, detail=rejection.detail[:300],
    )


def _store_states(states: list[tuple[int, Incoming]], result: BatchResult) -> None:
    if not states:
        return
    rows = {}
    for machine_id, message in states:
        report = message.parsed
        at, skewed = placed_at(report, message.received_at)
        key = (machine_id, report.boot, report.seq)
        if key in rows:
            result.duplicates += 1
            continue
        rows[key] = Row(machine_id, report.boot, report.seq, at, report.ts, message.received_at, skewed,
                        report.state, report.power_w, report.job)
    inserted = _insert_new(list(rows.values()))
    fresh = list(rows.values()) if inserted is None else [rows[key] for key in inserted]
    result.duplicates += len(rows) - len(fresh)
    result.stored += len(fresh)
    if not fresh:
        return
    by_machine: dict[int, list[Row]] = {}
    for row in fresh:
        by_machine.setdefault(row.machine_id, []).append(row)
    lives = _lives(by_machine)
    # Reads nothing and writes nothing unless a report changes something.
    effects = services.TelemetryEffects(lives, since=min(row.at for row in fresh), until=max(row.at for row in fresh))
    for machine_id, rows_of_machine in by_machine.items():
        result.gaps += _interpret(lives[machine_id], rows_of_machine, effects)
    effects.apply()
    _save_lives(list(lives.values()))


# Not maintenance_due: the services may set it in the database while a batch is interpreted.
LIVE_FIELDS = ["messages", "clock_skews", "last_seen_at", "boot", "last_seq", "restarts", "state", "power_w", "job",
               "last_state_at", "online", "gaps", "boot_messages"]

COPY_COLUMNS = ("machine_id", "boot", "seq", "at", "device_ts", "received_at", "clock_skewed", "state", "power_w",
                "job")
COPY_TYPES = ["int8", "text", "int8", "timestamptz", "timestamptz", "timestamptz", "bool", "text", "float8", "text"]
STAGE = """
CREATE TEMP TABLE IF NOT EXISTS telemetry_incoming (
    machine_id bigint, boot text, seq bigint, "at" timestamptz, device_ts timestamptz, received_at timestamptz,
    clock_skewed boolean, state text, power_w double precision, job text
) ON COMMIT DELETE ROWS
"""
MOVE_NEW = """
INSERT INTO machines_telemetrymessage (machine_id, boot, seq, "at", device_ts, received_at, clock_skewed, state,
                                       power_w, job)
SELECT machine_id, boot, seq, "at", device_ts, received_at, clock_skewed, state, power_w, job FROM telemetry_incoming
ON CONFLICT (machine_id, boot, seq) DO NOTHING
RETURNING machine_id, boot, seq
"""


_staged_on: list = [None]  # the database connection known to hold the staging table


def _stage_table(cursor) -> None:
    """Create the session's staging table once per database connection, not once per batch.

    Known to exist only once the transaction creating it has committed (a rollback takes it away).
    """
    raw = connection.connection
    if _staged_on[0] is raw:
        return
    cursor.execute(STAGE)
    transaction.on_commit(lambda: _staged_on.__setitem__(0, raw))


def _insert_new(rows: list[Row]) -> list[tuple] | None:
    """Insert what is new and say which keys those were (None: all of them); a redelivery inserts nothing.

    On PostgreSQL the batch is streamed in with binary COPY, then moved with one
    INSERT ... ON CONFLICT DO NOTHING RETURNING, which also stays right when several
    ingest processes share the stream; elsewhere, look up then insert.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _stage_table(cursor)
            columns = ", ".join(f'"{name}"' for name in COPY_COLUMNS)
            with cursor.cursor.copy(f"COPY telemetry_incoming ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COPY_TYPES)
                for r in rows:
                    copy.write_row((r.machine_id, r.boot, r.seq, r.at, r.device_ts, r.received_at, r.clock_skewed,
                                    r.state, r.power_w, r.job))
            cursor.execute(MOVE_NEW)
            if cursor.rowcount == len(rows):
                return None  # the usual case: no need to read the keys back
            return cursor.fetchall()
    keys = {(r.machine_id, r.boot, r.seq) for r in rows}
    existing = set(TelemetryMessage.objects.filter(machine_id__in={k[0] for k in keys}, seq__in={k[2] for k in keys})
                   .values_list("machine_id", "boot", "seq")) & keys
    fresh = [r for r in rows if (r.machine_id, r.boot, r.seq) not in existing]
    TelemetryMessage.objects.bulk_create([TelemetryMessage(**r._asdict()) for r in fresh])
    return [(r.machine_id, r.boot, r.seq) for r in fresh]


def _save_lives(lives: list[MachineLiveStatus]) -> None:
    update_many(MachineLiveStatus, lives, LIVE_FIELDS)


def _lives(by_machine: dict) -> dict[int, MachineLiveStatus]:
    """The live status rows of the batch's machines, locked, created where missing."""
    wanted = set(by_machine)

    def lock(ids):
        # Always in machine order, so ingests sharing a stream never wait on each other in a cycle.
        return {live.machine_id: live for live in MachineLiveStatus.objects.select_for_update().filter(
            machine_id__in=ids).order_by("machine_id")}

    lives = lock(wanted)
    if len(lives) < len(wanted):  # a machine's first report
        missing = wanted - set(lives)
        MachineLiveStatus.objects.bulk_create([MachineLiveStatus(machine_id=m) for m in missing],
                                              ignore_conflicts=True)
        lives.update(lock(missing))
    return lives


def _live(machine_id: int) -> MachineLiveStatus:
    return _lives({machine_id: None})[machine_id]


def _interpret(live: MachineLiveStatus, rows: list[Row], effects: services.TelemetryEffects) -> int:
    """Live status, lost messages and usage sessions from new reports of one machine, oldest first.

    Returns how many more messages are now known lost.
    """
    lost_before = live.lost_messages
    live.messages += len(rows)
    live.clock_skews += sum(row.clock_skewed for row in rows)
    last_arrival = max(row.received_at for row in rows)
    live.last_seen_at = last_arrival if live.last_seen_at is None else max(live.last_seen_at, last_arrival)
    for row in sorted(rows, key=lambda r: (r.boot != live.boot, r.at, r.seq)):
        newer = live.last_state_at is None or row.at >= live.last_state_at
        if row.boot != live.boot and newer:
            if live.boot:
                live.restarts += 1
                live.gaps += max(live.last_seq - live.boot_messages, 0)
            live.boot, live.last_seq, live.boot_messages = row.boot, 0, 0
        if row.boot == live.boot:
            live.boot_messages += 1
            live.last_seq = max(live.last_seq, row.seq)
        # A late report is kept as telemetry but does not roll the live state back.
        if newer:
            # Only a change of state, or a machine coming back, can open or close a running
            # period or an alert; the same state again changes nothing but the figures.
            if row.state != live.state or not live.online:
                effects.state(live.machine_id, row)
            live.state, live.power_w, live.job, live.last_state_at = row.state, row.power_w, row.job, row.at
            live.online = True
        else:
            effects.late_state(live.machine_id, row)
    return live.lost_messages - lost_before


def _apply_status(machine_id: int, report: StatusReport, received_at: datetime) -> None:
    live = _live(machine_id)
    live.online = report.online
    live.last_seen_at = max(filter(None, [live.last_seen_at, received_at]))
    live.save(update_fields=["online", "last_seen_at"])
    if not report.online:
        services.on_offline(machine_id, received_at)
