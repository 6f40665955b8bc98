"""Telemetry ingest throughput into PostgreSQL against a bare MQTT subscriber, in the same run.

Many simulated devices publish a QoS 1 stream to a Mosquitto started for the run
(unbounded queues, so a slower consumer makes the broker queue, never drop).
Every consumer holds a persistent session and drains its own copy of the same backlog:
  reference: a bare paho subscriber that only counts messages, run just before and just after
             the project (their mean is the reference: the machine's speed drifts);
  project:   `manage.py mqtt_ingest` storing them in PostgreSQL, acknowledging after commit, timed
             from the moment its process starts (start-up, connection, subscription, first
             batch included) until the last report is stored.
A second phase drains the same backlog with two ingest replicas (`--replicas 2 --replica K`),
each holding the persistent session of its share of the machines (how the ingest scales out).
Last line: {"ratio": one ingest's rate / bare rate, "ratio_two_ingest_replicas", "lost", "duplicates", ...}.

    python bench/ingest.py [--quick] [--messages 60000] [--devices 50] [--batch-size N]
"""

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import free_port  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_ingest"
LAB = "benchlab"


def start_broker(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = folder / "mosquitto.conf"
    config.write_text(f"user root\nlistener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                      "max_queued_messages 0\nmax_inflight_messages 5000\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return broker, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


def replica_of(machine: str, replicas: int) -> int:
    """As `fablab_ops.machines.consumer.replica_of`: which replica stores a machine's reports."""
    return zlib.crc32(f"{LAB}/{machine}".encode()) % replicas


def register_session(port: int, client_id: str, topics: list[str] | None = None) -> None:
    """Create a persistent QoS 1 subscription, then leave: the broker queues for it.

    With `topics` (MQTT 5, explicit machine topics) the session is one replica's, holding
    its share of the backlog, as each ingest replica's session does in production.
    """
    done = threading.Event()
    if topics:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        expiry = Properties(PacketTypes.CONNECT)
        expiry.SessionExpiryInterval = 3600
        connect = {"clean_start": False, "properties": expiry}
    else:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        connect = {}
        topics = [f"fablab/{LAB}/+/state"]
    client.on_subscribe = lambda *args: done.set()
    client.connect("127.0.0.1", port, **connect)
    client.subscribe([(topic, 1) for topic in topics])
    client.loop_start()
    done.wait(10)
    client.loop_stop()
    client.disconnect()


def publish(port: int, devices: int, messages: int) -> None:
    """Many devices, each its own connection and seq, publishing at QoS 1 until the broker has everything."""
    per_device = messages // devices

    def device(index: int):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-device-{index}")
        client.max_inflight_messages_set(100)
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = []
        for seq in range(1, per_device + 1):
            payload = json.dumps({"seq": seq, "boot": "b1", "ts": time.time_ns() // 1_000_000,
                                  "state": "running" if seq % 400 < 200 else "idle", "power_w": 120.0 + seq % 7})
            infos.append(client.publish(f"fablab/{LAB}/m{index:03d}/state", payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        client.loop_stop()
        client.disconnect()

    threads = [threading.Thread(target=device, args=(i,)) for i in range(devices)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def bare_subscriber(port: int, expected: int, client_id: str) -> float:
    """Messages per second a subscriber that only counts reaches on the backlog."""
    count, first, last, finished = 0, None, None, threading.Event()

    def on_message(client, userdata, message):
        nonlocal count, first, last
        count += 1
        first = first or time.perf_counter()
        last = time.perf_counter()
        if count >= expected:
            finished.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    finished.wait(300)
    client.loop_stop()
    client.disconnect()
    return (count - 1) / (last - first) if count > 1 else 0.0


def identity_now(cursor) -> int:
    """The last id handed out to the telemetry table (a TRUNCATE empties it, the ids go on)."""
    cursor.execute("SELECT coalesce(pg_sequence_last_value("
                   "pg_get_serial_sequence('machines_telemetrymessage', 'id')::regclass), 0)")
    return cursor.fetchone()[0]


def inserted_so_far(cursor, base: int) -> int:
    cursor.execute("SELECT coalesce(max(id), 0) FROM machines_telemetrymessage")
    return max(cursor.fetchone()[0] - base, 0)


def stored_rows(cursor) -> tuple[int, int]:
    cursor.execute("SELECT count(*), count(DISTINCT (machine_id, boot, seq)) FROM machines_telemetrymessage")
    return cursor.fetchone()


def run_ingest(port: int, expected: int, env: dict, processes: int = 1,
               batch_size: int | None = None) -> tuple[float, int, int, float]:
    """Start the ingest (one process, or `processes` replicas) and time it into the database.

    Timed from the moment the processes are started until the last report is stored; also returns the
    seconds until the first report was stored (start-up, connection, subscription, first batch).
    With its production settings unless `batch_size` is given.
    """
    import psycopg

    batch_size = ["--batch-size", str(batch_size)] if batch_size else []
    url = f"mqtt://127.0.0.1:{port}"
    if processes == 1:
        commands = [["--client-id", "bench-ingest", "--protocol", "3.1.1"]]
    else:
        commands = [["--client-id", f"bench-replica-{n}", "--protocol", "5", "--replicas", str(processes),
                     "--replica", str(n)] for n in range(processes)]
    started = time.perf_counter()
    ingests = [subprocess.Popen([sys.executable, "manage.py", "mqtt_ingest", "--url", url, *batch_size, *arguments],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for arguments in commands]
    last = first = None
    with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://"), autocommit=True) as conn:
        cursor = conn.cursor()
        # Progress is read off the identity column, which costs PostgreSQL nothing while the ingest
        # runs (counting the table every few milliseconds would take CPU from the ingest itself).
        # Every insert attempt takes an id, so it can run ahead of the rows only on a duplicate:
        # the exact count decides the end.
        base = identity_now(cursor)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            attempts = inserted_so_far(cursor, base)
            now = time.perf_counter()
            if attempts and first is None:
                first = now
            if attempts >= expected and stored_rows(cursor)[0] >= expected:
                last = now
                break
            time.sleep(0.01)
        time.sleep(1)  # anything still arriving would be a duplicate or a surplus
        rows, distinct = stored_rows(cursor)
    for ingest in ingests:
        ingest.terminate()
        ingest.wait(timeout=60)
    rate = rows / (last - started) if last else 0.0
    return rate, rows, distinct, (first - started) if first else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (20,000 messages)")
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--batch-size", type=int, help="the ingest's batch size (default: its production setting)")
    args = parser.parse_args()
    messages = 20_000 if args.quick else args.messages
    messages -= messages % args.devices

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "fablab_ops.settings",
           "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "CELERY_BROKER_URL": "",
           "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    from bench._support import compile_project, ensure_database

    compile_project()
    ensure_database(database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection

    from fablab_ops.machines.models import Lab, Machine, MachineType

    lab = Lab.objects.create(slug=LAB, short_name="Bench", name_vi="Bench", host="-", field="-", address="-")
    kind = MachineType.objects.create(slug="bench-printer", name_vi="Máy in 3D", requires_induction=False)
    Machine.objects.bulk_create([Machine(lab=lab, machine_type=kind, slug=f"m{i:03d}", name=f"M{i}")
                                 for i in range(args.devices)])

    with tempfile.TemporaryDirectory() as folder:
        broker, port = start_broker(Path(folder))
        try:
            # Each ingest run is bracketed by two bare runs on copies of the same backlog, and compared
            # with their mean: the machine's speed drifts during a run, and this cancels most of it.
            for name in ("bench-bare-1", "bench-ingest", "bench-bare-2"):
                register_session(port, name)
            publish(port, args.devices, messages)
            bare = [bare_subscriber(port, messages, "bench-bare-1")]
            ingest_rate, rows, distinct, first_row_s = run_ingest(port, messages, env, batch_size=args.batch_size)
            bare.append(bare_subscriber(port, messages, "bench-bare-2"))
            # The same backlog again, split between two ingest replicas, each machine's reports queued
            # in the session of the replica its hash names.
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE machines_telemetrymessage")
            register_session(port, "bench-bare-3")
            for n in range(2):
                mine = [f"m{i:03d}" for i in range(args.devices) if replica_of(f"m{i:03d}", 2) == n]
                register_session(port, f"bench-replica-{n}", [f"fablab/{LAB}/{machine}/state" for machine in mine])
            register_session(port, "bench-bare-4")
            publish(port, args.devices, messages)
            shared_bare = [bare_subscriber(port, messages, "bench-bare-3")]
            shared_rate, shared_rows, shared_distinct, _first = run_ingest(port, messages, env, processes=2,
                                                                  batch_size=args.batch_size)
            shared_bare.append(bare_subscriber(port, messages, "bench-bare-4"))
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    bare_rate, shared_bare_rate = sum(bare) / 2, sum(shared_bare) / 2
    print(json.dumps({
        "ratio": round(ingest_rate / bare_rate, 3) if bare_rate else 0.0,
        "ingest_per_s": round(ingest_rate, 1),
        "bare_per_s": round(bare_rate, 1),
        "bare_runs_per_s": [round(rate) for rate in bare],
        "ingest_first_row_s": round(first_row_s, 2),
        "ratio_two_ingest_replicas": round(shared_rate / shared_bare_rate, 3) if shared_bare_rate else 0.0,
        "two_ingest_replicas_per_s": round(shared_rate, 1),
        "messages": messages,
        "devices": args.devices,
        "lost": (messages - distinct) + (messages - shared_distinct),
        "duplicates": (rows - distinct) + (shared_rows - shared_distinct),
    }))

if __name__ == "__main__":
    main()
