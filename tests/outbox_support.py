"""What the outbox tests run against: a real SMTP server, a private Redis, and a watch on the network.

- `SmtpSink` is a local SMTP server (aiosmtpd) that keeps every message it receives; it can refuse a
  recipient with a temporary error, or hold its reply to the end of the DATA phase (the moment a worker
  killed mid-exchange has handed the message over but not heard that it was accepted).
- `PrivateRedis` is a redis-server of the test's own, in a temporary folder, that the test may stop and
  start again; the shared Redis is never touched.
- `NetworkWatch` wraps `socket.socket.connect` and records every connection opened while the calling
  thread's database connection is inside a transaction (PostgreSQL's own connections go through libpq
  and are excluded by address all the same).
"""

import asyncio
import os
import signal
import socket
import subprocess
import tempfile
import time
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from django.db import connection

from tests.database_support import database_url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class SmtpSink:
    def __init__(self):
        self.port = free_port()
        self.messages: list[Message] = []
        self.refuse_once: set[str] = set()
        self.refuse_always: set[str] = set()
        self.hold_replies = False
        self.hold_replies_to: set[str] = set()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_always:
            return "451 4.2.0 Mailbox temporarily unavailable"
        if address in self.refuse_once:
            self.refuse_once.discard(address)
            return "451 4.2.0 Mailbox temporarily unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(message_from_bytes(envelope.content))
        while self.hold_replies or set(envelope.rcpt_tos) & self.hold_replies_to:
            await asyncio.sleep(0.02)
        return "250 Message accepted for delivery"

    def start(self) -> "SmtpSink":
        self._controller.start()
        return self

    def stop(self) -> None:
        self.hold_replies = False
        self.hold_replies_to.clear()
        self.hold_replies_to: set[str] = set()
        self._controller.stop()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address in m["To"]]

    def message_ids(self) -> list[str]:
        return [m["Message-ID"] for m in self.messages]


class PrivateRedis:
    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._folder = tempfile.TemporaryDirectory(prefix="fablab-redis-")
        self._process: subprocess.Popen | None = None

    def start(self) -> "PrivateRedis":
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._folder.name],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.reachable, what=f"redis-server on port {self.port}")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None
        wait_for(lambda: not self.reachable(), what="redis-server to stop")

    def freeze(self) -> None:
        """A hung broker: the kernel still accepts connections, the server answers nothing (SIGSTOP)."""
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def reachable(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def close(self) -> None:
        if self._process is not None:
            self.stop()
        self._folder.cleanup()


class NetworkWatch:
    def __init__(self):
        self.inside_transaction: list[tuple] = []
        self._real_connect = socket.socket.connect
        settings = connection.settings_dict
        self._database = (settings.get("HOST") or "", str(settings.get("PORT") or "5432"))

    def _is_database(self, address) -> bool:
        return (isinstance(address, tuple) and str(address[1]) == self._database[1]
                and str(address[0]) in {self._database[0], "127.0.0.1", "::1", "localhost"})

    def install(self, monkeypatch) -> "NetworkWatch":
        watch = self

        def connect(sock, address):
            if connection.in_atomic_block and not watch._is_database(address):
                watch.inside_transaction.append(address)
                raise AssertionError(f"network call to {address} inside a database transaction")
            return watch._real_connect(sock, address)

        monkeypatch.setattr(socket.socket, "connect", connect)
        return self


def use_broker(app, url: str | None) -> None:
    """Point the Celery app at a broker (None: back to running tasks in-process) and drop its pools."""
    from kombu import pools

    pools.reset()
    app._pool = None
    if "amqp" in app.__dict__:
        app.amqp._producer_pool = None
    app.conf.task_always_eager = url is None
    app.conf.broker_url = url or ""


def worker_env(sink: SmtpSink) -> dict:
    """The environment of a worker process that uses the test database and the sink."""
    return {**os.environ, "DATABASE_URL": database_url(),
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink.port), "CELERY_BROKER_URL": "", "DJANGO_SETTINGS_MODULE": "fablab_ops.settings"}
