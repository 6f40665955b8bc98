"""Real brokers for the tests: a private Mosquitto on a free port, publishers and waiting helpers."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from django.utils import timezone

from fablab_ops.machines.consumer import Ingest, IngestFailed
from tests.database_support import database_url

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
ROOT = Path(__file__).resolve().parent.parent


def ingest_process(mqtt_url: str, client_id: str, *arguments: str, database: str | None = None) -> subprocess.Popen:
    """`manage.py mqtt_ingest` as its own process, on the test database (or `database`, a URL to it), with
    `arguments` after its client id."""
    env = {**os.environ, "DATABASE_URL": database or database_url(), "MQTT_URL": mqtt_url}
    return subprocess.Popen([sys.executable, "manage.py", "mqtt_ingest", "--client-id", client_id, *arguments],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateBroker:
    """A Mosquitto of the test's own, with persistence, so it can be killed and restarted."""

    def __init__(self, folder: Path, *, extra: str = ""):
        self.folder = folder
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            f"user root\nlistener {self.port} 127.0.0.1\npersistence true\npersistence_location {folder}/\n"
            f"autosave_interval 1\nsys_interval 1\nmax_queued_messages 0\nmax_inflight_messages 0\n"
            f"{extra or 'allow_anonymous true'}\n"
        )
        self.process = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self):
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(self.port), 10, "private mosquitto did not start")
        return self

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition, seconds: float, message: str = "condition not met"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(message)


class Publisher:
    """A device-like QoS 1 publisher with a persistent session, resending what the broker never acked."""

    def __init__(self, port: int, lab: str, machine: str, *, username=None, password=None):
        self.topic = f"fablab/{lab}/{machine}/state"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(100)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(0.2, 2)
        # Messages published while the broker is away are queued by paho and sent on reconnect;
        # they count as delivered only when the broker's PUBACK arrives.
        self.pending: set[int] = set()
        self.early: set[int] = set()  # PUBACKs that beat our own bookkeeping
        self.lock = threading.Lock()
        self.client.on_publish = self._acknowledged
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()


    def _acknowledged(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            if mid in self.pending:
                self.pending.discard(mid)
            else:
                self.early.add(mid)

    def publish_stream(self, count: int, *, rate: float = 500.0, boot: str = "boot-1", on_progress=None):
        for seq in range(1, count + 1):
            payload = {"seq": seq, "boot": boot, "ts": timezone.now().isoformat(), "state": "idle", "power_w": 9.5}
            # Never hold our lock while paho works: its network thread calls back into us.
            info = self.client.publish(self.topic, json.dumps(payload), qos=1)
            with self.lock:
                if info.mid in self.early:
                    self.early.discard(info.mid)
                else:
                    self.pending.add(info.mid)
            if on_progress:
                on_progress(seq)
            time.sleep(1 / rate)

    def wait_acknowledged(self, seconds: float = 60):
        wait_for(lambda: not self.pending, seconds,
                 "the broker did not acknowledge every message")

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def publish_acknowledged(port: int, lab: str, machine: str, count: int, *, rate: float) -> None:
    """A device publishes `count` state reports (seq 1..count) at `rate` a second, and the broker acknowledges
    every one before this returns."""
    publisher = Publisher(port, lab, machine)
    try:
        publisher.publish_stream(count, rate=rate)
        publisher.wait_acknowledged()
    finally:
        publisher.close()


def run_in_thread(ingest: Ingest) -> tuple[threading.Thread, list]:
    """Run `ingest` in a thread of the test; the list gets "stopped", or the `IngestFailed` it raised."""
    outcome = []

    def target():
        try:
            ingest.run(install_signals=False)
            outcome.append("stopped")
        except IngestFailed as failure:
            outcome.append(failure)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def subscriptions_held(port: int) -> int:
    """How many subscriptions the broker on `port` holds, as it counts them ($SYS); 0 when it does not answer."""
    result = subprocess.run(["mosquitto_sub", "-p", str(port), "-t", "$SYS/broker/subscriptions/count", "-C", "1",
                             "-W", "3"], capture_output=True, text=True)
    return int(result.stdout.strip()) if result.stdout.strip().isdigit() else 0
