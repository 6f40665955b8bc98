"""Simulated Fablab machines speaking the fablab-ops MQTT protocol (docs/mqtt.md).

    python -m devices.simulator --machines 8 --rate 0.5 [--url mqtt://host:1883] [--registry devices.json]

Each machine has its own MQTT connection, credentials and last will; it idles,
runs jobs with a realistic power draw, sometimes faults or restarts (a new `boot`,
`seq` from 1 again), sends a heartbeat, and obeys `enable`/`disable` commands
when it has an interlock, answering each with an ack. `SimulatedMachine` is the
behaviour alone (no network), so it can be tested and reused by benchmarks.
"""

import argparse
import json
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlparse
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")
LABS = ["biic", "eiu", "vsvc", "tdmu-bio"]
# (idle watts, running watts low, high) by machine type
POWER = {
    "laser-cutter": (20, 1000, 1500), "printer-3d": (8, 120, 250), "cnc-router": (30, 1500, 2400),
    "vinyl-cutter": (5, 40, 90), "electronics-bench": (5, 30, 200), "pcb-mill": (10, 150, 300),
    "bio-cabinet": (15, 250, 400), "bioprinter": (20, 200, 350),
}
MAX_HEARTBEAT_S = 30.0


@dataclass
class SimulatedMachine:
    lab: str
    machine: str
    kind: str = "printer-3d"
    interlock: bool = False
    rng: random.Random = field(default_factory=random.Random)
    speed: float = 1.0
    boot: str = ""
    seq: int = 0
    state: str = "idle"
    job: str = ""
    job_ends: float = 0.0
    enabled_until: datetime | None = None
    error_until: float = 0.0

    def __post_init__(self):
        self.boot = self.boot or uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]

    @property
    def prefix(self) -> str:
        return f"fablab/{self.lab}/{self.machine}"

    def allowed_to_run(self, now: datetime) -> bool:
        return not self.interlock or (self.enabled_until is not None and now < self.enabled_until)

    def power(self) -> float:
        idle, low, high = POWER.get(self.kind, (10, 100, 300))
        if self.state == "running":
            return round(self.rng.uniform(low, high), 1)
        if self.state == "off":
            return 0.0
        return round(idle * self.rng.uniform(0.8, 1.2), 1)

    def report(self, now: datetime) -> dict:
        """The next state message; every message since boot has the next seq."""
        self.seq += 1
        message = {"seq": self.seq, "boot": self.boot, "ts": now.isoformat(timespec="milliseconds"),
                   "state": self.state, "power_w": self.power()}
        if self.job:
            message["job"] = self.job
        return message

    def restart(self) -> None:
        self.boot = uuid.UUID(int=self.rng.getrandbits(128)).hex[:12]
        self.seq = 0
        self.state, self.job = "idle", ""

    def step(self, now: datetime, clock: float) -> bool:
        """Advance the behaviour; True when the state changed (a message is due at once)."""
        before = self.state
        if self.state == "error":
            if clock >= self.error_until:
                self.state = "idle"
        elif self.state == "running":
            if clock >= self.job_ends or not self.allowed_to_run(now):
                self.state, self.job = "idle", ""
            elif self.rng.random() < 0.0005:
                self.state, self.job, self.error_until = "error", "", clock + self.rng.uniform(20, 120) / self.speed
        elif self.allowed_to_run(now) and self.rng.random() < 0.02:
            self.state = "running"
            self.job = f"job-{self.rng.randrange(10_000):04d}"
            self.job_ends = clock + self.rng.uniform(300, 2400) / self.speed
        return self.state != before

    def handle_command(self, payload: bytes, now: datetime) -> dict:
        """Obey an enable/disable command and return the ack to publish."""
        try:
            command = json.loads(payload)
        except ValueError as error:
            return {"id": None, "ok": False, "reason": f"malformed command: {error}"}
        if not isinstance(command, dict):
            return {"id": None, "ok": False, "reason": "malformed command: not an object"}
        command_id, action = command.get("id"), command.get("action")
        if action == "enable":
            try:
                until = datetime.fromisoformat(str(command.get("until")))
            except ValueError:
                until = None
            if until is None or until.tzinfo is None:
                return {"id": command_id, "ok": False, "reason": "enable needs an RFC 3339 `until` with a zone"}
            self.enabled_until = until
        elif action == "disable":
            self.enabled_until = None
            if self.interlock and self.state == "running":
                self.state, self.job = "idle", ""
        else:
            return {"id": command_id, "ok": False, "reason": f"unknown action {action!r}"}
        return {"id": command_id, "ok": True}


class MachineLink:
    """One machine's MQTT connection: retained online status, last will, commands in, acks out."""

    def __init__(self, device: SimulatedMachine, *, host: str, port: int, username: str | None,
                 password: str | None, protocol: int):
        self.device = device
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"device-{device.lab}-{device.machine}-{uuid.uuid4().hex[:6]}",
                                  protocol=protocol)
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(f"{device.prefix}/status", "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(host, port, keepalive=30)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        client.publish(f"{self.device.prefix}/status", "online", qos=1, retain=True)
        client.subscribe(f"{self.device.prefix}/command", qos=1)

    def _on_message(self, client, userdata, message):
        if message.topic != f"{self.device.prefix}/command":
            return  # some small brokers also hand over retained messages of other topics
        with self.lock:
            ack = self.device.handle_command(message.payload, datetime.now(LOCAL))
        client.publish(f"{self.device.prefix}/ack", json.dumps(ack), qos=1)

    def publish_state(self, now: datetime) -> None:
        with self.lock:
            message = self.device.report(now)
        self.client.publish(f"{self.device.prefix}/state", json.dumps(message), qos=1)

    def start(self):
        self.client.loop_start()

    def stop(self):
        # A clean goodbye: the will only fires on an unexpected disconnect.
        self.client.publish(f"{self.device.prefix}/status", "offline", qos=1, retain=True).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


def load_registry(path: str | None, count: int, rng: random.Random) -> list[dict]:
    if path:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)[:count]
    kinds = list(POWER)
    return [{"lab": LABS[i % len(LABS)], "machine": f"sim-{i + 1:02d}", "type": kinds[i % len(kinds)],
             "username": None, "password": None, "interlock": rng.random() < 0.3} for i in range(count)]


def run(args) -> None:
    rng = random.Random(args.seed)
    url = urlparse(args.url)
    protocol = mqtt.MQTTv5 if args.protocol == "5" else mqtt.MQTTv311
    links = []
    for entry in load_registry(args.registry, args.machines, rng):
        device = SimulatedMachine(entry["lab"], entry["machine"], entry.get("type", "printer-3d"),
                                  bool(entry.get("interlock")), random.Random(rng.random()), args.speed)
        username = entry.get("username") or (unquote(url.username) if url.username else None)
        password = entry.get("password") or (unquote(url.password) if url.password else None)
        links.append(MachineLink(device, host=url.hostname or "127.0.0.1", port=url.port or 1883,
                                 username=username, password=password, protocol=protocol))
    for link in links:
        link.start()
        time.sleep(0.05)  # a burst of simultaneous connects trips small embedded brokers
    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
    interval = min(1.0 / args.rate, MAX_HEARTBEAT_S) if args.rate > 0 else MAX_HEARTBEAT_S
    next_report = {id(link): time.monotonic() + rng.uniform(0, interval) for link in links}
    deadline = time.monotonic() + args.duration if args.duration else None
    tick = min(0.1, interval / 4)
    try:
        while not stopping.is_set() and (deadline is None or time.monotonic() < deadline):
            clock = time.monotonic()
            now = datetime.now(LOCAL)
            for link in links:
                with link.lock:
                    changed = link.device.step(now, clock)
                    if rng.random() < 0.00002 * tick:
                        link.device.restart()
                if changed or clock >= next_report[id(link)]:
                    link.publish_state(now)
                    next_report[id(link)] = clock + interval
            stopping.wait(tick)
    finally:
        for link in links:
            link.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=8, help="how many machines (the first N of the registry)")
    parser.add_argument("--rate", type=float, default=0.2, help="state messages per second per machine")
    parser.add_argument("--url", default=os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"))
    parser.add_argument("--registry", help="JSON list of {lab, machine, type, username, password, interlock}")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--protocol", choices=["3.1.1", "5"], default="3.1.1")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--speed", type=float, default=1.0, help="time acceleration of jobs and faults")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()

