"""Simulated Fablab machines speaking the fablab-ops MQTT protocol (docs/mqtt.md).

    python -m devices.simulator --machines 8 --rate 0.5 [--url mqtt://user:pass@host:1883]
                                [--registry devices.json] [--duration 600] [--protocol 3.1.1|5]
                                [--seed 1] [--speed 20]

Each machine holds its own MQTT connection with its own login and last will, like
the reference firmware: `online` retained on connect, a state message on every change
and heartbeats, `enable`/`disable` obeyed (an interlocked machine is powered only while
enabled, until `until`) and every command answered on `ack`. Machines idle, run jobs
with the power draw of their type, sometimes fail a job, get switched off and on,
and now and then lose power: a new `boot`, `seq` from 1, and the broker publishes the
last will because the connection vanished without a goodbye. SIGINT/SIGTERM publish
`offline` (retained) and disconnect cleanly.

The layers are separate so tests and benchmarks can use them without a broker:
message building (`topic`, `state_message`, `ack_message`, `encode`), one machine's
behaviour (`SimulatedMachine`, no network, driven by the caller's clock), the
message cadence (`ReportSchedule`), and the MQTT transport (`DeviceLink`, `Fleet`).
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
from collections import Counter, OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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

MEAN_UPTIME_H = 12.0  # simulated hours between two power losses of a machine
OFF_SHARE = 0.1  # share of idle spells after which a machine without interlock is switched off
OFF_MINUTES = (20.0, 120.0)
ERROR_MINUTES = (3.0, 20.0)  # until a technician clears the fault
FIRST_JOB_MINUTES = 3.0  # mean wait from an enable (the learner is at the machine) to the first job
REBOOT_SECONDS = (2.0, 6.0)  # real time a node needs to boot and join WiFi again
REMEMBERED_COMMANDS = 32
CONNECT_STAGGER_S = 0.05  # small embedded brokers drop connections that arrive all at once
TICK_S = 0.1


# --- messages: the protocol's payloads, shared with tests and benchmarks ----------------------------

def topic(lab: str, machine: str, kind: str) -> str:
    return f"fablab/{lab}/{machine}/{kind}"


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def state_message(*, seq: int, boot: int | str, ts: str | int, state: str, power_w: float | None = None,
                  job: str | None = None) -> dict:
    message = {"seq": seq, "boot": boot, "ts": ts, "state": state}
    if power_w is not None:
        message["power_w"] = power_w
    if job:
        message["job"] = job
    return message


def ack_message(command_id: str | None, ok: bool, reason: str | None = None) -> dict:
    message = {"id": command_id, "ok": ok}
    if reason:
        message["reason"] = reason
    return message


def encode(message: dict) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()


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
    RESTART = "restart"  # the node lost power: new boot, and its connection is gone


def _minutes(value: float) -> float:
    return value * 60.0


def _until(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


class SimulatedMachine:
    """A machine with its sensor node, as the firmware sees it; time comes from the caller.

    `advance(now)` moves the machine on to `now`, `report(now)` builds the next state
    message, `handle_command(payload, now)` obeys a command and returns the ack.
    Durations of jobs, idle spells and faults are in simulated time (`speed` times
    real time); `until` and `ts` are wall-clock times.
    """

    def __init__(self, lab: str, machine: str, kind: str = "printer-3d", *, interlock: bool = False,
                 rng: random.Random | None = None, speed: float = 1.0, now: datetime | None = None,
                 boot: int | None = None, unix_ms_ts: bool = False):
        self.lab, self.machine, self.kind = lab, machine, kind
        self.profile = PROFILES.get(kind, GENERIC)
        self.interlock = interlock
        self.rng = rng or random.Random()
        self.speed = speed
        self.unix_ms_ts = unix_ms_ts
        self._clock = now or datetime.now(ICT)
        # Started from the wall clock, so a simulator run again never reuses a (boot, seq) the service has stored.
        self.boot = boot if boot is not None else time.time_ns() // 1_000_000
        self.seq = 0
        self.enabled_until: datetime | None = None
        self.next_crash_in = self._uptime()
        self.state, self.job, self._left = "off", "", math.inf
        self._job_power, self._faulty = 0.0, False
        self._answers: OrderedDict[str, dict] = OrderedDict()
        self._power_up(self._clock)

    def enabled(self, now: datetime) -> bool:
        return self.enabled_until is not None and now < self.enabled_until

    def advance(self, now: datetime) -> Change:
        elapsed = max((now - self._clock).total_seconds(), 0.0) * self.speed
        self._clock = now
        self.next_crash_in -= elapsed
        if self.next_crash_in <= 0:
            self.restart(now)
            return Change.RESTART
        before = self.state
        self._follow_interlock(now)
        if self.state == before:
            self._left -= elapsed
            if self._left <= 0:
                self._next_phase()
        return Change.STATE if self.state != before else Change.NONE

    def report(self, now: datetime) -> dict:
        """The next state message: every message since boot takes the next seq, the first is 1."""
        self.seq += 1
        return state_message(seq=self.seq, boot=self.boot, ts=unix_ms(now) if self.unix_ms_ts else rfc3339(now),
                             state=self.state, power_w=self.power_w(), job=self.job)

    def power_w(self) -> float:
        if self.state == "off":
            return 0.0
        if self.state == "running":
            return round(self._job_power * self.rng.uniform(0.93, 1.07), 1)
        return round(self.rng.uniform(*self.profile.idle_w), 1)  # idle, or halted on a fault

    def restart(self, now: datetime) -> None:
        """Power lost and back: a new boot, seq from 1, the job gone, commands in RAM forgotten.

        The enable survives, as the firmware keeps `until` in flash: a learner whose
        machine blinked keeps it until the end of the reservation.
        """
        self.boot += 1
        self.seq = 0
        self.next_crash_in = self._uptime()
        self._answers.clear()
        self._enter("off", math.inf)
        self._power_up(now)

    def handle_command(self, payload: bytes, now: datetime) -> dict:
        """Obey an enable/disable command; the ack to publish, `ok: false` with a reason when malformed."""
        try:
            command = json.loads(payload)
        except ValueError:  # also UnicodeDecodeError
            return ack_message(None, False, "malformed command: not JSON")
        if not isinstance(command, dict):
            return ack_message(None, False, "malformed command: not a JSON object")
        command_id = command.get("id")
        if not isinstance(command_id, str) or not command_id:
            return ack_message(None, False, "malformed command: `id` must be a non-empty string")
        # QoS 1 may deliver a command twice, even after a later one: answer again, never apply again.
        if command_id in self._answers:
            return self._answers[command_id]
        answer = self._obey(command, command_id, now)
        self._answers[command_id] = answer
        if len(self._answers) > REMEMBERED_COMMANDS:
            self._answers.popitem(last=False)
        return answer

    def _obey(self, command: dict, command_id: str, now: datetime) -> dict:
        if command.get("user") is not None and not isinstance(command["user"], str):
            return ack_message(command_id, False, "malformed command: `user` must be a string")
        action = command.get("action")
        if action == "enable":
            until = _until(command.get("until"))
            if until is None:
                return ack_message(command_id, False, "malformed command: enable needs `until` in RFC 3339 "
                                                      "with an offset")
            if until <= now:
                return ack_message(command_id, False, "`until` has already passed")
            self.enabled_until = until
        elif action == "disable":
            self.enabled_until = None
        else:
            return ack_message(command_id, False, f"malformed command: unknown action {action!r}")
        if not self.interlock:
            return ack_message(command_id, True, "no interlock fitted: nothing to switch")
        self._follow_interlock(now)
        return ack_message(command_id, True)

    def _follow_interlock(self, now: datetime) -> None:
        """The contactor follows the enable: power cut when not enabled, back when enabled."""
        if not self.interlock:
            return
        if not self.enabled(now):
            if self.state != "off":
                self._enter("off", math.inf)
        elif self.state == "off":
            self._enter("idle", _minutes(self.rng.expovariate(1 / FIRST_JOB_MINUTES)))

    def _power_up(self, now: datetime) -> None:
        if self.interlock:
            self._follow_interlock(now)
        else:
            self._enter("idle", self._gap())

    def _next_phase(self) -> None:
        if self.state == "idle":
            if not self.interlock and self.rng.random() < OFF_SHARE:
                self._enter("off", _minutes(self.rng.uniform(*OFF_MINUTES)))
            else:
                self._start_job()
        elif self.state == "running" and self._faulty:
            self._enter("error", _minutes(self.rng.uniform(*ERROR_MINUTES)), job=self.job)
        else:  # a job done, a fault cleared, or switched on again
            self._enter("idle", self._gap())

    def _start_job(self) -> None:
        length = _minutes(self.rng.uniform(*self.profile.job_minutes))
        self._faulty = self.rng.random() < self.profile.fault_share
        if self._faulty:
            length *= self.rng.uniform(0.1, 0.9)  # it fails part-way through
        self._job_power = self.rng.uniform(*self.profile.running_w)
        self._enter("running", length, job=f"{self.rng.choice(self.profile.jobs)}-{self.rng.randrange(1000):03d}")

    def _enter(self, state: str, seconds: float, job: str = "") -> None:
        self.state, self._left, self.job = state, seconds, job

    def _gap(self) -> float:
        return _minutes(self.rng.expovariate(1 / self.profile.gap_minutes))

    def _uptime(self) -> float:
        return self.rng.expovariate(1 / (MEAN_UPTIME_H * 3600))


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
    """Lose a connection as a power cut does, without DISCONNECT: the broker publishes the last will."""
    client.loop_stop()
    sock = client.socket()
    if sock is not None:
        sock.close()


class DeviceLink:
    """One machine's own MQTT connection, held as its firmware holds it.

    Its own login and client id `{lab}.{machine}`, the last will `offline` (retained),
    `online` (retained) and the current state on every connect, commands in and acks
    out, and a new connection after each simulated power loss. The lock serialises the
    machine between the fleet's thread and paho's, and keeps seq in publishing order.
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
        self.rebooting_until: float | None = None
        self.closing = False

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
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: the broker refused the connection: %s", self.name, reason_code)
            return
        with self.lock:
            if client is not self.client or self.closing:
                return  # a connection from before a restart, or one that came back during the goodbye
            client.publish(self._topic("status"), "online", qos=1, retain=True)
            client.subscribe(self._topic("command"), qos=1)
            self.connected.set()
            self._report(client, time.monotonic(), datetime.now(ICT))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if client is self.client:
            self.connected.clear()
            if not self.closing:
                log.warning("%s: connection lost (%s); reconnecting", self.name, reason_code)

    def _on_message(self, client, userdata, message):
        if message.topic != self._topic("command"):
            return  # some brokers hand a fresh subscriber retained messages of other topics
        with self.lock:
            if client is not self.client:
                return
            now = datetime.now(ICT)
            before = self.machine.state
            ack = self.machine.handle_command(message.payload, now)
            client.publish(self._topic("ack"), encode(ack), qos=1)
            if self.machine.state != before:  # the contactor closed or opened
                self._report(client, time.monotonic(), now)

    def _report(self, client: mqtt.Client, mono: float, now: datetime) -> None:
        client.publish(self._topic("state"), encode(self.machine.report(now)), qos=1)
        self.schedule.sent(mono)

    def tick(self, mono: float, now: datetime) -> None:
        """Move the machine on and publish what is due; `mono` is time.monotonic(), `now` the wall clock."""
        with self.lock:
            if self.closing:
                return
            if self.rebooting_until is not None:
                if mono >= self.rebooting_until:
                    self.rebooting_until = None
                    self.client = self._new_client()
                return
            change = self.machine.advance(now)
            if change is Change.RESTART:
                lost, self.client = self.client, None
                self.connected.clear()
                self.rebooting_until = mono + self.rng.uniform(*REBOOT_SECONDS)
                log.info("%s: power lost; boot %s next", self.name, self.machine.boot)
                if lost is not None:
                    # Stopping paho's loop waits for its thread: not on the fleet's thread.
                    threading.Thread(target=_vanish, args=(lost,), daemon=True).start()
            elif self.connected.is_set() and (change is Change.STATE or self.schedule.due(mono)):
                self._report(self.client, mono, now)

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
    """The simulated machines of a registry, each on its own connection, driven by one thread."""

    def __init__(self, registry: list[dict], *, url: str, protocol: str = "3.1.1", rate: float = 0.2,
                 speed: float = 1.0, seed: int | None = None):
        rng = random.Random(seed)
        self.broker = broker = BrokerAddress.from_url(url)
        start = time.monotonic()
        self.links = []
        for entry in registry:
            machine = SimulatedMachine(entry["lab"], entry["machine"], entry.get("type", "printer-3d"),
                                       interlock=bool(entry.get("interlock")), rng=random.Random(rng.getrandbits(64)),
                                       speed=speed, unix_ms_ts=entry.get("ts") == "unix_ms")
            # Each device has its own login; the URL's is for registries without credentials.
            username = entry.get("username") or broker.username
            password = entry.get("password") if entry.get("username") else broker.password
            self.links.append(DeviceLink(
                machine, broker, username=username, password=password,
                protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
                schedule=ReportSchedule(rate, start, rng.random()), rng=random.Random(rng.getrandbits(64))))

    def run(self, stop: threading.Event, duration: float | None = None) -> None:
        """Connect, simulate until `stop` is set or `duration` seconds have passed, then say goodbye."""
        deadline = time.monotonic() + duration if duration else math.inf
        try:
            for link in self.links:
                link.connect()
                if stop.wait(CONNECT_STAGGER_S):
                    return
            while not stop.is_set() and time.monotonic() < deadline:
                mono, now = time.monotonic(), datetime.now(ICT)
                for link in self.links:
                    link.tick(mono, now)
                next_due = min((link.schedule.next_due for link in self.links), default=mono + TICK_S)
                stop.wait(min(max(next_due - time.monotonic(), 0.005), TICK_S))
        finally:
            self.close()

    def close(self, timeout: float = 5.0) -> None:
        goodbyes = [link.say_goodbye() for link in self.links]
        deadline = time.monotonic() + timeout
        for info in goodbyes:
            # A connection that dropped meanwhile has nothing in flight to wait for.
            if info is not None and info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(max(deadline - time.monotonic(), 0.01))
        for link in self.links:
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    registry = load_registry(args.registry, args.machines)
    fleet = Fleet(registry, url=args.url, protocol=args.protocol, rate=args.rate, speed=args.speed, seed=args.seed)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("%d machines on %s:%d (MQTT %s), %.3g messages/s each, speed x%g",
             len(fleet.links), fleet.broker.host, fleet.broker.port, args.protocol, args.rate, args.speed)
    fleet.run(stop, duration=args.duration)


if __name__ == "__main__":
    main()
