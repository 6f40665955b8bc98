"""Simulated Fablab machines speaking the fablab-ops MQTT protocol, version 2 (docs/mqtt.md).

    python -m devices.simulator --machines 8 --rate 0.5 [--url mqtt://user:pass@host:1883]
                                [--registry devices.json] [--duration 600] [--protocol 3.1.1|5]
                                [--seed 1] [--speed 20]

Each machine holds its own MQTT connection with its own login and last will, like
the reference firmware: `online` retained on connect, a state message on every change
and heartbeats, each carrying the counters `run_s` and `energy_wh` since boot and the
version `desired_v` of the desired state it holds. It follows the retained desired
state of its `desired` topic: only a version newer than the one it holds is applied
(and kept in "flash", across power losses), its interlock is closed only between
`from` and `until` on its own clock, it moves on to `next` when its clock reaches
`next.from`, and it acks `{"v": n, "ok": true}`. A machine without interlock cannot be
switched, but with `keeps_to_bookings` (the registry's `"keeps_to_bookings": true`, or
`--keep-to-bookings`) its users keep to the desired state as a lab's rules ask: a job
starts only while the grant names a holder, and stops at its `until` (the laptop demo
runs every machine so). Machines idle, run jobs with the
power draw of their type, sometimes fail a job, and now and then lose power: a new
`boot`, `seq` and counters from zero, and the broker publishes the last will because
the connection vanished without a goodbye. SIGINT/SIGTERM publish `offline`
(retained) and disconnect cleanly.

The layers are separate so tests and benchmarks can use them without a broker:
message building (`topic`, `state_message`, `ack_message`, `encode`), one machine's
behaviour (`SimulatedMachine`, no network, driven by the caller's clock, keeping the
ground truth of what really happened in `machine.truth`), the message cadence
(`ReportSchedule`), and the MQTT transport (`DeviceLink`, with `acked`, `wifi_drop`
and `power_loss` for fault injection, and `Fleet`).
"""

import argparse
import json
import logging
import math
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger("devices.simulator")

# Vietnam keeps no daylight saving time, so a fixed offset is exact and needs no tz database.
ICT = timezone(timedelta(hours=7), "ICT")
LABS = ("biic", "eiu", "vsvc", "tdmu-bio")
HEARTBEAT_S = 30.0  # the protocol's longest silence between two state messages
KEEPALIVE_S = 30  # the broker publishes the last will of a silent device after 1.5 keepalives
MAX_INTEGER = 2**53  # the protocol's bound on versions and counters

MEAN_UPTIME_H = 12.0  # simulated hours between two power losses of a machine
OFF_SHARE = 0.1  # share of idle spells after which a machine without interlock is switched off
OFF_MINUTES = (20.0, 120.0)
ERROR_MINUTES = (3.0, 20.0)  # until a technician clears the fault
FIRST_JOB_MINUTES = 3.0  # mean wait from the interlock closing (the learner is at the machine) to the first job
REBOOT_SECONDS = (2.0, 6.0)  # real time a node needs to boot and join WiFi again
CONNECT_STAGGER_S = 0.05  # small embedded brokers drop connections that arrive all at once
TICK_S = 0.1


# --- messages: the protocol's payloads, shared with tests and benchmarks ----------------------------

def topic(lab: str, machine: str, kind: str) -> str:
    return f"fablab/{lab}/{machine}/{kind}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def state_message(*, seq: int, boot: int | str, ts: str | int, state: str, power_w: float | None = None,
                  job: str | None = None, run_s: float | None = None, energy_wh: float | None = None,
                  desired_v: int | None = None) -> dict:
    message = {"seq": seq, "boot": boot, "ts": ts, "state": state}
    if power_w is not None:
        message["power_w"] = power_w
    if job:
        message["job"] = job
    if run_s is not None:
        message["run_s"] = run_s
    if energy_wh is not None:
        message["energy_wh"] = energy_wh
    if desired_v is not None:
        message["desired_v"] = desired_v
    return message


def ack_message(version: int | None, ok: bool, reason: str | None = None) -> dict:
    message = {"v": version, "ok": ok}
    if reason:
        message["reason"] = reason
    return message


def encode(message: dict) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


# --- the desired state: parsed once, then followed on the device's own clock ------------------------

class MalformedDesired(ValueError):
    pass


def _moment(value, name: str, *, required: bool) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MalformedDesired(f"`{name}` must be RFC 3339 with an offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise MalformedDesired(f"`{name}` must be RFC 3339 with an offset") from error
    if moment.tzinfo is None:
        raise MalformedDesired(f"`{name}` has no offset: ambiguous")
    return moment


@dataclass(frozen=True)
class Grant:
    """One step of a desired state: who may use the machine, from when until when (None: no end)."""

    holder: str | None
    reservation: int | None
    start: datetime
    until: datetime | None

    @classmethod
    def parse(cls, data: dict) -> "Grant":
        holder, reservation = data.get("holder"), data.get("reservation")
        if holder is not None and not isinstance(holder, str):
            raise MalformedDesired("`holder` must be a string or null")
        if reservation is not None and (type(reservation) is not int or not 0 <= reservation <= MAX_INTEGER):
            raise MalformedDesired("`reservation` must be an integer or null")
        start = _moment(data.get("from"), "from", required=True)
        until = _moment(data.get("until"), "until", required=False)
        return cls(holder, reservation, start, until)

    def closes(self, now: datetime) -> bool:
        return self.holder is not None and self.start <= now and (self.until is None or now < self.until)


@dataclass(frozen=True)
class Desired:
    """A desired state as the device keeps it in flash: its version, the current grant and the next one."""

    version: int
    current: Grant
    following: Grant | None = None

    @classmethod
    def parse(cls, payload: bytes) -> "Desired":
        try:
            data = json.loads(payload)
        except ValueError as error:  # also UnicodeDecodeError
            raise MalformedDesired("not JSON") from error
        if not isinstance(data, dict):
            raise MalformedDesired("not a JSON object")
        version = data.get("v")
        if type(version) is not int or not 0 < version <= MAX_INTEGER:
            raise MalformedDesired("`v` must be a positive integer")
        following = data.get("next")
        if following is not None and not isinstance(following, dict):
            raise MalformedDesired("`next` must be an object or null")
        return cls(version, Grant.parse(data), Grant.parse(following) if following else None)

    def grant(self, now: datetime) -> Grant:
        """The grant in force at `now`: `next` takes over when the clock reaches its `from`."""
        if self.following is not None and self.following.start <= now:
            return self.following
        return self.current


def version_of(payload: bytes) -> int | None:
    """The `v` of a desired state that could not be applied, to name it in the refusal (None if unreadable)."""
    try:
        version = json.loads(payload).get("v")
    except (ValueError, AttributeError):
        return None
    return version if type(version) is int else None


# --- one machine's behaviour, without a network -----------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """How a type of machine behaves: watts on its supply, durations in simulated minutes."""

    slug: str  # machine slugs of this type in a synthetic fleet: laser-01, laser-02…
    interlocked: bool  # whether a synthetic machine of this type has a contactor
    idle_w: tuple[float, float]
    running_w: tuple[float, float]
    job_minutes: tuple[float, float]
    gap_minutes: float  # mean idle time between two jobs
    fault_share: float  # share of jobs that end in an error
    jobs: tuple[str, ...]


PROFILES = {
    "laser-cutter": Profile("laser", True, (18, 30), (1000, 1500), (5, 45), 15, 0.03,
                            ("acrylic-sign", "plywood-box", "leather-tag", "mdf-puzzle")),
    "printer-3d": Profile("printer", False, (5, 12), (120, 250), (30, 360), 25, 0.04,
                          ("bracket", "enclosure", "gear-set", "phone-stand")),
    "cnc-router": Profile("cnc", True, (20, 30), (1600, 2400), (15, 120), 30, 0.02,
                          ("table-leg", "plywood-panel", "sign-board", "mould")),
    "vinyl-cutter": Profile("vinyl", False, (5, 8), (30, 60), (5, 20), 20, 0.02,
                            ("sticker-sheet", "tshirt-transfer", "shop-sign")),
    "electronics-bench": Profile("bench", False, (5, 15), (40, 250), (10, 90), 20, 0.01,
                                 ("soldering", "pcb-rework", "sensor-test")),
    "pcb-mill": Profile("pcb", True, (8, 12), (60, 120), (20, 90), 30, 0.03,
                        ("pcb-isolation", "pcb-drill", "pcb-outline")),
    "bio-cabinet": Profile("bsc", True, (15, 25), (200, 350), (30, 120), 30, 0.01,
                           ("cell-culture", "media-prep", "sample-prep")),
    "bioprinter": Profile("bioprinter", True, (20, 30), (150, 300), (20, 90), 40, 0.05,
                          ("hydrogel-grid", "scaffold", "cartilage-model")),
}
# The service's registry may hold types this file has never heard of; they still behave plausibly.
GENERIC = Profile("machine", False, (5, 30), (100, 500), (10, 60), 30, 0.02, ("job",))


class Change(Enum):
    NONE = "none"
    STATE = "state"  # a state message is due now
    RESTART = "restart"  # the node lost power: it is dark (and its connection gone) until power_up()


def _minutes(value: float) -> float:
    return value * 60.0


@dataclass
class GroundTruth:
    """What really happened to a machine, by the wall clock (aware UTC), whatever reached the service.

    `running`: the intervals it ran a job; `closed`: the intervals its interlock was closed, with the
    reservation it was closed for (None for a technician's maintenance, and for a holder without
    reservation); `powered_off`: power losses. An interval still going on ends in None. Only a machine
    with an interlock records `closed`.
    """

    running: list[list] = field(default_factory=list)
    closed: list[list] = field(default_factory=list)
    powered_off: list[list] = field(default_factory=list)

    @staticmethod
    def _open(intervals: list[list], now: datetime, *extra) -> None:
        intervals.append([utc(now), None, *extra])

    @staticmethod
    def _close(intervals: list[list], now: datetime) -> None:
        if intervals and intervals[-1][1] is None:
            intervals[-1][1] = utc(now)

    @staticmethod
    def seconds(intervals: list[list], until: datetime | None = None) -> float:
        """Total length of intervals, the open one counted up to `until` (default: now)."""
        until = utc(until or datetime.now(UTC))
        return sum(((end or until) - start).total_seconds() for start, end, *_ in intervals)


class SimulatedMachine:
    """A machine with its sensor node, as the firmware sees it; time comes from the caller.

    `advance(now)` moves the machine on to `now`, `report(now)` builds the next state
    message, `handle_desired(payload, now)` takes a desired state and returns the ack.
    Durations of jobs, idle spells and faults are in simulated time (`speed` times
    real time); the desired state's times, `ts` and the counters are wall-clock times.
    With an interlock the machine is powered only while its desired state's grant
    closes it; a learner then runs jobs, and a job still going at `until` is cut off.
    `mean_uptime_h=None` turns random power losses off (fault injection then decides).
    `keeps_to_bookings` (for a machine without interlock): its users start a job only while the
    desired state's grant names a holder and stop at `until`, as the interlock would make them.
    """

    def __init__(self, lab: str, machine: str, kind: str = "printer-3d", *, interlock: bool = False,
                 rng: random.Random | None = None, speed: float = 1.0, now: datetime | None = None,
                 boot: int | None = None, unix_ms_ts: bool = False, mean_uptime_h: float | None = MEAN_UPTIME_H,
                 keeps_to_bookings: bool = False):
        self.lab, self.machine, self.kind = lab, machine, kind
        self.profile = PROFILES.get(kind, GENERIC)
        self.interlock = interlock
        # Without a contactor, whether the machine runs outside a grant is up to its users: these keep to it.
        self.keeps_to_bookings = keeps_to_bookings and not interlock
        self.rng = rng or random.Random()
        self.speed = speed
        self.unix_ms_ts = unix_ms_ts
        self.mean_uptime_h = mean_uptime_h
        self._clock = now or datetime.now(ICT)
        self.truth = GroundTruth()
        # Started from the wall clock, so a simulator run again never reuses a (boot, seq) the service has stored.
        self.boot = boot if boot is not None else time.time_ns() // 1_000_000
        self.seq = 0
        self.desired: Desired | None = None  # kept in flash: survives power losses
        self.powered = True
        self.run_s = 0.0
        self.energy_wh = 0.0
        self.next_crash_in = self._uptime()
        self.state, self.job, self._left = "off", "", math.inf
        self._job_power, self._idle_power, self._faulty = 0.0, 0.0, False
        self._closed_for: tuple[bool, int | None] = (False, None)  # the contactor, and the reservation it is for
        self._power_up(self._clock)

    @property
    def desired_v(self) -> int:
        return self.desired.version if self.desired else 0

    def grant(self, now: datetime) -> Grant | None:
        return self.desired.grant(now) if self.desired else None

    def interlock_closed(self, now: datetime) -> bool:
        """Whether the desired state lets the machine be powered at `now`, by the device's own clock."""
        grant = self.grant(now)
        return grant is not None and grant.closes(now)

    def advance(self, now: datetime) -> Change:
        self._sync(now)
        if not self.powered:
            return Change.NONE
        if self.next_crash_in <= 0:
            self.lose_power(now)
            return Change.RESTART
        before = self.state
        self._follow_interlock(now)
        self._follow_bookings(now)
        if self.state == before and self._left <= 0:
            self._next_phase(now)
        return Change.STATE if self.state != before else Change.NONE

    def _sync(self, now: datetime) -> None:
        """Let the time up to `now` pass in the present state: counters, and what is left of the phase."""
        seconds = max((now - self._clock).total_seconds(), 0.0)
        self._clock = max(self._clock, now)
        if not self.powered:
            return
        self._count(seconds)
        self._left -= seconds * self.speed
        self.next_crash_in -= seconds * self.speed

    def report(self, now: datetime) -> dict:
        """The next state message: every message since boot takes the next seq, the first is 1."""
        self._sync(now)  # the counters up to this very moment
        self.seq += 1
        return state_message(seq=self.seq, boot=self.boot, ts=unix_ms(now) if self.unix_ms_ts else rfc3339(now),
                             state=self.state, power_w=self.power_w(), job=self.job, run_s=round(self.run_s, 3),
                             energy_wh=round(self.energy_wh, 4), desired_v=self.desired_v)

    def power_w(self) -> float:
        if self.state == "off":
            return 0.0
        if self.state == "running":
            return round(self._job_power * self.rng.uniform(0.93, 1.07), 1)
        return round(self.rng.uniform(*self.profile.idle_w), 1)  # idle, or halted on a fault

    def _draw_w(self) -> float:
        """The mean draw of the present state, which the counters integrate."""
        return {"off": 0.0, "running": self._job_power}.get(self.state, self._idle_power)

    def _count(self, seconds: float) -> None:
        if self.state == "running":
            self.run_s += seconds
        self.energy_wh += self._draw_w() * seconds / 3600.0

    def lose_power(self, now: datetime) -> None:
        """The supply is gone: the machine stops at once (a running job ends) and the node goes dark."""
        if not self.powered:
            return
        self._sync(now)
        self._enter("off", math.inf, now=now)
        self._contactor(False, None, now)
        self.powered = False
        GroundTruth._open(self.truth.powered_off, now)

    def power_up(self, now: datetime) -> None:
        """Power is back: a new boot, seq and counters from zero; the desired state comes back from flash."""
        self._clock = now
        if not self.powered:
            GroundTruth._close(self.truth.powered_off, now)
        self.powered = True
        self.boot += 1
        self.seq = 0
        self.run_s = self.energy_wh = 0.0
        self.next_crash_in = self._uptime()
        self._enter("off", math.inf, now=now)
        self._power_up(now)

    def restart(self, now: datetime) -> None:
        """A power blip: lost and back at the same moment."""
        self.lose_power(now)
        self.power_up(now)

    def handle_desired(self, payload: bytes, now: datetime) -> dict:
        """Take a desired state; the ack to publish. Only a newer version than the one held is applied."""
        try:
            desired = Desired.parse(payload)
        except MalformedDesired as error:
            return ack_message(version_of(payload), False, f"malformed desired state: {error}")
        # QoS 1 may deliver an old version again, or after a newer one: it changes nothing.
        if desired.version <= self.desired_v:
            return ack_message(desired.version, True, f"already holding v{self.desired_v}")
        self.desired = desired
        self._sync(now)
        if self.powered:
            self._follow_interlock(now)
            self._follow_bookings(now)
        if not self.interlock:
            return ack_message(desired.version, True, "no interlock fitted: nothing to switch")
        return ack_message(desired.version, True)

    def _contactor(self, closed: bool, reservation: int | None, now: datetime) -> None:
        """Record the interlock's real position in the ground truth."""
        if not self.interlock or (closed, reservation) == self._closed_for:
            return
        if self._closed_for[0]:
            GroundTruth._close(self.truth.closed, now)
        if closed:
            GroundTruth._open(self.truth.closed, now, reservation)
        self._closed_for = (closed, reservation)

    def _follow_interlock(self, now: datetime) -> None:
        """The contactor follows the desired state: power cut when its grant does not close it, back when it does."""
        if not self.interlock:
            return
        grant = self.grant(now)
        closed = grant is not None and grant.closes(now)
        self._contactor(closed, grant.reservation if closed else None, now)
        if not closed:
            if self.state != "off":
                self._enter("off", math.inf, now=now)
        elif self.state == "off":
            self._enter("idle", _minutes(self.rng.expovariate(1 / FIRST_JOB_MINUTES)), now=now)

    def _follow_bookings(self, now: datetime) -> None:
        """Users who keep to the bookings: a job going on when the grant ends is stopped; one soon after it begins."""
        if not self.keeps_to_bookings:
            return
        granted = self.interlock_closed(now)
        if self.state == "running" and not granted:
            self._enter("idle", self._gap(), now=now)
        elif self.state == "idle" and granted and self._left > _minutes(FIRST_JOB_MINUTES):
            self._left = _minutes(self.rng.expovariate(1 / FIRST_JOB_MINUTES))  # the learner is at the machine

    def _power_up(self, now: datetime) -> None:
        if self.interlock:
            self._follow_interlock(now)
        else:
            self._enter("idle", self._gap(), now=now)

    def _next_phase(self, now: datetime) -> None:
        if self.state == "idle":
            if not self.interlock and self.rng.random() < OFF_SHARE:
                self._enter("off", _minutes(self.rng.uniform(*OFF_MINUTES)), now=now)
            elif self.keeps_to_bookings and not self.interlock_closed(now):
                self._enter("idle", self._gap(), now=now)  # nobody holds it: nobody starts a job
            else:
                self._start_job(now)
        elif self.state == "running" and self._faulty:
            self._enter("error", _minutes(self.rng.uniform(*ERROR_MINUTES)), job=self.job, now=now)
        else:  # a job done, a fault cleared, or switched on again
            self._enter("idle", self._gap(), now=now)

    def _start_job(self, now: datetime) -> None:
        length = _minutes(self.rng.uniform(*self.profile.job_minutes))
        self._faulty = self.rng.random() < self.profile.fault_share
        if self._faulty:
            length *= self.rng.uniform(0.1, 0.9)  # it fails part-way through
        self._job_power = self.rng.uniform(*self.profile.running_w)
        self._enter("running", length, job=f"{self.rng.choice(self.profile.jobs)}-{self.rng.randrange(1000):03d}",
                    now=now)

    def _enter(self, state: str, seconds: float, job: str = "", *, now: datetime) -> None:
        if state != self.state:
            if self.state == "running":
                GroundTruth._close(self.truth.running, now)
            if state == "running":
                GroundTruth._open(self.truth.running, now)
        if state in ("idle", "error"):
            self._idle_power = sum(self.profile.idle_w) / 2
        self.state, self._left, self.job = state, seconds, job

    def _gap(self) -> float:
        return _minutes(self.rng.expovariate(1 / self.profile.gap_minutes))

    def _uptime(self) -> float:
        if self.mean_uptime_h is None:
            return math.inf
        return self.rng.expovariate(1 / (self.mean_uptime_h * 3600))


class ReportSchedule:
    """When a machine's next state message is due.

    `rate` messages per second on average, change messages included: a change uses
    up the next heartbeat's slot instead of adding a message. Never more than
    HEARTBEAT_S apart, so a rate below 1/30 still heartbeats every 30 s.
    """

    def __init__(self, rate: float, start: float, phase: float = 0.0):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = min(1 / rate, HEARTBEAT_S)
        self.next_due = start + phase * self.interval  # a phase in [0, 1) keeps a fleet from reporting in step

    def due(self, now: float) -> bool:
        return now >= self.next_due

    def sent(self, now: float) -> None:
        if self.next_due + self.interval <= now:  # far behind after a stall: no burst to catch up
            self.next_due = now
        self.next_due = min(self.next_due + self.interval, now + HEARTBEAT_S)


# --- MQTT transport ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> "BrokerAddress":
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"not an mqtt:// or mqtts:// URL: {url}")
        tls = parsed.scheme == "mqtts"
        return cls(parsed.hostname or "127.0.0.1", parsed.port or (8883 if tls else 1883),
                   unquote(parsed.username) if parsed.username else None,
                   unquote(parsed.password) if parsed.password else None, tls)


def _vanish(client: mqtt.Client) -> None:
    """Lose a connection as a power cut or a WiFi loss does, without DISCONNECT: the broker publishes the will."""
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()


class DeviceLink:
    """One machine's own MQTT connection, held as its firmware holds it.

    Its own login and client id `{lab}.{machine}`, the last will `offline` (retained),
    `online` (retained), its `desired` topic subscribed and the current state reported
    on every connect, desired states in and acks out. Reports made while the link is
    down wait in the device's outbox and go out, in seq order, once it is back; so do
    reports the broker had not acknowledged when the connection vanished. `acked`
    holds the (boot, seq) of every state report the broker acknowledged (PUBACK).
    The lock serialises the machine between the fleet's thread and paho's, and keeps
    seq in publishing order.
    """

    def __init__(self, machine: SimulatedMachine, broker: BrokerAddress, *, username: str | None,
                 password: str | None, protocol: int, schedule: ReportSchedule, rng: random.Random):
        self.machine = machine
        self.broker = broker
        self.username, self.password = username, password
        self.protocol = protocol
        self.schedule = schedule
        self.rng = rng
        self.name = f"{machine.lab}.{machine.machine}"
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client: mqtt.Client | None = None
        self.rebooting_until: float | None = None  # dark after a power loss, until then (monotonic)
        self.offline_until: float | None = None  # WiFi gone, machine still running, until then (monotonic)
        self.closing = False
        self.acked: set[tuple[str, int]] = set()
        self._outbox: list[tuple[tuple[str, int], bytes]] = []  # reports not yet handed to a connection
        self._inflight: dict[int, tuple[tuple[str, int], bytes]] = {}  # handed to `client`, by mid, not yet acked

    def _topic(self, kind: str) -> str:
        return topic(self.machine.lab, self.machine.machine, kind)

    def connect(self) -> None:
        with self.lock:
            self.client = self._new_client()

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.name, protocol=self.protocol)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.broker.tls:
            client.tls_set()
        client.will_set(self._topic("status"), "offline", qos=1, retain=True)
        # Back within a second or two of the broker's return: a check-in made meanwhile is waiting for this machine.
        # A lab's few dozen machines retrying that often cost the broker nothing.
        client.reconnect_delay_set(1, 2)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        return client

    def _drop_client(self) -> None:
        """Forget the connection (under the lock); what it had not got acknowledged goes back to the outbox."""
        lost, self.client = self.client, None
        self.connected.clear()
        self._outbox[:0] = [self._inflight[mid] for mid in sorted(self._inflight)]
        self._inflight = {}
        if lost is not None:
            # Stopping paho's loop waits for its thread: never on the fleet's thread, nor on paho's own.
            threading.Thread(target=_vanish, args=(lost,), daemon=True).start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: the broker refused the connection: %s", self.name, reason_code)
            return
        with self.lock:
            if client is not self.client or self.closing:
                return  # a connection from before a restart, or one that came back during the goodbye
            client.publish(self._topic("status"), "online", qos=1, retain=True)
            # The retained desired state arrives at once: a device that was away learns where it stands.
            client.subscribe(self._topic("desired"), qos=1)
            self.connected.set()
            waiting, self._outbox = self._outbox, []
            for key, payload in waiting:
                self._send(client, key, payload)
            self._report(client, time.monotonic(), datetime.now(ICT))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if client is self.client:
            self.connected.clear()
            if not self.closing:
                log.warning("%s: connection lost (%s); reconnecting", self.name, reason_code)

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            if client is not self.client:
                return  # a vanished connection: its reports went back to the outbox and will be acked anew
            sent = self._inflight.pop(mid, None)
            if sent is not None:
                self.acked.add(sent[0])

    def _on_message(self, client, userdata, message):
        if message.topic != self._topic("desired"):
            return  # some brokers hand a fresh subscriber retained messages of other topics
        with self.lock:
            if client is not self.client:
                return
            now = datetime.now(ICT)
            before = self.machine.state
            ack = self.machine.handle_desired(message.payload, now)
            client.publish(self._topic("ack"), encode(ack), qos=1)
            if self.machine.state != before:  # the contactor closed or opened
                self._report(client, time.monotonic(), now)

    def _send(self, client: mqtt.Client, key: tuple[str, int], payload: bytes) -> None:
        info = client.publish(self._topic("state"), payload, qos=1)
        # paho keeps a QoS 1 message it could not write yet and sends it when the connection is back.
        self._inflight[info.mid] = (key, payload)

    def _report(self, client: mqtt.Client | None, mono: float, now: datetime) -> None:
        message = self.machine.report(now)
        key, payload = (str(message["boot"]), message["seq"]), encode(message)
        if client is not None and self.connected.is_set():
            self._send(client, key, payload)
        else:
            self._outbox.append((key, payload))
        self.schedule.sent(mono)

    def tick(self, mono: float, now: datetime) -> None:
        """Move the machine on and publish what is due; `mono` is time.monotonic(), `now` the wall clock."""
        with self.lock:
            if self.closing:
                return
            if self.rebooting_until is not None:
                self.machine.advance(now)  # dark: only the clock moves
                if mono >= self.rebooting_until:
                    self.rebooting_until = None
                    self.machine.power_up(now)
                    log.info("%s: power back; boot %s", self.name, self.machine.boot)
                    self.client = self._new_client()
                return
            if self.offline_until is not None and mono >= self.offline_until:
                self.offline_until = None
                self.client = self._new_client()
            change = self.machine.advance(now)
            if change is Change.RESTART:
                self._go_dark(mono + self.rng.uniform(*REBOOT_SECONDS))
            elif change is Change.STATE or self.schedule.due(mono):
                self._report(self.client, mono, now)

    def _go_dark(self, until: float) -> None:
        self._drop_client()
        self._outbox.clear()  # the node's RAM is gone with the power
        self.offline_until = None
        self.rebooting_until = until
        log.info("%s: power lost", self.name)

    def wifi_drop(self, seconds: float) -> None:
        """The WiFi goes for `seconds`: the connection is cut without DISCONNECT (the broker fires the last will),
        the machine keeps running, and the reports it makes meanwhile are delivered once the link is back."""
        with self.lock:
            if self.closing or self.rebooting_until is not None:
                return
            self._drop_client()
            self.offline_until = time.monotonic() + seconds
            log.info("%s: WiFi lost for %.1fs", self.name, seconds)

    def power_loss(self, seconds: float) -> None:
        """The supply goes for `seconds`: the machine stops at once, the connection is cut, no reports; then a new
        boot (seq 1, counters 0) with the desired state restored from flash."""
        with self.lock:
            if self.closing or self.rebooting_until is not None:
                return
            self.machine.lose_power(datetime.now(ICT))
            self._go_dark(time.monotonic() + seconds)

    def say_goodbye(self) -> mqtt.MQTTMessageInfo | None:
        """Stop reporting and publish `offline` (retained); the caller waits for it, then calls close()."""
        with self.lock:
            self.closing = True
            if self.client is not None and self.connected.is_set():
                return self.client.publish(self._topic("status"), "offline", qos=1, retain=True)
            return None

    def close(self) -> None:
        with self.lock:
            client, self.client = self.client, None
            self.connected.clear()
        if client is not None:
            client.disconnect()  # a DISCONNECT tells the broker to drop the last will
            client.loop_stop()


class Fleet:
    """The simulated machines of a registry, each on its own connection, driven by one thread.

    `links` maps "lab/machine" to its DeviceLink (and through it `link.machine.truth`).
    """

    def __init__(self, registry: list[dict], *, url: str, protocol: str = "3.1.1", rate: float = 0.2,
                 speed: float = 1.0, seed: int | None = None, mean_uptime_h: float | None = MEAN_UPTIME_H,
                 keep_to_bookings: bool = False):
        rng = random.Random(seed)
        self.broker = broker = BrokerAddress.from_url(url)
        start = time.monotonic()
        self.links: dict[str, DeviceLink] = {}
        for entry in registry:
            machine = SimulatedMachine(entry["lab"], entry["machine"], entry.get("type", "printer-3d"),
                                       interlock=bool(entry.get("interlock")), rng=random.Random(rng.getrandbits(64)),
                                       speed=speed, unix_ms_ts=entry.get("ts") == "unix_ms",
                                       mean_uptime_h=mean_uptime_h,
                                       keeps_to_bookings=keep_to_bookings or bool(entry.get("keeps_to_bookings")))
            # Each device has its own login; the URL's is for registries without credentials.
            username = entry.get("username") or broker.username
            password = entry.get("password") if entry.get("username") else broker.password
            self.links[f"{entry['lab']}/{entry['machine']}"] = DeviceLink(
                machine, broker, username=username, password=password,
                protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
                schedule=ReportSchedule(rate, start, rng.random()), rng=random.Random(rng.getrandbits(64)))

    def run(self, stop: threading.Event, duration: float | None = None) -> None:
        """Connect, simulate until `stop` is set or `duration` seconds have passed, then say goodbye."""
        deadline = time.monotonic() + duration if duration else math.inf
        links = list(self.links.values())
        try:
            for link in links:
                link.connect()
                if stop.wait(CONNECT_STAGGER_S):
                    return
            while not stop.is_set() and time.monotonic() < deadline:
                mono, now = time.monotonic(), datetime.now(ICT)
                for link in links:
                    link.tick(mono, now)
                next_due = min((link.schedule.next_due for link in links), default=mono + TICK_S)
                stop.wait(min(max(next_due - time.monotonic(), 0.005), TICK_S))
        finally:
            self.close()

    def close(self, timeout: float = 5.0) -> None:
        links = list(self.links.values())
        goodbyes = [link.say_goodbye() for link in links]
        deadline = time.monotonic() + timeout
        for info in goodbyes:
            # A connection that dropped meanwhile has nothing in flight to wait for.
            if info is not None and info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
        for link in links:
            link.close()


def synthetic_registry(count: int) -> list[dict]:
    """`count` machines spread over the four labs, typed as their labs' real ones, without credentials."""
    lab_types = {
        "biic": ("laser-cutter", "printer-3d", "printer-3d", "cnc-router", "vinyl-cutter", "electronics-bench"),
        "eiu": ("laser-cutter", "printer-3d", "printer-3d", "pcb-mill", "electronics-bench"),
        "vsvc": ("cnc-router", "cnc-router", "laser-cutter", "printer-3d", "electronics-bench"),
        "tdmu-bio": ("bio-cabinet", "bioprinter", "printer-3d", "electronics-bench"),
    }
    numbers: Counter = Counter()
    registry = []
    for index in range(count):
        lab = LABS[index % len(LABS)]
        kind = lab_types[lab][(index // len(LABS)) % len(lab_types[lab])]
        profile = PROFILES[kind]
        numbers[lab, profile.slug] += 1
        entry = {"lab": lab, "machine": f"{profile.slug}-{numbers[lab, profile.slug]:02d}", "type": kind,
                 "username": None, "password": None, "interlock": profile.interlocked}
        if index % 4 == 3:
            entry["ts"] = "unix_ms"  # the protocol's other time format, as a node with a bare RTC sends
        registry.append(entry)
    return registry


def load_registry(path: str | None, count: int | None) -> list[dict]:
    if not path:
        return synthetic_registry(8 if count is None else count)
    with open(path, encoding="utf-8") as handle:
        registry = json.load(handle)
    if not isinstance(registry, list) or not all(
            isinstance(e, dict) and isinstance(e.get("lab"), str) and isinstance(e.get("machine"), str)
            for e in registry):
        raise SystemExit(f"{path}: expected a JSON list of objects with string `lab` and `machine`")
    return registry if count is None else registry[:count]


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devices.simulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=_count,
                        help="how many machines: the first N of the registry (default: all of it), or N synthetic "
                             "ones (default 8)")
    parser.add_argument("--rate", type=_positive, default=0.2,
                        help="state messages per second per machine on average, heartbeats included "
                             "(at least one every 30 s whatever the rate)")
    parser.add_argument("--url", default=os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"),
                        help="mqtt://user:pass@host:port or mqtts://… (default: $MQTT_URL); the login is used "
                             "for machines the registry gives none")
    parser.add_argument("--registry", help='JSON list of {"lab", "machine", "type", "username", "password", '
                                           '"interlock"} (mqtt_credentials --registry writes one; "ts": '
                                           '"unix_ms" makes a machine send Unix milliseconds); without it, '
                                           "synthetic machines over the four labs")
    parser.add_argument("--duration", type=_positive, help="stop after this many seconds (default: run until "
                                                           "SIGINT/SIGTERM)")
    parser.add_argument("--protocol", choices=["3.1.1", "5"], default="3.1.1")
    parser.add_argument("--seed", type=int, help="seed the machines' behaviour, for a reproducible run")
    parser.add_argument("--speed", type=_positive, default=1.0,
                        help="time acceleration of jobs, idle spells, faults and power losses (not of the "
                             "message rate, nor of `until`)")
    parser.add_argument("--keep-to-bookings", action="store_true",
                        help="machines without interlock run jobs only while their desired state names a holder "
                             "(as the registry's \"keeps_to_bookings\": true does for one machine)")
    parser.add_argument("--mean-uptime-h", type=float, default=MEAN_UPTIME_H,
                        help=f"simulated hours between two power losses of a machine, on average (default "
                             f"{MEAN_UPTIME_H:g}; 0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    registry = load_registry(args.registry, args.machines)
    fleet = Fleet(registry, url=args.url, protocol=args.protocol, rate=args.rate, speed=args.speed, seed=args.seed,
                  mean_uptime_h=args.mean_uptime_h or None, keep_to_bookings=args.keep_to_bookings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("%d machines on %s:%d (MQTT %s), %.3g messages/s each, speed x%g",
             len(fleet.links), fleet.broker.host, fleet.broker.port, args.protocol, args.rate, args.speed)
    fleet.run(stop, duration=args.duration)


if __name__ == "__main__":
    main()
