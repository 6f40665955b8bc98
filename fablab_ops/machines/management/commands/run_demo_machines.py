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
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand

from fablab_ops.machines.consumer import Ingest
from fablab_ops.machines.models import Machine

log = logging.getLogger(__name__)


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def start_embedded_broker(host: str, port: int) -> None:
    from amqtt.broker import Broker

    config = {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}}, "sys_interval": 0,
              "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]}, "topic-check": {"enabled": False}}

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(Broker(config, loop=loop).start())
        loop.run_forever()

    threading.Thread(target=serve, name="embedded-broker", daemon=True).start()
    for _ in range(50):
        if listening(host, port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the embedded MQTT broker did not start on {host}:{port}")


def periodic_jobs(stop: threading.Event) -> None:
    """Run CELERY_BEAT_SCHEDULE's tasks in-process, each at its own interval."""
    due = dict.fromkeys(settings.CELERY_BEAT_SCHEDULE, 0.0)
    while not stop.wait(5):
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
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

    def handle(self, *args, **options):
        for chatty in ("amqtt", "transitions"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
        url = urlparse(settings.MQTT_URL)
        host, port = url.hostname or "127.0.0.1", url.port or 1883
        if not listening(host, port):
            start_embedded_broker(host, port)
            self.stdout.write(f"embedded MQTT broker on {host}:{port}")
        registry = [{"lab": m.lab.slug, "machine": m.slug, "type": m.machine_type.slug, "interlock": m.has_interlock}
                    for m in Machine.objects.select_related("lab", "machine_type").exclude(status="retired")]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(registry, handle)
        argv = [sys.executable, "-m", "devices.simulator", "--registry", handle.name,
                "--machines", str(len(registry)), "--rate", str(options["rate"]), "--speed", str(options["speed"]),
                "--url", settings.MQTT_URL]
        simulator = subprocess.Popen(argv, cwd=settings.BASE_DIR)  # noqa: S603 - our own interpreter and module
        stop = threading.Event()
        threading.Thread(target=periodic_jobs, args=(stop,), daemon=True).start()
        self.stdout.write(f"{len(registry)} simulated machines reporting; ingest running")
        try:
            Ingest(url=settings.MQTT_URL, client_id="fablab-demo-ingest", protocol="3.1.1").run()
        finally:
            stop.set()
            simulator.terminate()
            simulator.wait(timeout=10)
