"""From MQTT messages to telemetry: parsing (pure) and applying a batch (one transaction).

`parse()` turns (topic, payload) into a typed message or a `Rejection` with its
reason, without touching the database; it refuses anything PostgreSQL could not
store or that makes no sense, so one device cannot stop the stream. `apply_batch()`
stores a batch of parsed messages in one transaction and has `services.TelemetryEffects`
derive what they mean: live status, gaps in `seq`, usage sessions, counters and the
daily roll-up, alerts. Storing is idempotent on (machine, boot, seq): a redelivered
message is recognised and changes nothing. `store()` is `apply_batch()` for the ingest:
a batch the database refuses is split until the messages it refuses are found.

Messages are placed by their own time (`ts`), not by arrival, unless the device's
clock is more than MAX_CLOCK_SKEW off the receive time: then it is flagged and the
receive time is used.
"""

import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from fablab_ops.machines import services
from fablab_ops.machines.models import (
    MAX_COUNT,
    IngestHealth,
    Machine,
    MachineCommand,
    MachineLiveStatus,
    QuarantinedMessage,
    TelemetryMessage,
)
from fablab_ops.machines.sql import update_many

try:
    from psycopg import InterfaceError as DriverInterfaceError
    from psycopg import OperationalError as DriverOperationalError
except ImportError:  # SQLite only (the laptop demo)
    DriverInterfaceError = DriverOperationalError = OperationalError

log = logging.getLogger(__name__)
MAX_PAYLOAD_BYTES = 4096
MAX_CLOCK_SKEW = timedelta(minutes=5)
STATES = {"off", "idle", "running", "error"}
KINDS = {"state", "status", "ack"}
# The protocol's bound for integers (seq, an integer boot, desired_v) and for numbers (power_w,
# run_s, energy_wh): every one fits a bigint and a double exactly, and sums of them stay far from
# overflowing anything. Nothing a real device sends comes near it.
MAX_INTEGER = 2**53
MAX_RESTARTS = 2**31 - 1  # MachineLiveStatus.restarts is a 32-bit column; a device changing boot at every report
# A device's `ts` outside this window is refused: no real clock says it, and dates near the
# calendar's ends cannot even be shown in local time.
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_TS = datetime(2100, 1, 1, tzinfo=UTC)
# Control characters (C0, DEL, C1) and lone surrogates. PostgreSQL cannot store NUL in text at all,
# and none of them has any business in an identifier.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Free text (an ack's reason) may hold tabs and line breaks.
CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


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
    # Protocol 2 (optional): counters since boot, and the desired-state version applied.
    run_s: float | None = None
    energy_wh: float | None = None
    desired_v: int | None = None


@dataclass(frozen=True)
class StatusReport:
    lab: str
    machine: str
    online: bool


@dataclass(frozen=True)
class CommandAck:
    """Protocol 1: the answer to a command, by its id."""

    lab: str
    machine: str
    command_id: str
    ok: bool
    reason: str


@dataclass(frozen=True)
class DesiredAck:
    """Protocol 2: the answer to a desired state, by its version."""

    lab: str
    machine: str
    v: int
    ok: bool
    reason: str


@dataclass
class Incoming:
    """A message as received: kept whole so a rejection can be quarantined verbatim."""

    topic: str
    payload: bytes
    received_at: datetime
    parsed: StateReport | StatusReport | CommandAck | DesiredAck | Rejection | None = None


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
    run_s: float | None = None
    energy_wh: float | None = None
    desired_v: int | None = None


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    newest_received_at: datetime | None = None

    def add(self, other: "BatchResult") -> "BatchResult":
        """The two results of a split batch, as one."""
        rejected = dict(self.rejected)
        for reason, count in other.rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
        newest = max(filter(None, [self.newest_received_at, other.newest_received_at]), default=None)
        return BatchResult(self.stored + other.stored, self.duplicates + other.duplicates, rejected,
                           self.gaps + other.gaps, newest)


def _timestamp(value) -> datetime | None:
    if type(value) is int or type(value) is float:  # not bool, which is an int too
        if not math.isfinite(value):
            raise ValueError("ts")
        at = datetime.fromtimestamp(value / 1000, tz=UTC)
    elif isinstance(value, str):
        at = parse_datetime(value)
        if at is None or at.tzinfo is None:
            raise ValueError("ts")
    else:
        raise ValueError("ts")
    if not EARLIEST_TS <= at < LATEST_TS:
        raise ValueError("ts")
    return at


def _integer(value) -> int | None:
    """An integer within the protocol's bound, or None. `type() is int`: JSON true/false are bools, not ints."""
    return value if type(value) is int and 0 <= value <= MAX_INTEGER else None


def _number(value) -> float | None:
    """A finite number within the protocol's bound, as a float, or None."""
    if type(value) is int:
        value = float(value) if 0 <= value <= MAX_INTEGER else None
    if type(value) is float and math.isfinite(value) and 0 <= value <= MAX_INTEGER:
        return value
    return None


def _identifier(value) -> bool:
    return isinstance(value, str) and CONTROL.search(value) is None


def printable(text: str, limit: int) -> str:
    """`text` as something PostgreSQL always stores: NUL and lone surrogates escaped, cut to `limit`."""
    text = text[:limit]
    if CONTROL.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:limit]


def parse(topic: str, payload: bytes) -> StateReport | StatusReport | CommandAck | DesiredAck | Rejection:
    """What a message says, or why it is refused; no database, no side effects."""
    parts = topic.split("/")
    if (len(parts) != 4 or parts[0] != "fablab" or parts[3] not in KINDS or not parts[1] or not parts[2]
            or CONTROL.search(topic)):
        return Rejection("bad_topic", topic)
    _, lab, machine, kind = parts
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection("oversized", f"{len(payload)} bytes")
    if kind == "status":
        text = payload.decode("utf-8", "backslashreplace").strip()
        if text not in ("online", "offline"):
            return Rejection("bad_status", text[:100])
        return StatusReport(lab, machine, text == "online")
    try:
        body = orjson.loads(payload)  # bytes straight in; invalid UTF-8, lone surrogates, NaN, Infinity refused
    except orjson.JSONDecodeError:
        return Rejection("malformed_json")
    if not isinstance(body, dict):
        return Rejection("not_an_object")
    device = body.get("device")
    if device is not None and (not _identifier(device) or device != f"{lab}.{machine}"):
        return Rejection("wrong_publisher", f"{device} published for {lab}.{machine}")
    if kind == "ack":
        return _ack(lab, machine, body)
    for name in ("seq", "boot", "ts", "state"):
        if name not in body:
            return Rejection("missing_field", name)
    seq, boot, state = _integer(body["seq"]), body["boot"], body["state"]
    if seq is None:
        return Rejection("wrong_type", "seq must be an integer from 0 to 2^53")
    if type(boot) is int:
        if _integer(boot) is None:
            return Rejection("wrong_type", "boot must be an integer from 0 to 2^53, or a short string")
        boot = str(boot)
    if type(boot) is not str or not 0 < len(boot) <= 64 or not _identifier(boot):
        return Rejection("wrong_type", "boot must be an integer or a short string without control characters")
    if type(state) is not str or state not in STATES:
        return Rejection("wrong_type", f"state must be one of {sorted(STATES)}")
    numbers = {}
    for name in ("power_w", "run_s", "energy_wh"):
        value = body.get(name)
        if value is not None:
            numbers[name] = value = _number(value)
            if value is None:
                return Rejection("wrong_type", f"{name} must be a number from 0 to 2^53")
    desired_v = body.get("desired_v")
    if desired_v is not None and _integer(desired_v) is None:
        return Rejection("wrong_type", "desired_v must be an integer from 0 to 2^53")
    job = body.get("job", "")
    if not _identifier(job):
        return Rejection("wrong_type", "job must be a string without control characters")
    try:
        ts = _timestamp(body["ts"])
    except (ValueError, OverflowError, OSError):
        return Rejection("wrong_type", "ts must be RFC 3339 with a zone, or Unix milliseconds, "
                                       "between 2000-01-01 and 2100-01-01")
    return StateReport(lab, machine, boot, seq, ts, state, numbers.get("power_w"), job[:200],
                       numbers.get("run_s"), numbers.get("energy_wh"), desired_v)


def _ack(lab: str, machine: str, body: dict) -> CommandAck | DesiredAck | Rejection:
    ok, reason = body.get("ok", True), body.get("reason", "")
    if not isinstance(ok, bool):
        return Rejection("wrong_type", "ack needs a boolean ok")
    if not isinstance(reason, str) or CONTROL_IN_TEXT.search(reason):
        return Rejection("wrong_type", "an ack's reason must be text without control characters")
    if "v" in body:
        v = _integer(body["v"])
        if v is None:
            return Rejection("wrong_type", "an ack's v must be an integer from 0 to 2^53")
        return DesiredAck(lab, machine, v, ok, reason[:300])
    if not isinstance(body.get("id"), str) or not _identifier(body["id"]):
        return Rejection("wrong_type", "ack needs an integer v, or a string id")
    return CommandAck(lab, machine, body["id"], ok, reason[:300])


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

    def load(self) -> None:
        self._known = {(lab_slug, slug): pk for pk, lab_slug, slug in
                       Machine.objects.values_list("pk", "lab__slug", "slug")}

    def resolve(self, lab: str, machine: str) -> int | None:
        if self._known is None:
            self.load()
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


def parse_safely(topic: str, payload: bytes) -> StateReport | StatusReport | CommandAck | DesiredAck | Rejection:
    """`parse`, with any slip of its own kept as a rejection: one odd message must never stall the stream."""
    try:
        return parse(topic, payload)
    except Exception as error:
        log.exception("the message handler failed on %s", printable(topic, 300))
        return Rejection("handler_error", repr(error))


def connection_lost(error: BaseException) -> bool:
    """Whether a failure says the database is unreachable (retry the batch later), not that it refused the data.

    Only these are retried whole: a connection that failed or was closed (no SQLSTATE,
    class 08), the server shutting down or out of resources (57, 53), and a deadlock or
    serialization failure (40), all of which pass. Anything else (a value out of range,
    a constraint) comes back on every attempt, so the batch is split instead.
    """
    # The COPY runs on psycopg's own cursor, whose errors Django does not wrap.
    if not isinstance(error, OperationalError | InterfaceError | DriverOperationalError | DriverInterfaceError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None) or getattr(error, "sqlstate", None)
    return sqlstate is None or sqlstate[:2] in ("08", "40", "53", "57") or sqlstate == "55P03"


def store(messages: list[Incoming], directory: MachineDirectory | None = None, *,
          health_id: str | None = None) -> BatchResult:
    """`apply_batch`; a batch the database refuses is split in halves until the messages it refuses are found.

    Those are quarantined (`handler_error`, with the database's message) and the rest
    stored, so one message can never hold back the stream. A database that cannot be
    reached is not a refusal: that error goes up, for the caller to retry the whole batch.
    """
    directory = directory or MachineDirectory()
    try:
        return apply_batch(messages, directory, health_id=health_id)
    except Exception as error:
        if connection_lost(error):
            raise
        if len(messages) == 1:
            log.error("quarantined a message the database refused on %s: %s",
                      printable(messages[0].topic, 300), error)
            return _quarantine_refused(messages[0], error, health_id)
        log.warning("the database refused a batch of %d messages (%s); splitting it", len(messages), error)
        middle = len(messages) // 2
        first = store(messages[:middle], directory, health_id=health_id)
        return first.add(store(messages[middle:], directory, health_id=health_id))


def _quarantine_refused(message: Incoming, error: Exception, health_id: str | None) -> BatchResult:
    result = BatchResult()
    rejection = Rejection("handler_error", f"{type(error).__name__}: {error}")
    try:
        with transaction.atomic():
            _quarantine([(message, rejection)], result)
            _record_health(health_id, result)
    except Exception as again:
        if connection_lost(again):
            raise
        # The quarantine row is escaped and cannot be refused for its content; should it be anyway,
        # the message is dropped (and acknowledged) rather than left to stall the stream.
        log.exception("could not even quarantine a message on %s; dropped", printable(message.topic, 300))
        result.rejected = {"handler_error": 1}
    return result


def apply_batch(messages: list[Incoming], directory: MachineDirectory | None = None, *,
                health_id: str | None = None) -> BatchResult:
    """Store and interpret a batch in one transaction; safe to apply again after a crash.

    With `health_id` (the ingest's client id) the replica's health row is updated in the same transaction.
    """
    directory = directory or MachineDirectory()
    result = BatchResult()
    with transaction.atomic():
        accepted: list[tuple[int, Incoming]] = []
        refused: list[tuple[Incoming, Rejection]] = []
        for message in messages:
            parsed = message.parsed or parse_safely(message.topic, message.payload)
            message.parsed = parsed
            if isinstance(parsed, Rejection):
                refused.append((message, parsed))
                continue
            machine_id = directory.resolve(parsed.lab, parsed.machine)
            if machine_id is None:
                refused.append((message, Rejection("unknown_machine", f"{parsed.lab}/{parsed.machine}")))
                continue
            accepted.append((machine_id, message))
        _quarantine(refused, result)
        states = [(mid, m) for mid, m in accepted if isinstance(m.parsed, StateReport)]
        _store_states(states, result)
        _apply_statuses([(mid, m) for mid, m in accepted if isinstance(m.parsed, StatusReport)])
        applied: dict[int, int] = {}  # the highest desired-state version each machine acknowledged applying
        for machine_id, message in accepted:
            if isinstance(message.parsed, CommandAck):
                MachineCommand.objects.filter(command_id=message.parsed.command_id, machine_id=machine_id).update(
                    acked_at=message.received_at, ack_ok=message.parsed.ok, error=message.parsed.reason)
            elif isinstance(message.parsed, DesiredAck) and message.parsed.ok:
                applied[machine_id] = max(applied.get(machine_id, 0), message.parsed.v)
        for machine_id, v in applied.items():
            MachineLiveStatus.objects.filter(machine_id=machine_id).update(
                desired_applied_v=Greatest("desired_applied_v", Value(v)))
        _record_health(health_id, result)
    return result


def _quarantine(refused: list[tuple[Incoming, Rejection]], result: BatchResult) -> None:
    """Keep refused messages in one statement. Their text is escaped: storing them can never fail on what they hold."""
    if not refused:
        return
    for _message, rejection in refused:
        result.rejected[rejection.reason] = result.rejected.get(rejection.reason, 0) + 1
    QuarantinedMessage.objects.bulk_create([QuarantinedMessage(
        received_at=message.received_at, topic=printable(message.topic, 300),
        payload=printable(message.payload[:MAX_PAYLOAD_BYTES].decode("utf-8", "backslashreplace"),
                          4 * MAX_PAYLOAD_BYTES),
        payload_size=len(message.payload), reason=rejection.reason, detail=printable(rejection.detail, 300),
    ) for message, rejection in refused])


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
                        report.state, report.power_w, report.job, report.run_s, report.energy_wh, report.desired_v)
    inserted = _insert_new(list(rows.values()))
    fresh = list(rows.values()) if inserted is None else [rows[key] for key in inserted]
    result.duplicates += len(rows) - len(fresh)
    result.stored += len(fresh)
    if not fresh:
        return
    result.newest_received_at = max(row.received_at for row in fresh)
    by_machine: dict[int, list[Row]] = {}
    for row in fresh:
        by_machine.setdefault(row.machine_id, []).append(row)
    lives = _lives(by_machine)
    # Reads nothing and writes nothing unless a report changes something, runs, or carries counters.
    effects = services.TelemetryEffects(lives, since=min(row.at for row in fresh), until=max(row.at for row in fresh))
    effects.expect_counters({(row.machine_id, row.boot) for row in fresh if row.run_s is not None})
    for machine_id, rows_of_machine in by_machine.items():
        result.gaps += _interpret(lives[machine_id], rows_of_machine, effects)
    effects.apply()
    _save_lives(list(lives.values()))


# Not maintenance_due: the services may set it in the database while a batch is interpreted.
LIVE_FIELDS = ["messages", "clock_skews", "last_seen_at", "boot", "last_seq", "restarts", "state", "power_w", "job",
               "last_state_at", "online", "gaps", "boot_messages", "desired_applied_v"]

COPY_COLUMNS = ("machine_id", "boot", "seq", "at", "device_ts", "received_at", "clock_skewed", "state", "power_w",
                "job", "run_s", "energy_wh")
COPY_TYPES = ["int8", "text", "int8", "timestamptz", "timestamptz", "timestamptz", "bool", "text", "float8", "text",
              "float8", "float8"]
STAGE = """
CREATE TEMP TABLE IF NOT EXISTS telemetry_incoming (
    machine_id bigint, boot text, seq bigint, "at" timestamptz, device_ts timestamptz, received_at timestamptz,
    clock_skewed boolean, state text, power_w double precision, job text, run_s double precision,
    energy_wh double precision
) ON COMMIT DELETE ROWS
"""
MOVE_NEW = """
INSERT INTO machines_telemetrymessage (machine_id, boot, seq, "at", device_ts, received_at, clock_skewed, state,
                                       power_w, job, run_s, energy_wh)
SELECT machine_id, boot, seq, "at", device_ts, received_at, clock_skewed, state, power_w, job, run_s, energy_wh
FROM telemetry_incoming
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
    INSERT ... ON CONFLICT DO NOTHING RETURNING, which also stays right when two
    ingest processes ever store the same report; elsewhere, look up then insert.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _stage_table(cursor)
            columns = ", ".join(f'"{name}"' for name in COPY_COLUMNS)
            with cursor.cursor.copy(f"COPY telemetry_incoming ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COPY_TYPES)
                for r in rows:
                    copy.write_row((r.machine_id, r.boot, r.seq, r.at, r.device_ts, r.received_at, r.clock_skewed,
                                    r.state, r.power_w, r.job, r.run_s, r.energy_wh))
            cursor.execute(MOVE_NEW)
            if cursor.rowcount == len(rows):
                return None  # the usual case: no need to read the keys back
            return cursor.fetchall()
    keys = {(r.machine_id, r.boot, r.seq) for r in rows}
    existing = set(TelemetryMessage.objects.filter(machine_id__in={k[0] for k in keys}, seq__in={k[2] for k in keys})
                   .values_list("machine_id", "boot", "seq")) & keys
    fresh = [r for r in rows if (r.machine_id, r.boot, r.seq) not in existing]
    TelemetryMessage.objects.bulk_create([TelemetryMessage(**{name: getattr(r, name) for name in COPY_COLUMNS})
                                          for r in fresh])
    return [(r.machine_id, r.boot, r.seq) for r in fresh]


def _save_lives(lives: list[MachineLiveStatus]) -> None:
    update_many(MachineLiveStatus, lives, LIVE_FIELDS)


def _lives(by_machine: dict) -> dict[int, MachineLiveStatus]:
    """The live status rows of the batch's machines, locked, created where missing."""
    wanted = set(by_machine)

    def lock(ids):
        # Always in machine order, so two writers never wait on each other in a cycle.
        return {live.machine_id: live for live in MachineLiveStatus.objects.select_for_update().filter(
            machine_id__in=ids).order_by("machine_id")}

    lives = lock(wanted)
    if len(lives) < len(wanted):  # a machine's first report
        missing = wanted - set(lives)
        MachineLiveStatus.objects.bulk_create([MachineLiveStatus(machine_id=m) for m in missing],
                                              ignore_conflicts=True)
        lives.update(lock(missing))
    return lives


def _interpret(live: MachineLiveStatus, rows: list[Row], effects: services.TelemetryEffects) -> int:
    """Live status, lost messages and usage sessions from new reports of one machine, oldest first.

    Returns how many more messages are now known lost.
    """
    lost_before = live.lost_messages
    live.messages += len(rows)
    live.clock_skews += sum(row.clock_skewed for row in rows)
    last_arrival = max(row.received_at for row in rows)
    live.last_seen_at = last_arrival if live.last_seen_at is None else max(live.last_seen_at, last_arrival)
    running_seen = False  # a running report was looked at since the last change: its period is open
    for row in sorted(rows, key=lambda r: (r.boot != live.boot, r.at, r.seq)):
        newer = live.last_state_at is None or row.at >= live.last_state_at
        if row.boot != live.boot and newer:
            if live.boot:
                live.restarts = min(live.restarts + 1, MAX_RESTARTS)
                live.gaps = min(live.gaps + max(live.last_seq - live.boot_messages, 0), MAX_COUNT)
            live.boot, live.last_seq, live.boot_messages = row.boot, 0, 0
        if row.boot == live.boot:
            live.boot_messages += 1
            live.last_seq = max(live.last_seq, row.seq)
        if row.desired_v is not None and row.desired_v > live.desired_applied_v:
            live.desired_applied_v = row.desired_v
        if row.run_s is not None:
            # Before the state: the counters' difference since the previous report belongs to the
            # period that was open until now.
            effects.counter(live.machine_id, row)
        # A late report is kept as telemetry but does not roll the live state back.
        if newer:
            # A change of state, or a machine coming back, can open or close a running period or an
            # alert. A machine's first `running` report of the batch is always looked at: a machine
            # running with no open period gets one, whatever was lost before (a last will, a lost
            # `online`, a restart of the ingest); the next ones find the period open.
            if row.state != live.state or not live.online or (row.state == "running" and not running_seen):
                effects.state(live.machine_id, row)
            running_seen = row.state == "running"
            live.state, live.power_w, live.job, live.last_state_at = row.state, row.power_w, row.job, row.at
            live.online = True
        else:
            effects.late_state(live.machine_id, row)
    return live.lost_messages - lost_before


def _apply_statuses(statuses: list[tuple[int, Incoming]]) -> None:
    """Each machine's last status of the batch (the retained one) is what counts: `offline` then `online` is online."""
    last: dict[int, Incoming] = {}
    for machine_id, message in statuses:
        last[machine_id] = message
    if not last:
        return
    lives = _lives(last)
    for machine_id, message in last.items():
        live = lives[machine_id]
        live.online = message.parsed.online
        live.last_seen_at = max(filter(None, [live.last_seen_at, message.received_at]))
    update_many(MachineLiveStatus, list(lives.values()), ["online", "last_seen_at"])
    services.on_online([machine_id for machine_id, message in last.items() if message.parsed.online])
    for machine_id, message in last.items():
        if not message.parsed.online:
            services.on_offline(machine_id, message.received_at)


HEALTH_UPSERT = """
INSERT INTO machines_ingesthealth AS h (client_id, stored, duplicates, quarantined, last_commit_at, newest_received_at,
                                        queued)
VALUES (%s, %s, %s, %s::jsonb, statement_timestamp(), %s, 0)
ON CONFLICT (client_id) DO UPDATE SET
    stored = h.stored + excluded.stored,
    duplicates = h.duplicates + excluded.duplicates,
    quarantined = CASE WHEN excluded.quarantined = '{}'::jsonb THEN h.quarantined ELSE (
        SELECT jsonb_object_agg(reason, total) FROM (
            SELECT reason, sum(count::bigint) AS total
            FROM (SELECT * FROM jsonb_each_text(h.quarantined) UNION ALL
                  SELECT * FROM jsonb_each_text(excluded.quarantined)) AS counts (reason, count)
            GROUP BY reason) AS merged) END,
    last_commit_at = excluded.last_commit_at,
    newest_received_at = greatest(h.newest_received_at, excluded.newest_received_at)
"""


def _record_health(health_id: str | None, result: BatchResult) -> None:
    """The replica's figures, in the batch's own transaction: one statement, counted exactly once per commit."""
    if health_id is None:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(HEALTH_UPSERT, [health_id, result.stored, result.duplicates,
                                           orjson.dumps(result.rejected).decode(), result.newest_received_at])
        return
    health, _ = IngestHealth.objects.select_for_update().get_or_create(client_id=health_id)
    health.stored += result.stored
    health.duplicates += result.duplicates
    for reason, count in result.rejected.items():
        health.quarantined[reason] = health.quarantined.get(reason, 0) + count
    health.last_commit_at = timezone.now()
    health.newest_received_at = max(filter(None, [health.newest_received_at, result.newest_received_at]), default=None)
    health.save()
