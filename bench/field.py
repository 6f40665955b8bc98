"""Field trial: the machine side measured against ground truth, under the faults a lab meets every week.

Everything real, on 127.0.0.1 only:
  * PostgreSQL: the bench's own database (`fablab_field`, dropped and created again each run) on the
    shared server; the bench process talks to it directly, the ingest through a TCP proxy of the bench.
  * Mosquitto: a private broker (temporary directory, free port, persistence on, so a restart keeps the
    sessions and the retained desired states), with the password file and ACL that
    `manage.py mqtt_credentials` writes from the registry, so every device logs in with its own user as
    in production. One extra read-only user, `bench-observer`, watches the desired states.
  * the ingest: `manage.py mqtt_ingest` subprocess(es) (`--replicas N` to run N partitioned replicas),
    with the production defaults; the bench supervises them as compose would (an ingest that exits is
    started again, and its exit is counted). The devices start reporting only once the broker's log shows
    the ingest's subscriptions: in production its persistent session is months old, and what a broker
    gets before anyone subscribed goes to no one.
  * the machines: the simulator's `Fleet` (devices/simulator.py) in the bench process, at least 30
    machines over the four labs, every one with an interlock, random power losses switched off (the bench
    injects its own).
  * the service: check-ins (`checkin.check_in_manually`), switch-offs (`services.switch_off`), "switch off
    now" (`services.switch_machine_off`, then `services.end_override` a few seconds later), maintenance
    (`services.schedule_maintenance` + `services.enable_for_maintenance`), each at its planned moment on a
    pool thread of its own (four labs' doors and technicians act independently). Celery runs eagerly, so
    the desired-state relay (`booking.tasks.publish_desired_states`) publishes to the private broker in
    the thread that committed; a "beat" thread calls the booking and machine apps' periodic jobs every
    second, as Celery beat would (`sync_desired_states` included; course, report and certification jobs
    are left out: they have nothing to do here). Reservations are created with the ORM: `reserve()` wants
    opening hours and 30-minute slots, and the day is compressed to slots of tens of seconds.

The compressed day: on every machine but two (kept quiet, for the poison that must be stored) a series of
reservations, mostly back to back: checked in on time, early (before the previous one has ended, so the
next holder travels in the desired state's `next`), late, never (no-shows), switched off early by a
technician (`switch_off`), or cut by a technician's "switch off now" override; a few machines get a
maintenance window with an "enable for maintenance" override for the technician. Jobs overrun their slot
now and then (the simulator keeps a job past `until`; the interlock cuts it).

Faults, and how each is injected (counted in `faults_injected` only when it really happened):
  * wifi_drop: `DeviceLink.wifi_drop(s)` on a machine in use, 2-6 s: the TCP connection is cut without a
    DISCONNECT (the broker fires the will), the machine keeps running and delivers its reports afterwards.
  * power_loss: `DeviceLink.power_loss(s)`, 2-5 s: the machine stops, a new boot follows.
  * mosquitto_restart: SIGTERM to the broker, started again 1 s later on the same port, config and
    persistence directory.
  * ingest_kill: SIGKILL to an ingest process, started again 1.5 s later (same arguments, same session).
  * postgres_outage: 30 s during which PostgreSQL is unavailable TO THE INGEST ONLY: the ingest's
    DATABASE_URL points at a small TCP proxy in the bench, which then closes every open connection and
    closes its listening socket (new connections are refused, ECONNREFUSED), and listens again afterwards.
    Chosen over a private cluster because it cuts the ingest off exactly as a failed-over or restarting
    server does, while the service side (check-ins, the relay) and the bench's measurements keep working.
  * poison_*: published with the device's own credentials (its MQTT user, another client id) on its own
    topics, QoS 1: NUL in `job`, NUL in `boot`, NUL in a status, NUL in a malformed payload, `seq` 2^64-1,
    `seq` jumping by 2^63 between two reports, `ts` in year 9999, an invalid surrogate (JSON escape, and
    as raw bytes). Each uses a boot of its own (`poison-...`), so it can never collide with a real key.
  * desired_*: as the service user, an old desired state published again on a device's desired topic,
    retained (`desired_reordered_retained`) and not (`desired_reordered`), and the current one twice
    (`desired_duplicate`); the device must ignore all of them.

Ground truth (the simulator's `machine.truth`, from the wall clock): `running` intervals, `closed`
intervals of the interlock with the reservation id the device was closed for (None for a technician's
override), `powered_off` intervals, and `DeviceLink.acked`, the (boot, seq) of every state report the
broker PUBACKed. The bench's own record: for each reservation checked in, [max(start, checked_in_at), end),
ended earlier by a switch-off, and suspended while a "switch off now" override is in force; for each
maintenance override, [given, until). All of it, with the desired states the observer saw, goes to
truth.json in the run's folder (kept unless every target is met, or with --keep), beside events.jsonl
(every action and fault), the ingest's and the broker's logs.

Figures (last line, one JSON object):
  hours_error_pct: per machine |stored running seconds (MachineUsageDay) - true running seconds| / true,
      worst machine; machines that ran < 60 s are excluded from it and listed.
  lost: acked (boot, seq) not in TelemetryMessage. duplicates: telemetry keys stored more than once, plus
      UsageSessions of one machine that overlap.
  wrongly_enabled_s: interlock closed for someone (a reservation id, or none) who was not entitled to the
      machine then. A holder may be closed from their start (minus a 0.5 s tick) to their end (plus a
      tick) or, when a technician ended or suspended it, until `actuation_allowance_s` after the action.
  wrongly_disabled_s: a checked-in holder's interlock open while they must be closed, the machine powered
      and reachable (power losses, and times the device had no broker connection — WiFi drop, broker
      restart — each plus the allowance after it came back, excluded: no service can reach a device then;
      that time is reported on its own as `disabled_while_unreachable_s`). A holder must be closed from
      max(start + tick, check-in + allowance) to their end (or the switch-off), and again from the end of
      a "switch off now" override plus the allowance; a maintenance override from the action + allowance.
  max_stall_s: the longest time during which the broker acknowledged new reports to devices and the
      ingest stored nothing (telemetry row count sampled every 0.5 s).
  actuation_latency_max_s: longest time from when an action should take effect (max(start, check-in),
      switch-off, override given or ended) to the interlock really moving; `actuations_past_deadline`
      counts those that moved after the deadlines above.
Targets are printed beside the figures as pass/fail; nothing is assumed, everything is counted.

    python bench/field.py [--quick] [--machines 32] [--replicas 1] [--seed 11] [--day-seconds N]
"""

import argparse
import atexit
import contextlib
import json
import logging
import math
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_field"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
OBSERVER_USER = "bench-observer"
TICK_S = 0.5  # a device acts on its own clock in ticks of 0.1 s; this is the slack at a boundary it knows of
QUIET_MACHINES = 2
TARGETS = {"hours_error_pct": 1.0, "lost": 0, "duplicates": 0, "wrongly_enabled_s": 0.0,
           "wrongly_disabled_s": 0.0, "max_stall_s": 60.0}

log = logging.getLogger("bench.field")

# --- child processes: every one is killed at exit, Ctrl-C included ------------------------------------

CHILDREN: list[subprocess.Popen] = []


def spawn(argv: list[str], **kwargs) -> subprocess.Popen:
    process = subprocess.Popen(argv, **kwargs)  # noqa: S603 - our own interpreter, mosquitto
    CHILDREN.append(process)
    return process


def kill_children() -> None:
    for process in CHILDREN:
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.kill()
    for process in CHILDREN:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


atexit.register(kill_children)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


def wait_until(condition, seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


class Journal:
    """Everything that happened, one JSON line each, for the evidence behind a figure."""

    def __init__(self, path: Path, origin: float):
        self.lock = threading.Lock()
        self.file = path.open("w", encoding="utf-8")
        self.origin = origin

    def __call__(self, event: str, **fields) -> None:
        now = time.time()
        line = json.dumps({"t": round(now - self.origin, 3), "at": datetime.fromtimestamp(now, UTC).isoformat(),
                           "event": event, **fields}, ensure_ascii=False, default=str)
        with self.lock:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self) -> None:
        with self.lock:
            self.file.close()


# --- the private broker --------------------------------------------------------------------------------

class Broker:
    """A Mosquitto of the run's own, configured as deploy/mosquitto/mosquitto.conf, on a free port."""

    def __init__(self, folder: Path, auth: Path, port: int):
        self.folder = folder
        self.port = port
        data = folder / "mosquitto-data"
        data.mkdir()
        self.log = folder / "mosquitto.log"
        self.config = folder / "mosquitto.conf"
        text = (f"listener {self.port} 127.0.0.1\nprotocol mqtt\nallow_anonymous false\n"
                f"password_file {auth / 'passwd'}\nacl_file {auth / 'acl'}\n"
                f"persistence true\npersistence_location {data}/\nautosave_interval 60\n"
                "max_queued_messages 100000\nmax_inflight_messages 10000\nmax_packet_size 65536\n"
                f"log_dest file {self.log}\nlog_type error\nlog_type warning\nlog_type notice\n"
                "log_type information\nlog_type subscribe\nconnection_messages true\n"
                "log_timestamp_format %Y-%m-%dT%H:%M:%S\n")
        if os.geteuid() == 0:
            text = "user root\n" + text  # otherwise it drops to `mosquitto`, who cannot write our temp dir
        self.config.write_text(text)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = spawn([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if not wait_until(lambda: listening(self.port), 10):
            raise SystemExit("the private mosquitto did not start")

    def state_subscribers(self) -> set[str]:
        """Client ids that subscribed to a state topic (only the ingest does), from the broker's log."""
        subscribers = set()
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                parts = line.split()
                if len(parts) == 4 and "fablab/" in parts[3] and parts[3].endswith("/state"):
                    subscribers.add(parts[1])
        return subscribers

    def reconnects_after_restart(self) -> list[int]:
        """Per broker restart, whole seconds (the log's resolution) until every ingest replica was back."""
        out, since, waiting, starts = [], None, set(), 0
        with contextlib.suppress(OSError):
            lines = self.log.read_text(errors="replace").splitlines()
            ingests = {p.split()[1] for p in lines if len(p.split()) == 4 and p.split()[3].endswith("/state")}
            for line in lines:
                stamp = datetime.strptime(line.split(": ", 1)[0], "%Y-%m-%dT%H:%M:%S") if ": " in line else None
                if line.endswith("running"):
                    starts += 1
                    if starts > 1:  # the first start is the run's, not a restart
                        since, waiting = stamp, set(ingests)
                elif since and "New client connected" in line and line.split(" as ")[-1].split()[0] in waiting:
                    waiting.discard(line.split(" as ")[-1].split()[0])
                    if not waiting:
                        out.append(int((stamp - since).total_seconds()))
                        since = None
        return out

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


# --- PostgreSQL as the ingest sees it ------------------------------------------------------------------

class PgProxy:
    """A TCP proxy between the ingest and PostgreSQL that can make the database vanish for the ingest.

    `outage()` closes every connection it carries and its listening socket (a new connection is refused);
    `restore()` listens again on the same port.
    """

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.listener: socket.socket | None = None
        self.down = False
        self.connections = 0

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="pg-proxy", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while self.listener is listener:
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = (client, upstream)
            with self.lock:
                if self.down:
                    self._close(pair)
                    continue
                self.pairs.add(pair)
                self.connections += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target, pair), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, pair) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self.lock:
                self.pairs.discard(pair)
            self._close(pair)

    @staticmethod
    def _close(pair) -> None:
        for sock in pair:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def outage(self) -> int:
        with self.lock:
            self.down = True
            listener, self.listener = self.listener, None
            pairs, self.pairs = list(self.pairs), set()
        if listener is not None:
            listener.close()
        for pair in pairs:
            self._close(pair)
        return len(pairs)

    def restore(self) -> None:
        with self.lock:
            self.down = False
        self.start()

    def close(self) -> None:
        self.outage()


# --- the ingest processes --------------------------------------------------------------------------------

class Ingests:
    """`manage.py mqtt_ingest` as production runs it, supervised as compose's `restart` would."""

    def __init__(self, *, env: dict, url: str, replicas: int, folder: Path, journal: Journal):
        self.env, self.url, self.replicas, self.folder, self.journal = env, url, replicas, folder, journal
        self.processes: dict[int, subprocess.Popen] = {}
        self.expected_down: set[int] = set()
        self.exits: list[dict] = []
        self.lock = threading.Lock()
        help_text = subprocess.run([sys.executable, "manage.py", "mqtt_ingest", "--help"], cwd=ROOT, env=env,
                                   capture_output=True, text=True, timeout=60).stdout
        self.partitioned = "--replicas" in help_text
        if replicas > 1 and not self.partitioned:
            raise SystemExit("this ingest has no --replicas; run with --replicas 1")

    def argv(self, replica: int) -> list[str]:
        argv = [sys.executable, "manage.py", "mqtt_ingest", "--url", self.url]
        if self.partitioned and self.replicas > 1:
            argv += ["--replicas", str(self.replicas), "--replica", str(replica)]
        return argv

    def start(self, replica: int) -> None:
        with (self.folder / f"ingest-{replica}.log").open("ab") as output:
            process = spawn(self.argv(replica), cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT)
        with self.lock:
            self.processes[replica] = process
            self.expected_down.discard(replica)
        self.journal("ingest_started", replica=replica, pid=process.pid)

    def start_all(self) -> None:
        for replica in range(self.replicas):
            self.start(replica)

    def kill(self, replica: int) -> int:
        with self.lock:
            process = self.processes[replica]
            self.expected_down.add(replica)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return process.pid

    def supervise(self) -> None:
        """An ingest that exits on its own is counted and started again after 1 s."""
        with self.lock:
            dead = [(k, p) for k, p in self.processes.items() if p.poll() is not None and k not in self.expected_down]
            for replica, _process in dead:
                self.expected_down.add(replica)
        for replica, process in dead:
            self.exits.append({"replica": replica, "pid": process.pid, "returncode": process.returncode,
                               "at": utcnow().isoformat()})
            self.journal("ingest_exited", replica=replica, pid=process.pid, returncode=process.returncode)
            time.sleep(1)
            self.start(replica)

    def stop_all(self) -> None:
        with self.lock:
            processes = list(self.processes.items())
            self.expected_down.update(self.processes)
        for _replica, process in processes:
            if process.poll() is None:
                process.terminate()
        for _replica, process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


# --- MQTT helpers of the bench ----------------------------------------------------------------------------

def mqtt_client(client_id: str, username: str, password: str):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                         clean_session=True)
    client.username_pw_set(username, password)
    return client


def publish_as(port: int, username: str, password: str, messages: list[tuple[str, bytes, bool]],
               client_id: str) -> list[bool]:
    """Publish (topic, payload, retain) at QoS 1 with a login; which ones the broker acknowledged."""
    client = mqtt_client(client_id, username, password)
    try:
        client.connect("127.0.0.1", port, keepalive=30)
    except OSError:
        return [False] * len(messages)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=retain) for topic, payload, retain in messages]
        for info in infos:
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(5)
        return [info.is_published() for info in infos]
    finally:
        client.disconnect()
        client.loop_stop()


class Observer:
    """The bench's read-only user: records every desired state the service publishes, per machine."""

    def __init__(self, port: int, password: str):
        self.lock = threading.Lock()
        self.desired: dict[str, list[dict]] = defaultdict(list)  # "lab/machine" -> messages seen
        self.client = mqtt_client("bench-observer", OBSERVER_USER, password)
        self.client.reconnect_delay_set(0.5, 2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([("fablab/+/+/desired", 1)])
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        parts = message.topic.split("/")
        try:
            body = json.loads(message.payload)
            version = body.get("v") if isinstance(body, dict) else None
        except ValueError:
            body, version = None, None
        with self.lock:
            self.desired[f"{parts[1]}/{parts[2]}"].append(
                {"at": utcnow(), "v": version, "payload": bytes(message.payload), "retained": message.retain,
                 "body": body})

    def versions(self, key: str) -> list[dict]:
        with self.lock:
            seen, unique = set(), []
            for entry in self.desired.get(key, []):
                if isinstance(entry["v"], int) and entry["v"] not in seen:
                    seen.add(entry["v"])
                    unique.append(entry)
            return sorted(unique, key=lambda entry: entry["v"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- intervals ------------------------------------------------------------------------------------------

def merged(intervals) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted((a, b) for a, b in intervals if b > a):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def measure(intervals) -> float:
    return sum(b - a for a, b in merged(intervals))


def subtract(base, cut) -> list[tuple[float, float]]:
    result = []
    cut = merged(cut)
    for a, b in merged(base):
        cursor = a
        for c, d in cut:
            if d <= cursor or c >= b:
                continue
            if c > cursor:
                result.append((cursor, c))
            cursor = max(cursor, d)
            if cursor >= b:
                break
        if cursor < b:
            result.append((cursor, b))
    return result


def intersect(left, right) -> list[tuple[float, float]]:
    out = []
    right = merged(right)
    for a, b in merged(left):
        for c, d in right:
            lo, hi = max(a, c), min(b, d)
            if hi > lo:
                out.append((lo, hi))
    return out


# --- the day's plan -------------------------------------------------------------------------------------

@dataclass
class Slot:
    key: str  # "lab/machine"
    start: datetime
    end: datetime
    kind: str  # on_time, early, late, no_show, switch_off, override_off
    user_id: int
    checkin_at: datetime | None = None  # planned
    cut_at: datetime | None = None  # planned technician action
    reservation_id: int | None = None
    checked_in_at: datetime | None = None  # what the service said
    action_at: datetime | None = None  # when the check-in call was made
    ended_at: datetime | None = None  # switch-off / override: when the technician acted
    ended_by: str = ""
    resume_at: datetime | None = None  # planned: the technician ends the "switch off now" override
    override_id: int | None = None
    resumed_at: datetime | None = None  # when the override was ended
    refused: str = ""


@dataclass
class Maintenance:
    key: str
    start: datetime  # the technician enables the machine for maintenance now…
    until: datetime  # …until then
    given_at: datetime | None = None
    done: bool = False
    error: str = ""


@dataclass
class Plan:
    slots: list[Slot] = field(default_factory=list)
    maintenance: list[Maintenance] = field(default_factory=list)


def plan_day(rng: random.Random, keys: list[str], t0: datetime, day_s: float, slot_s: tuple[float, float],
             users: list[int], long_slot_s: float) -> Plan:
    plan = Plan()
    end_of_day = t0 + timedelta(seconds=day_s)
    user_cycle = iter(rng.sample(users * 50, len(users) * 50))
    for index, key in enumerate(keys):
        cursor = t0 + timedelta(seconds=rng.uniform(0.5, 4))
        maintenance_machine = index % 9 == 4
        long_machine = index % 6 == 2
        while True:
            if maintenance_machine and cursor > t0 + timedelta(seconds=day_s * 0.35):
                length = timedelta(seconds=rng.uniform(*slot_s))
                if cursor + length > end_of_day:
                    break
                plan.maintenance.append(Maintenance(key, cursor, cursor + length))
                maintenance_machine = False
                cursor += length + timedelta(seconds=rng.uniform(1, 3))
                continue
            if long_machine:
                # services.switch_off keeps at least a minute of a reservation: a switch-off needs a long slot.
                length = timedelta(seconds=long_slot_s + rng.uniform(5, 15))
                kind = "switch_off"
                long_machine = False
            else:
                length = timedelta(seconds=rng.uniform(*slot_s))
                kind = rng.choices(["on_time", "early", "late", "no_show", "override_off"],
                                   weights=[30, 30, 15, 12, 13])[0]
            if cursor + length > end_of_day:
                break
            slot = Slot(key, cursor, cursor + length, kind, next(user_cycle))
            seconds = length.total_seconds()
            if kind in ("on_time", "switch_off", "override_off"):
                slot.checkin_at = cursor - timedelta(seconds=rng.uniform(0, 1))
            elif kind == "early":
                slot.checkin_at = cursor - timedelta(seconds=rng.uniform(3, 12))
            elif kind == "late":
                slot.checkin_at = cursor + timedelta(seconds=rng.uniform(2, 6))
            if kind == "switch_off":
                slot.cut_at = cursor + timedelta(seconds=long_slot_s + rng.uniform(1, 3))
            elif kind == "override_off":
                slot.cut_at = cursor + timedelta(seconds=seconds * rng.uniform(0.45, 0.7))
                slot.resume_at = min(slot.cut_at + timedelta(seconds=rng.uniform(3, 6)),
                                     slot.end - timedelta(seconds=0.5))
            plan.slots.append(slot)
            gap = 0.0 if rng.random() < 0.65 else rng.uniform(1.5, 5)
            cursor += length + timedelta(seconds=gap)
    return plan


# --- the service side: what the door, the technicians and beat do -----------------------------------------

class Service:
    """The service functions the bench drives, as the door's and the technicians' pages call them."""

    def __init__(self):
        from fablab_ops.booking import services
        from fablab_ops.door import services as checkin

        self.checkin, self.services = checkin, services
        self.missing = [name for name in ("switch_machine_off", "enable_for_maintenance", "end_override")
                        if not hasattr(services, name)]

    def check_in(self, reservation_id: int, lab, by):
        return self.checkin.check_in_manually("reservation", reservation_id, lab=lab, by=by)

    def switch_off(self, reservation_id: int, by):
        return self.services.switch_off(reservation_id, by=by)

    def override_off(self, machine, by, reason: str):
        """"Switch off now": the override's id, for ending it."""
        return self.services.switch_machine_off(machine, by=by, reason=reason).pk

    def end_override(self, override_id: int, by):
        return self.services.end_override(override_id, by=by)

    def override_enable(self, machine, by, until: datetime, reason: str):
        return self.services.enable_for_maintenance(machine, until, by=by, reason=reason).pk

    def periodic_tasks(self) -> list[tuple[str, object]]:
        """The beat schedule's booking and machine jobs (the ones that act on machines)."""
        import importlib

        from django.conf import settings

        tasks = []
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            module, task = entry["task"].rsplit(".", 1)
            if module in ("fablab_ops.booking.tasks", "fablab_ops.machines.tasks") and "lapse" not in task:
                tasks.append((name, getattr(importlib.import_module(module), task)))
        return tasks


# --- the trial --------------------------------------------------------------------------------------------

class Trial:
    def __init__(self, args, folder: Path):
        self.args = args
        self.folder = folder
        self.rng = random.Random(args.seed)
        self.origin = time.time()
        self.journal = Journal(folder / "events.jsonl", self.origin)
        self.faults: Counter = Counter()
        self.errors: Counter = Counter()
        self.stop = threading.Event()
        self.stalls: list[dict] = []
        self.max_stall = 0.0
        self.wifi: list[dict] = []
        self.power: list[dict] = []
        self.poison_sent: list[dict] = []
        self.link_down: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.plan = Plan()
        self.threads: list[threading.Thread] = []

    # setup

    def setup(self) -> None:
        args = self.args
        self.database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
        self.passwords = {name: secrets.token_urlsafe(18) for name in ("service", "ingest", "healthcheck",
                                                                       OBSERVER_USER)}
        self.proxy = PgProxy(urlsplit(self.database_url).port or 5432)
        self.proxy.start()
        parsed = urlsplit(self.database_url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit("the field trial runs against PostgreSQL on 127.0.0.1 only")
        login = parsed.netloc.rsplit("@", 1)[0] + "@" if "@" in parsed.netloc else ""
        self.ingest_database_url = urlunsplit(parsed._replace(netloc=f"{login}127.0.0.1:{self.proxy.port}"))
        self.mqtt_port = free_port()
        common = {"DJANGO_SETTINGS_MODULE": "fablab_ops.settings", "DEBUG": "0",
                  "SECRET_KEY": secrets.token_urlsafe(64), "CELERY_BROKER_URL": "",
                  "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "LOG_LEVEL": "INFO",
                  "MQTT_SERVICE_PASSWORD": self.passwords["service"],
                  "MQTT_INGEST_PASSWORD": self.passwords["ingest"],
                  "MQTT_HEALTHCHECK_PASSWORD": self.passwords["healthcheck"]}
        self.env = {**os.environ, **common, "DATABASE_URL": self.database_url,
                    "MQTT_URL": f"mqtt://service:{self.passwords['service']}@127.0.0.1:{self.mqtt_port}"}
        self.ingest_env = {**self.env, "DATABASE_URL": self.ingest_database_url,
                           "MQTT_URL": f"mqtt://ingest:{self.passwords['ingest']}@127.0.0.1:{self.mqtt_port}"}
        os.environ.update({k: v for k, v in self.env.items() if k in common or k in ("DATABASE_URL", "MQTT_URL")})
        from bench._support import ensure_database

        ensure_database(self.database_url)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env,
                       check=True, timeout=300)
        import django

        django.setup()
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("celery").setLevel(logging.WARNING)
        self.registry = self.build_world(args.machines)
        auth = self.folder / "auth"
        registry_file = self.folder / "devices.json"
        subprocess.run([sys.executable, "manage.py", "mqtt_credentials", "--output-dir", str(auth),
                        "--registry", str(registry_file)], cwd=ROOT, env=self.env, check=True, timeout=120,
                       stdout=subprocess.DEVNULL)
        from fablab_ops.machines import credentials

        with (auth / "passwd").open("a") as passwd:
            passwd.write(f"{OBSERVER_USER}:{credentials.mosquitto_hash(self.passwords[OBSERVER_USER])}\n")
        with (auth / "acl").open("a") as acl:
            acl.write(f"\n# the field trial's observer\nuser {OBSERVER_USER}\ntopic read fablab/#\n")
        self.devices = {f"{d['lab']}/{d['machine']}": d for d in json.loads(registry_file.read_text())}
        self.broker = Broker(self.folder, auth, self.mqtt_port)
        self.broker.start()
        self.ingests = Ingests(env=self.ingest_env, url=self.ingest_env["MQTT_URL"], replicas=args.replicas,
                               folder=self.folder, journal=self.journal)
        self.service = Service()

    def build_world(self, count: int) -> dict:
        from django.contrib.auth import get_user_model

        from devices.simulator import synthetic_registry
        from fablab_ops.accounts.models import Role
        from fablab_ops.booking.models import Certification, CertificationMethod
        from fablab_ops.demo.data import LABS
        from fablab_ops.machines.models import Lab, Machine, MachineType

        User = get_user_model()
        labs = {}
        for spec in LABS:
            fields = {k: v for k, v in spec.items() if k not in ("slug", "hours")}
            labs[spec["slug"]] = Lab.objects.create(slug=spec["slug"], **fields)
        registry = synthetic_registry(count)
        types = {}
        for entry in registry:
            if entry["type"] not in types:
                types[entry["type"]] = MachineType.objects.create(
                    slug=entry["type"], name_vi=entry["type"], requires_induction=True)
        self.machines = {}
        for entry in registry:
            machine = Machine.objects.create(lab=labs[entry["lab"]], machine_type=types[entry["type"]],
                                             slug=entry["machine"], name=f"{entry['type']} {entry['machine']}",
                                             has_interlock=True)
            self.machines[f"{entry['lab']}/{entry['machine']}"] = machine
        self.technicians = {}
        for slug, lab in labs.items():
            tech = User.objects.create(email=f"ktv.{slug}@field.test", full_name=f"Kỹ thuật viên {slug}",
                                       role=Role.TECHNICIAN, is_staff=True)
            lab.technicians.add(tech)
            self.technicians[slug] = tech
        families = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Võ", "Đặng", "Bùi")
        given = ("Lan", "Minh Khoa", "Thu Hà", "Quốc Bảo", "Ngọc Anh", "Đức Huy", "Thảo", "Tuấn")
        learners = [User.objects.create(email=f"hv{n:03d}@field.test", full_name=f"{families[n % 8]} "
                                        f"{given[(n // 8) % 8]} {n}") for n in range(60)]
        Certification.objects.bulk_create([
            Certification(user=user, machine_type=kind, method=CertificationMethod.MANUAL, granted_at=utcnow())
            for user in learners for kind in types.values()])
        self.learner_ids = [user.pk for user in learners]
        return registry

    # the fleet

    def start_fleet(self) -> None:
        from devices.simulator import Fleet

        registry = []
        for entry in self.registry:
            device = self.devices[f"{entry['lab']}/{entry['machine']}"]
            registry.append({**entry, "username": device["username"], "password": device["password"],
                             "interlock": True})
        import inspect

        options = {"mean_uptime_h": None} if "mean_uptime_h" in inspect.signature(Fleet).parameters else {}
        self.fleet = Fleet(registry, url=f"mqtt://127.0.0.1:{self.mqtt_port}", protocol="3.1.1",
                           rate=self.args.rate, speed=self.args.speed, seed=self.args.seed, **options)
        links = self.fleet.links
        self.links = links if isinstance(links, dict) else {f"{k.machine.lab}/{k.machine.machine}": k for k in links}
        missing = [what for what, ok in (
            ("DeviceLink.acked", all(hasattr(link, "acked") for link in self.links.values())),
            ("DeviceLink.wifi_drop", all(hasattr(link, "wifi_drop") for link in self.links.values())),
            ("DeviceLink.power_loss", all(hasattr(link, "power_loss") for link in self.links.values())),
            ("SimulatedMachine.truth", all(hasattr(link.machine, "truth") for link in self.links.values())),
        ) if not ok]
        if missing:
            raise SystemExit(f"the simulator lacks {', '.join(missing)} (SPEC.md, 'Simulator API')")
        for link in self.links.values():
            link.machine.next_crash_in = math.inf  # the bench injects its own power losses
        self.fleet_stop = threading.Event()
        self.fleet_started = utcnow()
        thread = threading.Thread(target=self.fleet.run, args=(self.fleet_stop,), name="fleet", daemon=True)
        thread.start()
        self.fleet_thread = thread
        wait_until(lambda: all(link.connected.is_set() for link in self.links.values()), 30, 0.1)

    # threads of the day

    def spawn_thread(self, target, name: str) -> None:
        thread = threading.Thread(target=self._guard, args=(target, name), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _guard(self, target, name: str) -> None:
        from django.db import connection

        try:
            target()
        except Exception as error:
            self.errors[f"{name}_crashed"] += 1
            self.journal("thread_crashed", thread=name, error=repr(error), trace=traceback.format_exc())
        finally:
            connection.close()

    def sleep_until(self, moment: datetime) -> bool:
        """False if the run is stopping."""
        while not self.stop.is_set():
            left = (moment - utcnow()).total_seconds()
            if left <= 0:
                return True
            self.stop.wait(min(left, 0.25))
        return False

    def link_watch(self) -> None:
        """Every 0.1 s: which devices are connected to the broker (for the evidence, not for the figures)."""
        down_since: dict[str, float] = {}
        while not self.stop.wait(0.1):
            now = time.time()
            for key, link in self.links.items():
                if not link.connected.is_set():
                    down_since.setdefault(key, now)
                elif key in down_since:
                    self.link_down[key].append((down_since.pop(key), now))
        for key, since in down_since.items():
            self.link_down[key].append((since, time.time()))

    def beat(self) -> None:
        from django.db import close_old_connections

        tasks = self.service.periodic_tasks()
        self.journal("beat_tasks", tasks=[name for name, _ in tasks])
        while not self.stop.wait(1.0):
            for name, task in tasks:
                try:
                    task.apply(throw=True)
                except Exception as error:
                    self.errors[f"beat_{name}"] += 1
                    self.journal("beat_error", task=name, error=repr(error)[:300])
                    close_old_connections()
            self.ingests.supervise()

    def sampler(self) -> None:
        """Every 0.5 s: rows stored vs reports the broker acknowledged to devices."""
        import psycopg

        url = self.database_url.replace("postgres://", "postgresql://", 1)
        with psycopg.connect(url, autocommit=True) as conn:
            last_count, mark, stall_from = -1, 0, None
            while not self.stop.wait(0.5):
                count = conn.execute("SELECT count(*) FROM machines_telemetrymessage").fetchone()[0]
                acked = sum(len(link.acked) for link in self.links.values())
                now = time.time()
                if count != last_count:
                    if stall_from is not None and now - stall_from >= 2:
                        self.stalls.append({"from": datetime.fromtimestamp(stall_from, UTC).isoformat(),
                                            "seconds": round(now - stall_from, 1)})
                    last_count, mark, stall_from = count, acked, None
                elif acked > mark and stall_from is None:
                    stall_from = now
                if stall_from is not None:
                    self.max_stall = max(self.max_stall, now - stall_from)
            if stall_from is not None:
                self.stalls.append({"from": datetime.fromtimestamp(stall_from, UTC).isoformat(),
                                    "seconds": round(time.time() - stall_from, 1), "open_at_end": True})

    def door(self) -> None:
        """Check-ins, switch-offs and overrides, each at its planned moment, through the service.

        Each action runs on a pool thread of its own, as four labs' doors and technicians act
        independently: one waiting on the broker never delays another lab's check-in.
        """
        actions = []
        for slot in self.plan.slots:
            if slot.checkin_at is not None:
                actions.append((slot.checkin_at, "check_in", slot))
            if slot.cut_at is not None:
                actions.append((slot.cut_at, slot.kind, slot))
            if slot.resume_at is not None:
                actions.append((slot.resume_at, "end_override", slot))
        for item in self.plan.maintenance:
            actions.append((item.start, "maintenance", item))
        actions.sort(key=lambda action: action[0])
        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="door") as pool:
            for moment, what, item in actions:
                if not self.sleep_until(moment):
                    break
                pool.submit(self.act, what, item)

    def act(self, what: str, item) -> None:
        from django.db import connection

        from fablab_ops.machines.models import Machine

        machine = Machine.objects.select_related("lab", "machine_type").get(pk=self.machines[item.key].pk)
        tech = self.technicians[machine.lab.slug]
        started = utcnow()
        try:
            if what == "check_in":
                item.action_at = started
                result = self.service.check_in(item.reservation_id, machine.lab, tech)
                if result.accepted:
                    item.checked_in_at = result.checked_in_at
                else:
                    item.refused = result.reason
                    self.errors["check_in_refused"] += 1
                self.journal("check_in", machine=item.key, reservation=item.reservation_id, start=item.start,
                             end=item.end, kind=item.kind, outcome=result.outcome, reason=result.reason,
                             seconds=round((utcnow() - started).total_seconds(), 3))
            elif what == "switch_off":
                if item.checked_in_at is None:
                    return
                item.ended_at, item.ended_by = started, "switch_off"
                self.service.switch_off(item.reservation_id, tech)
                self.journal("switch_off", machine=item.key, reservation=item.reservation_id,
                             seconds=round((utcnow() - started).total_seconds(), 3))
            elif what == "override_off":
                if item.checked_in_at is None:
                    return
                item.ended_at, item.ended_by = started, "override_off"
                item.override_id = self.service.override_off(machine, tech, "bench: switch off now")
                self.journal("override_off", machine=item.key, reservation=item.reservation_id,
                             override=item.override_id, seconds=round((utcnow() - started).total_seconds(), 3))
            elif what == "end_override":
                if item.override_id is None:
                    return
                item.resumed_at = started
                self.service.end_override(item.override_id, tech)
                self.journal("end_override", machine=item.key, reservation=item.reservation_id,
                             override=item.override_id, seconds=round((utcnow() - started).total_seconds(), 3))
            elif what == "maintenance":
                self.service.services.schedule_maintenance(machine, item.start, item.until,
                                                           reason="bench: maintenance", by=tech)
                item.given_at = started
                self.service.override_enable(machine, tech, item.until, "bench: maintenance")
                item.done = True
                self.journal("maintenance_enable", machine=item.key, until=item.until,
                             seconds=round((utcnow() - started).total_seconds(), 3))
        except Exception as error:
            self.errors[f"{what}_failed"] += 1
            if isinstance(item, Maintenance):
                item.error = repr(error)[:300]
            self.journal(f"{what}_failed", machine=item.key, error=repr(error)[:500],
                         trace=traceback.format_exc()[-1500:])
        finally:
            connection.close()

    # faults

    def in_use(self) -> list[str]:
        now = utcnow()
        keys = [slot.key for slot in self.plan.slots
                if slot.checked_in_at is not None and slot.ended_at is None and slot.start <= now < slot.end]
        return sorted(set(keys)) or sorted(self.busy_keys)

    def fault_wifi(self, machines: int = 3) -> None:
        for key in self.rng.sample(self.in_use(), min(machines, len(self.in_use()))):
            seconds = round(self.rng.uniform(2, 6), 1)
            self.links[key].wifi_drop(seconds)
            self.wifi.append({"machine": key, "at": utcnow(), "seconds": seconds})
            self.faults["wifi_drop"] += 1
            self.journal("wifi_drop", machine=key, seconds=seconds)

    def fault_power(self, machines: int = 2) -> None:
        for key in self.rng.sample(self.in_use(), min(machines, len(self.in_use()))):
            seconds = round(self.rng.uniform(2, 5), 1)
            self.links[key].power_loss(seconds)
            self.power.append({"machine": key, "at": utcnow(), "seconds": seconds})
            self.faults["power_loss"] += 1
            self.journal("power_loss", machine=key, seconds=seconds)

    def fault_broker_restart(self) -> None:
        self.journal("mosquitto_stop")
        self.broker.stop()
        time.sleep(1.0)
        self.broker.start()
        self.faults["mosquitto_restart"] += 1
        self.journal("mosquitto_started")

    def fault_ingest_kill(self) -> None:
        replica = self.rng.randrange(self.args.replicas)
        pid = self.ingests.kill(replica)
        self.faults["ingest_kill"] += 1
        self.journal("ingest_killed", replica=replica, pid=pid)
        time.sleep(1.5)
        self.ingests.start(replica)

    def fault_postgres(self, seconds: float) -> None:
        closed = self.proxy.outage()
        self.faults["postgres_outage"] += 1
        self.journal("postgres_outage_begins", connections_closed=closed, seconds=seconds)
        self.stop.wait(seconds)
        self.proxy.restore()
        self.journal("postgres_outage_ends")

    def fault_poison(self) -> None:
        now = utcnow().isoformat(timespec="milliseconds")
        n = len(self.poison_sent)
        key = self.rng.choice(sorted(self.busy_keys))
        lab, machine = key.split("/")
        state, status = f"fablab/{lab}/{machine}/state", f"fablab/{lab}/{machine}/status"

        def report(kind: str, **fields) -> bytes:
            body = {"seq": 1, "boot": f"poison-{kind}-{n}", "ts": now, "state": "idle", "power_w": 10.0, **fields}
            return json.dumps(body).encode()  # ensure_ascii: NUL and surrogates travel as JSON escapes

        kinds = {
            "poison_nul_job": [(state, report("nul-job", job="bad\u0000job"), False)],
            "poison_nul_boot": [(state, report("x", boot=f"poison\u0000boot-{n}"), False)],
            "poison_nul_status": [(status, b"online\x00", False)],
            "poison_nul_malformed": [(state, b'{"seq": 1, "boot": "poison-malformed", \x00 not json', False)],
            "poison_seq_2p64": [(state, report("seq64", seq=2**64 - 1), False)],
            "poison_ts_9999": [(state, report("ts9999", ts="9999-12-31T23:59:59.000Z"), False)],
            "poison_invalid_surrogate": [
                (state, report("surrogate", job="\ud800-job"), False),
                (state, report("surrogate-raw").replace(b'"state"', b'"job": "\xed\xa0\x80", "state"'), False)],
        }
        device = self.devices[key]
        for kind, messages in kinds.items():
            acked = publish_as(self.mqtt_port, device["username"], device["password"], messages,
                               f"{device['username']}-bench-{kind}-{n}")
            self.faults[kind] += sum(acked)
            self.poison_sent.append({"kind": kind, "machine": key, "acked": acked, "at": utcnow()})
            self.journal("poison", kind=kind, machine=key, acked=acked,
                         payloads=[payload.decode("utf-8", "backslashreplace") for _t, payload, _r in messages])
        # Two valid reports whose seq jump by 2^63, from a quiet machine (the first is stored, legitimately).
        quiet = self.quiet_keys[n % len(self.quiet_keys)]
        lab, machine = quiet.split("/")
        device = self.devices[quiet]
        jump = [(f"fablab/{lab}/{machine}/state", json.dumps(
            {"seq": seq, "boot": f"poison-jump-{n}", "ts": now, "state": "off", "power_w": 0.0}).encode(), False)
            for seq in (1, 1 + 2**63)]
        acked = publish_as(self.mqtt_port, device["username"], device["password"], jump,
                           f"{device['username']}-bench-jump-{n}")
        self.faults["poison_seq_jump_2p63"] += all(acked)
        self.poison_sent.append({"kind": "poison_seq_jump_2p63", "machine": quiet, "acked": acked, "at": utcnow()})
        self.journal("poison", kind="poison_seq_jump_2p63", machine=quiet, acked=acked)

    def fault_desired(self) -> None:
        """Old desired states again (retained and not) and the current one twice, as the service user."""
        candidates = [key for key in sorted(self.busy_keys) if len(self.observer.versions(key)) >= 2]
        if not candidates:
            self.journal("desired_fault_skipped", reason="no machine has two desired versions yet")
            return
        for fault, retain in (("desired_reordered_retained", True), ("desired_reordered", False),
                              ("desired_duplicate", False)):
            key = self.rng.choice(candidates)
            versions = self.observer.versions(key)
            entry = versions[-1] if fault == "desired_duplicate" else self.rng.choice(versions[:-1])
            lab, machine = key.split("/")
            acked = publish_as(self.mqtt_port, "service", self.passwords["service"],
                               [(f"fablab/{lab}/{machine}/desired", entry["payload"], retain)],
                               f"bench-{fault}-{secrets.token_hex(3)}")
            self.faults[fault] += sum(acked)
            self.journal(fault, machine=key, v=entry["v"], current=versions[-1]["v"], retain=retain, acked=acked)

    def faults_thread(self, schedule: list[tuple[float, str]]) -> None:
        for offset, what in schedule:
            if not self.sleep_until(self.t0 + timedelta(seconds=offset)):
                return
            try:
                if what == "wifi":
                    self.fault_wifi()
                elif what == "power":
                    self.fault_power()
                elif what == "broker":
                    self.fault_broker_restart()
                elif what == "ingest":
                    self.fault_ingest_kill()
                elif what == "postgres":
                    self.spawn_thread(lambda: self.fault_postgres(self.args.pg_outage_s), "postgres-outage")
                elif what == "poison":
                    self.fault_poison()
                elif what == "desired":
                    self.fault_desired()
            except Exception as error:
                self.errors[f"fault_{what}_failed"] += 1
                self.journal("fault_failed", fault=what, error=repr(error), trace=traceback.format_exc()[-1500:])

    def fault_schedule(self, day_s: float) -> list[tuple[float, str]]:
        """Offsets from the day's start; the quick day gets each kind once, a long day cycles through them."""
        cycle = [(0.08, "wifi"), (0.13, "power"), (0.18, "poison"), (0.24, "desired"), (0.30, "broker"),
                 (0.42, "ingest"), (0.50, "postgres"), (0.56, "wifi"), (0.66, "power"), (0.86, "desired"),
                 (0.90, "wifi")]
        if day_s <= 200:
            return [(day_s * share, what) for share, what in cycle]
        rounds = max(1, int(day_s // 150))
        length = day_s / rounds
        schedule = []
        for r in range(rounds):
            for share, what in cycle:
                if what == "postgres" and r % 2:
                    continue  # a 30 s outage every other round is plenty
                schedule.append((r * length + share * length, what))
        return sorted(schedule)

    # the run

    def run(self) -> dict:
        args = self.args
        from fablab_ops.booking.models import Reservation

        self.ingests.start_all()
        # The ingest's persistent session must exist before the devices report: what the broker gets before
        # anyone subscribed goes to no one (in production the session is months old).
        if not wait_until(lambda: len(self.broker.state_subscribers()) >= args.replicas, 90, 0.2):
            raise SystemExit("the ingest did not subscribe within 90 s")
        time.sleep(0.5)
        self.journal("ingest_subscribed", clients=sorted(self.broker.state_subscribers()))
        self.observer = Observer(self.mqtt_port, self.passwords[OBSERVER_USER])
        self.start_fleet()
        keys = sorted(self.links)
        self.quiet_keys = keys[:: max(1, len(keys) // QUIET_MACHINES)][:QUIET_MACHINES]
        self.busy_keys = [key for key in keys if key not in self.quiet_keys]
        self.t0 = utcnow() + timedelta(seconds=3)
        self.plan = plan_day(self.rng, self.busy_keys, self.t0, args.day_seconds, args.slot_seconds,
                             self.learner_ids, args.long_slot_seconds)
        for slot in self.plan.slots:
            slot.reservation_id = Reservation.objects.create(
                machine=self.machines[slot.key], user_id=slot.user_id, start=slot.start, end=slot.end,
                purpose=f"bench {slot.kind}").pk
        self.journal("plan", t0=self.t0, slots=len(self.plan.slots), maintenance=len(self.plan.maintenance),
                     kinds=Counter(slot.kind for slot in self.plan.slots), quiet=self.quiet_keys)
        self.spawn_thread(self.sampler, "sampler")
        self.spawn_thread(self.link_watch, "link-watch")
        self.spawn_thread(self.beat, "beat")
        self.spawn_thread(self.door, "door")
        self.spawn_thread(lambda: self.faults_thread(self.fault_schedule(args.day_seconds)), "faults")
        day_end = self.t0 + timedelta(seconds=args.day_seconds)
        self.sleep_until(day_end + timedelta(seconds=4))  # the last interlocks open, the last reports go out
        self.t_end = utcnow()
        self.journal("day_over")
        self.stale_offline = self.offline_alerts_of_connected()
        self.fleet_stop.set()
        self.fleet_thread.join(timeout=20)
        self.drain()
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=40)
        self.ingests.stop_all()
        self.observer.close()
        return self.figures()

    def attribution(self, entitlements: dict, keys_by_id: dict) -> dict:
        """Running periods attributed to another reservation than the one entitled to the machine when they
        began (none entitled, or a technician's maintenance: no reservation), and alerts about maintenance."""
        from fablab_ops.machines.models import AlertKind, MachineAlert, UsageSession

        wrong = []
        for machine_id, begun, reservation_id in UsageSession.objects.values_list("machine_id", "start",
                                                                                  "reservation_id"):
            key = keys_by_id.get(machine_id)
            moment = ts(begun)
            entitled = {item["holder"] for item in entitlements.get(key, [])
                        if any(a <= moment < b for a, b in item["strict"])}
            near = {item["holder"] for item in entitlements.get(key, [])  # a report's tick either side of a boundary
                    if any(a - 0.3 <= moment < b + 0.3 for a, b in item["strict"])}
            if reservation_id not in near | ({None} if not entitled else set()):
                wrong.append({"machine": key, "start": begun, "stored": reservation_id, "entitled": sorted(
                    entitled, key=str)})
        alerts = defaultdict(list)
        for machine_id, raised in MachineAlert.objects.filter(kind=AlertKind.UNAUTHORISED_USE).values_list(
                "machine_id", "raised_at"):
            alerts[keys_by_id.get(machine_id)].append(ts(raised))
        flagged = []  # a technician's maintenance run reported to the technicians as unauthorised use
        for machine_id, begun in UsageSession.objects.filter(reservation__isnull=True).values_list("machine_id",
                                                                                                  "start"):
            key = keys_by_id.get(machine_id)
            in_maintenance = any(a <= ts(begun) < b for item in entitlements.get(key, []) if item["holder"] is None
                                 for a, b in item["allowed"])
            if in_maintenance and any(0 <= raised - ts(begun) <= 120 for raised in alerts.get(key, [])):
                flagged.append({"machine": key, "run_from": begun})
        return {"count": len(wrong), "first": wrong[:5], "maintenance_runs_alerted_as_unauthorised": flagged[:8]}

    def overruns(self) -> int:
        """Reservations whose job was still running when their time ran out (the interlock cut it)."""
        count = 0
        for slot in self.plan.slots:
            if slot.checked_in_at is None or slot.ended_at is not None:
                continue
            running = [(ts(a), ts(b) if b else math.inf) for a, b in self.links[slot.key].machine.truth.running]
            count += any(a <= ts(slot.end) - 0.3 < b for a, b in running)
        return count

    def offline_alerts_of_connected(self) -> list[dict]:
        """OFFLINE alerts still open for devices that are connected and reporting (an `online` clears them)."""
        from fablab_ops.machines.models import AlertKind, MachineAlert

        time.sleep(3)  # what the devices said last is stored by now, unless the ingest is stuck
        connected = {self.machines[key].pk: key for key, link in self.links.items() if link.connected.is_set()}
        return [{"machine": connected[machine_id], "raised_at": raised_at}
                for machine_id, raised_at in MachineAlert.objects.filter(
                    kind=AlertKind.OFFLINE, resolved_at__isnull=True, machine_id__in=connected)
                .values_list("machine_id", "raised_at")]

    def stored_keys(self) -> dict[int, set[tuple[str, int]]]:
        from fablab_ops.machines.models import TelemetryMessage

        stored = defaultdict(set)
        for machine_id, boot, seq in TelemetryMessage.objects.values_list("machine_id", "boot", "seq").iterator():
            stored[machine_id].add((boot, seq))
        return stored

    def missing(self) -> dict[str, list[tuple[str, int]]]:
        stored = self.stored_keys()
        out = {}
        for key, link in self.links.items():
            acked = {(str(boot), int(seq)) for boot, seq in list(link.acked)}
            lost = acked - stored.get(self.machines[key].pk, set())
            if lost:
                out[key] = sorted(lost)
        return out

    def drain(self) -> None:
        """Let the ingest store what the broker holds for it: until nothing is missing, or 60 s."""
        deadline = time.monotonic() + self.args.drain_s
        while time.monotonic() < deadline:
            self.ingests.supervise()
            if not self.missing():
                break
            time.sleep(1)
        self.journal("drained", missing=sum(len(v) for v in self.missing().values()))

    # figures

    def figures(self) -> dict:
        from django.db import connection
        from django.db.models import Sum

        from fablab_ops.machines.models import (
            AlertKind,
            MachineAlert,
            MachineUsageDay,
            QuarantinedMessage,
            TelemetryMessage,
        )

        keys_by_id = {machine.pk: key for key, machine in self.machines.items()}

        start, end = ts(self.fleet_started), ts(self.t_end) + 10
        allowance = self.args.allowance_s

        # hours
        stored_s = dict(MachineUsageDay.objects.values("machine_id").annotate(s=Sum("running_seconds"))
                        .values_list("machine_id", "s"))
        hours, small = {}, {}
        for key, link in self.links.items():
            truth = link.machine.truth
            true_s = measure([(max(ts(a), start), min(ts(b) if b else end, end)) for a, b, *_ in truth.running])
            got = float(stored_s.get(self.machines[key].pk) or 0.0)
            row = {"true_s": round(true_s, 1), "stored_s": round(got, 1)}
            if truth.powered_off:
                row["power_losses"] = len(truth.powered_off)
                row["unreported_before_power_loss_s"] = round(self.unreported(key, truth), 2)
            if true_s >= 60:
                row["error_pct"] = round(abs(got - true_s) / true_s * 100, 3)
                hours[key] = row
            else:
                small[key] = row
        worst = max(hours.items(), key=lambda item: item[1]["error_pct"], default=(None, {"error_pct": None}))

        # lost and duplicates
        missing = self.missing()
        lost = sum(len(v) for v in missing.values())
        acked_total = sum(len(link.acked) for link in self.links.values())
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) - count(DISTINCT (machine_id, boot, seq)) FROM machines_telemetrymessage")
            duplicate_keys = cursor.fetchone()[0]
            cursor.execute("""
                SELECT a.machine_id, a.id, a.start, a."end", b.id, b.start, b."end"
                FROM machines_usagesession a JOIN machines_usagesession b
                  ON a.machine_id = b.machine_id AND a.id < b.id
                 AND a.start < coalesce(b."end", 'infinity') AND b.start < coalesce(a."end", 'infinity')""")
            overlaps = cursor.fetchall()

        # the interlock against who was entitled
        wrongly_enabled, wrongly_disabled, evidence_enabled, evidence_disabled = 0.0, 0.0, [], []
        offline_enabled = offline_disabled = 0.0  # the part of each during which the device had no broker
        unreachable_s = 0.0  # a holder's interlock open while their device could not be reached (not counted)
        entitlements, effects = self.entitlements(end)
        closed_by, off_by = {}, {}
        for key, link in self.links.items():
            truth = link.machine.truth
            closed = defaultdict(list)
            for a, b, reservation in truth.closed:
                closed[reservation].append((max(ts(a), start), min(ts(b) if b else end, end)))
            closed_by[key] = closed
            off_by[key] = off = [(ts(a), (ts(b) if b else end) + allowance) for a, b in truth.powered_off]
            mine = entitlements.get(key, [])
            allowed = defaultdict(list)
            for item in mine:
                allowed[item["holder"]].extend(item["allowed"])
            for holder, intervals in closed.items():
                wrong = subtract(intervals, allowed.get(holder, []))
                seconds = measure(wrong)
                if seconds > 0:
                    wrongly_enabled += seconds
                    offline_enabled += measure(intersect(wrong, self.link_down.get(key, [])))
                    evidence_enabled.append({"machine": key, "holder": holder, "seconds": round(seconds, 3),
                                             "intervals": [[iso(a), round(b - a, 3)] for a, b in wrong[:4]],
                                             "desired_seen": self.desired_for(key, holder),
                                             "desired_after": self.desired_after(key, wrong[0][0] - allowance),
                                             "device_offline_s": self.offline(key, wrong, allowance)})
            unreachable = [(a, b + allowance) for a, b in self.link_down.get(key, [])]
            for item in mine:
                missing_closed = subtract(subtract(item["need"], closed.get(item["holder"], [])), off)
                unreachable_s += measure(intersect(missing_closed, unreachable))
                missing_closed = subtract(missing_closed, unreachable)
                seconds = measure(missing_closed)
                if seconds > 0:
                    wrongly_disabled += seconds
                    offline_disabled += measure(intersect(missing_closed, self.link_down.get(key, [])))
                    evidence_disabled.append({"machine": key, "holder": item["holder"], "kind": item["kind"],
                                              "seconds": round(seconds, 3),
                                              "intervals": [[iso(a), round(b - a, 3)] for a, b in missing_closed[:4]],
                                              "desired_seen": self.desired_for(key, item["holder"]),
                                              "device_offline_s": self.offline(key, missing_closed, allowance)})
        latencies, late_effects = [], 0
        for key, due, deadline, effect, holder, kind in effects:
            if any(a <= due <= b for a, b in off_by[key]):
                continue
            latency = self.latency(due, effect, merged(closed_by[key].get(holder, [])))
            if latency is not None:
                latencies.append((latency, key, kind, holder, iso(due)))
                late_effects += due + latency > deadline
        latencies.sort(reverse=True)

        quarantine = Counter(QuarantinedMessage.objects.values_list("reason", flat=True))
        poison_stored = (TelemetryMessage.objects.filter(boot__startswith="poison")
                         .exclude(boot__startswith="poison-jump", seq=1).count())
        self.dump_truth(entitlements)
        figures = {
            "hours_error_pct": worst[1]["error_pct"],
            "hours_worst_machine": worst[0],
            "lost": lost,
            "duplicates": duplicate_keys + len(overlaps),
            "wrongly_enabled_s": round(wrongly_enabled, 2),
            "wrongly_disabled_s": round(wrongly_disabled, 2),
            "max_stall_s": round(self.max_stall, 1),
            # diagnostics: how much of the wrong time the device spent without a broker connection
            "wrongly_enabled_s_device_offline": round(offline_enabled, 2),
            "wrongly_disabled_s_device_offline": round(offline_disabled, 2),
            "disabled_while_unreachable_s": round(unreachable_s, 2),
            "actuation_latency_max_s": round(latencies[0][0], 2) if latencies else None,
            "actuation_allowance_s": allowance,
            "faults_injected": dict(sorted(self.faults.items())),
        }
        figures["targets_met"] = {
            "hours_error_pct": figures["hours_error_pct"] is not None
            and figures["hours_error_pct"] <= TARGETS["hours_error_pct"],
            "lost": lost == TARGETS["lost"],
            "duplicates": figures["duplicates"] == TARGETS["duplicates"],
            "wrongly_enabled_s": figures["wrongly_enabled_s"] <= TARGETS["wrongly_enabled_s"],
            "wrongly_disabled_s": figures["wrongly_disabled_s"] <= TARGETS["wrongly_disabled_s"],
            "max_stall_s": figures["max_stall_s"] <= TARGETS["max_stall_s"],
        }
        figures["all_targets_met"] = all(figures["targets_met"].values())
        figures.update({
            "machines": len(self.links),
            "day_s": self.args.day_seconds,
            "reservations": dict(Counter(slot.kind for slot in self.plan.slots)),
            "checked_in": sum(1 for slot in self.plan.slots if slot.checked_in_at is not None),
            "overruns_cut": self.overruns(),
            "maintenance_overrides": sum(1 for item in self.plan.maintenance if item.done),
            "reports_acked": acked_total,
            "telemetry_rows": TelemetryMessage.objects.count(),
            "quarantined": dict(sorted(quarantine.items())),
            # what the ingest must refuse: every poison message the broker took, but the valid first of a jump pair
            "poison_to_refuse": sum(sum(sent["acked"][1:] if sent["kind"] == "poison_seq_jump_2p63" else sent["acked"])
                                    for sent in self.poison_sent),
            "poison_stored": poison_stored,
            "alerts_raised": dict(Counter(MachineAlert.objects.values_list("kind", flat=True))),
            "unauthorised_use_alerts": [
                {"machine": keys_by_id.get(machine_id), "raised_at": raised_at, "detail": detail}
                for machine_id, raised_at, detail in MachineAlert.objects.filter(kind=AlertKind.UNAUTHORISED_USE)
                .order_by("raised_at").values_list("machine_id", "raised_at", "detail")[:8]],
            "offline_alerts_open_while_connected": self.stale_offline,
            "usage_sessions_misattributed": self.attribution(entitlements, keys_by_id),
            "ingest_exits": self.ingests.exits,
            "ingest_back_after_broker_restart_s": self.broker.reconnects_after_restart(),
            "stalls": sorted(self.stalls, key=lambda s: -s["seconds"])[:5],
            "lost_by_machine": {key: {"count": len(v), "first": v[:3]} for key, v in sorted(missing.items())},
            "duplicate_keys": duplicate_keys,
            "overlapping_sessions": [[str(x) for x in row] for row in overlaps[:5]],
            "hours_by_machine": hours,
            "hours_excluded_under_60s": small,
            "wrongly_enabled": sorted(evidence_enabled, key=lambda e: -e["seconds"])[:8],
            "wrongly_disabled": sorted(evidence_disabled, key=lambda e: -e["seconds"])[:8],
            "slowest_actuations": [{"s": round(s, 2), "machine": k, "kind": kind, "holder": h, "due": due}
                                   for s, k, kind, h, due in latencies[:5]],
            "actuations_past_deadline": late_effects,
            "errors": dict(self.errors),
            "service_missing": self.service.missing,
            "artifacts": str(self.folder),
        })
        return figures

    def entitlements(self, end: float) -> tuple[dict[str, list[dict]], list[tuple]]:
        """Who was entitled to each machine when, from the bench's record of what the service was asked.

        Per machine, per holder (reservation id; None for a technician's maintenance): `allowed`, when the
        interlock may be closed for them, and `need`, when it must be. And the effects the actions called for:
        (machine, when due, deadline, "close"/"open", holder, action), for the actuation latency.
        """
        allowance = self.args.allowance_s
        out, effects, cuts = defaultdict(list), [], defaultdict(list)
        for slot in self.plan.slots:  # "switch off now" overrides, in force until the technician ends them
            if slot.override_id is not None:
                cuts[slot.key].append((ts(slot.ended_at), ts(slot.resumed_at) if slot.resumed_at else end))
        for slot in self.plan.slots:
            if slot.checked_in_at is None:
                continue
            start, stop, action = ts(slot.start), ts(slot.end), ts(slot.action_at)
            frm = max(start, ts(slot.checked_in_at))
            to, allowed_to = stop, stop + TICK_S
            if slot.ended_by == "switch_off" and ts(slot.ended_at) < stop:
                to, allowed_to = max(ts(slot.ended_at), frm), ts(slot.ended_at) + allowance
                effects.append((slot.key, ts(slot.ended_at), allowed_to, "open", slot.reservation_id, "switch_off"))
            need_from = max(start + TICK_S, action + allowance)
            effects.append((slot.key, max(start, action), need_from, "close", slot.reservation_id,
                            "check_in_late" if action > start else "check_in_early"))
            if slot.override_id is not None:
                cut = ts(slot.ended_at)
                effects.append((slot.key, cut, cut + allowance, "open", slot.reservation_id, "override_off"))
                if slot.resumed_at is not None and ts(slot.resumed_at) < to:
                    resumed = ts(slot.resumed_at)
                    effects.append((slot.key, resumed, resumed + allowance, "close", slot.reservation_id,
                                    "override_end"))
            machine_cuts = cuts.get(slot.key, [])
            out[slot.key].append({
                "holder": slot.reservation_id, "kind": slot.kind,
                "strict": [(frm, to)],  # as the service sees it: the reservation covers it, whatever the interlock
                "allowed": subtract([(frm - TICK_S, allowed_to)], [(a + allowance, b) for a, b in machine_cuts]),
                "need": subtract([(need_from, to)], [(a, b + allowance) for a, b in machine_cuts])})
        for item in self.plan.maintenance:
            if not item.done:
                continue
            given, until = ts(item.given_at), ts(item.until)
            effects.append((item.key, given, given + allowance, "close", None, "maintenance"))
            out[item.key].append({"holder": None, "kind": "maintenance", "strict": [(given, until)],
                                  "allowed": [(given - TICK_S, until + TICK_S)],
                                  "need": [(given + allowance, until)]})
        return out, effects

    def dump_truth(self, entitlements) -> None:
        """The ground truth and the bench's record, for whoever checks a figure."""
        def when(value):
            return value.isoformat(timespec="milliseconds") if isinstance(value, datetime) else value

        data = {key: {"running": [[when(x) for x in row] for row in link.machine.truth.running],
                      "closed": [[when(x) for x in row] for row in link.machine.truth.closed],
                      "powered_off": [[when(x) for x in row] for row in link.machine.truth.powered_off],
                      "entitled": [{**item, "allowed": [[iso(a), iso(b)] for a, b in item["allowed"]],
                                    "strict": [[iso(a), iso(b)] for a, b in item["strict"]],
                                    "need": [[iso(a), iso(b)] for a, b in item["need"]]}
                                   for item in entitlements.get(key, [])],
                      "desired": [[when(m["at"]), m["v"], m["retained"], m["body"]]
                                  for m in self.observer.desired.get(key, [])]}
                for key, link in self.links.items()}
        (self.folder / "truth.json").write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str))

    def unreported(self, key: str, truth) -> float:
        """Running time between a machine's last stored report and each of its power losses: no report ever
        carried it (the device's counters died with the power), so no service could know it."""
        from django.db.models import Max

        from fablab_ops.machines.models import TelemetryMessage

        total = 0.0
        for lost_at, _back in truth.powered_off:
            last = (TelemetryMessage.objects.filter(machine_id=self.machines[key].pk, at__lte=lost_at)
                    .exclude(boot__startswith="poison").aggregate(at=Max("at"))["at"])
            if last is not None:
                total += measure(intersect([(ts(a), ts(b) if b else ts(lost_at)) for a, b, *_ in truth.running],
                                           [(ts(last), ts(lost_at))]))
        return total

    def offline(self, key: str, intervals, allowance: float) -> float:
        """How long the device was not connected to the broker in these intervals and the allowance before."""
        return round(measure(intersect([(a - allowance, b) for a, b in intervals], self.link_down.get(key, []))), 2)

    def desired_after(self, key: str, moment: float) -> list:
        """The first desired states the broker carried for a machine after a moment: when, v, current, next."""
        with self.observer.lock:
            messages = [m for m in self.observer.desired.get(key, []) if ts(m["at"]) >= moment]
        out = []
        for message in messages[:3]:
            body = message["body"] if isinstance(message["body"], dict) else {}
            following = body.get("next") if isinstance(body.get("next"), dict) else {}
            out.append([message["at"].isoformat(timespec="milliseconds"), message["v"], body.get("reservation"),
                        following.get("reservation")])
        return out

    def desired_for(self, key: str, holder) -> list:
        """The desired states the broker carried for this machine that name the holder: when, v, where."""
        seen = []
        with self.observer.lock:
            messages = list(self.observer.desired.get(key, []))
        for message in messages:
            body = message["body"] if isinstance(message["body"], dict) else {}
            following = body.get("next") if isinstance(body.get("next"), dict) else {}
            if holder in (body.get("reservation"), following.get("reservation")) and (
                    holder is not None or body.get("holder")):
                seen.append([message["at"].isoformat(timespec="milliseconds"), message["v"],
                             "current" if body.get("reservation") == holder else "next"])
        return seen[:4]

    @staticmethod
    def latency(due: float, effect: str, closed: list[tuple[float, float]]) -> float | None:
        """Seconds from when an effect was due to the interlock really moving for that holder."""
        if effect == "open":
            holding = [b for a, b in closed if a <= due < b]
            return holding[0] - due if holding else 0.0
        after = [a for a, b in closed if b > due]
        return max(after[0] - due, 0.0) if after else None


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short day (about 2 minutes of wall time in all)")
    parser.add_argument("--machines", type=int, default=32)
    parser.add_argument("--replicas", type=int, default=1, help="ingest replicas (partitioned by machine)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--day-seconds", type=float, help="length of the compressed day (default 420, quick 100)")
    parser.add_argument("--rate", type=float, default=0.5, help="state reports per second per machine")
    parser.add_argument("--speed", type=float, default=60.0, help="the simulator's time acceleration of jobs")
    parser.add_argument("--allowance-s", type=float, default=2.0,
                        help="actuation allowance after a check-in, switch-off or override")
    parser.add_argument("--pg-outage-s", type=float, default=30.0)
    parser.add_argument("--drain-s", type=float, help="most seconds to wait for the ingest at the end (60, quick 30)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs, events) even if it passed")
    args = parser.parse_args()
    if args.machines < 30:
        parser.error("a field trial needs at least 30 machines")
    args.day_seconds = args.day_seconds or (100.0 if args.quick else 420.0)
    args.slot_seconds = (12.0, 24.0) if args.quick else (20.0, 45.0)
    args.long_slot_seconds = 61.0
    args.drain_s = args.drain_s or (30.0 if args.quick else 60.0)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("devices.simulator").setLevel(logging.ERROR)

    folder = Path(tempfile.mkdtemp(prefix="fablab-field-"))
    trial = Trial(args, folder)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell may start us with it ignored
        signal.signal(signum, interrupted)
    try:
        trial.setup()
        figures = trial.run()
    except KeyboardInterrupt:
        trial.stop.set()
        print(json.dumps({"interrupted": True, "artifacts": str(folder)}))
        raise SystemExit(130) from None
    finally:
        trial.stop.set()
        with contextlib.suppress(Exception):
            trial.fleet_stop.set()
        with contextlib.suppress(Exception):
            trial.ingests.stop_all()
        with contextlib.suppress(Exception):
            trial.broker.stop()
        with contextlib.suppress(Exception):
            trial.proxy.close()
        kill_children()
        trial.journal.close()
    if figures["all_targets_met"] and not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
        figures["artifacts"] = None
    print(json.dumps(figures, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
