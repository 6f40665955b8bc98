"""The machines' side of the laptop demo, in one process: an embedded MQTT broker
(amqtt, when nothing listens on MQTT_URL's port), the ingest, the simulated machines
of the registry, and the periodic jobs Celery beat runs in production."""

import asyncio
import importlib
import json
import logging
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand

from fablab_ops.celery import app as celery_app
from fablab_ops.machines.consumer import Ingest
from fablab_ops.machines.models import Machine

log = logging.getLogger(__name__)


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def broker_config(host: str, port: int) -> dict:
    """amqtt's configuration for the demo: one plain TCP listener, anonymous clients, nothing else.

    Plugins are named by class (amqtt's current form): the legacy `auth`/`topic-check` sections made it
    load its entry-point plugins too, which warn about a password file and a $SYS interval the demo has not.
    """
    return {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}


class SnapshotDict(dict):
    """A dict whose iteration walks a snapshot of it.

    amqtt 0.12 walks its subscriptions dict across `await`s when a client connects (to send it retained
    messages) while other clients subscribe: "RuntimeError: dictionary changed size during iteration", with a
    traceback on the console, and the connecting machine dropped. Twenty machines connecting at the demo's
    start make that likely. Walking a snapshot is what those loops mean.
    """

    def __iter__(self):
        return iter(list(super().keys()))

    def keys(self):
        return list(super().keys())

    def values(self):
        return list(super().values())

    def items(self):
        return list(super().items())


def demo_broker(host: str, port: int, loop):
    from amqtt.broker import Broker

    broker = Broker(broker_config(host, port), loop=loop)
    broker._subscriptions = SnapshotDict(broker._subscriptions)
    return broker


def start_embedded_broker(host: str, port: int) -> None:
    started, failure = threading.Event(), []

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(demo_broker(host, port, loop).start())
        except Exception as error:
            failure.append(error)
            return
        finally:
            started.set()
        loop.run_forever()

    threading.Thread(target=serve, name="embedded-broker", daemon=True).start()
    # Waiting for start() rather than probing the port: a probe that connects and says nothing is what
    # amqtt logs as an ERROR ("No data to decode MQTT packet fixed header").
    if not started.wait(10) or failure:
        raise RuntimeError(f"the embedded MQTT broker did not start on {host}:{port}: {failure or 'timeout'}")


def periodic_jobs(stop: threading.Event) -> None:
    """Run Celery beat's schedule (CELERY_BEAT_SCHEDULE) in-process, each at its own interval.

    An interval job runs at once and then every interval; a crontab job only when its time comes (the
    monthly report goes out on the 1st at 07:00, not every time the demo starts).
    """
    start = time.monotonic()
    due = {name: start if isinstance(entry["schedule"], int | float)
           else start + max(entry["schedule"].remaining_estimate(entry["schedule"].now()).total_seconds(), 1.0)
           for name, entry in celery_app.conf.beat_schedule.items()}
    while not stop.wait(5):
        for name, entry in celery_app.conf.beat_schedule.items():
            if time.monotonic() < due[name]:
                continue
            module, task = entry["task"].rsplit(".", 1)
            try:
                getattr(importlib.import_module(module), task).apply()
            except Exception:
                log.exception("periodic job %s failed", name)
            schedule = entry["schedule"]
            if isinstance(schedule, int | float):
                seconds = float(schedule)  # as often as under beat (the desired states' sync: every 2 s)
            else:  # a crontab: at most once a minute, as its estimate is near zero at the matching minute
                seconds = max(schedule.remaining_estimate(schedule.now()).total_seconds(), 60.0)
            due[name] = time.monotonic() + seconds


class Command(BaseCommand):
    help = "Run the demo's machines: embedded MQTT broker if needed, ingest, simulator and periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, default=0.2, help="messages per second per machine")
        parser.add_argument("--speed", type=float, default=20.0, help="time acceleration of simulated jobs")
        parser.add_argument("--mean-uptime-h", type=float, default=0.0,
                            help="simulated hours between two power losses of a machine (default 0: none, so the "
                                 "demo raises no offline alerts of its own making)")

    def handle(self, *args, **options):
        # The broker's and its state machine's INFO lines (every connection) are not the demo's news; their
        # warnings and errors still show.
        for chatty in ("amqtt", "transitions"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        url = urlparse(settings.MQTT_URL)
        host, port = url.hostname or "127.0.0.1", url.port or 1883
        if not listening(host, port):
            start_embedded_broker(host, port)
            self.stdout.write(f"embedded MQTT broker on {host}:{port}")
        # Every demo machine keeps to the desired state the interlock publishes: those with a contactor because
        # it switches them, the others because their simulated users keep to the bookings. So a machine runs
        # only inside a checked-in reservation, as in a lab that follows its rules.
        registry = [{"lab": m.lab.slug, "machine": m.slug, "type": m.machine_type.slug, "interlock": m.has_interlock,
                     "keeps_to_bookings": True}
                    for m in Machine.objects.select_related("lab", "machine_type").exclude(status="retired")]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(registry, handle)
        argv = [sys.executable, "-m", "devices.simulator", "--registry", handle.name,
                "--machines", str(len(registry)), "--rate", str(options["rate"]), "--speed", str(options["speed"]),
                "--url", settings.MQTT_URL, "--mean-uptime-h", str(options["mean_uptime_h"])]
        simulator = subprocess.Popen(argv, cwd=settings.BASE_DIR)  # noqa: S603 - our own interpreter and module
        stop = threading.Event()
        threading.Thread(target=periodic_jobs, args=(stop,), daemon=True).start()
        self.stdout.write(f"{len(registry)} simulated machines reporting; ingest running")
        try:
            Ingest(url=settings.MQTT_URL, client_id="fablab-demo-ingest", protocol="3.1.1").run()
        finally:
            stop.set()
            # The simulator got the same signal from the terminal or `make`; it says goodbye within a second
            # or two while the embedded broker (this process) still runs. `make run` must end within 5 s.
            simulator.terminate()
            try:
                simulator.wait(timeout=3)
            except subprocess.TimeoutExpired:
                simulator.kill()
                simulator.wait()
            Path(handle.name).unlink(missing_ok=True)
