"""What the HTTP benchmarks share: their own PostgreSQL database, the app served by gunicorn as in
production (deploy/gunicorn.conf.py), keep-alive clients, and percentiles.

Every bench calls `setup(default_db)` (a fresh database, migrated, Django set up in this process for
preparing data and checking it afterwards), then `serve(env)` for the app on a free localhost port.
Environment: BENCH_DATABASE_URL (a database the bench may drop and create), BENCH_CELERY_BROKER_URL
(the Redis database whose Celery queue is emptied afterwards: e-mails are queued, no worker runs),
and WEB_WORKERS / WEB_THREADS to try another gunicorn pool than the production one.
"""

import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_database(url: str, *, copy_of: str | None = None) -> None:
    """A fresh database at `url` (dropped first when it exists): empty, or a copy of the database named by
    `copy_of`, to which nobody may be connected."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    template = f' TEMPLATE "{copy_of}"' if copy_of else ""
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"{template}')


def bench_env(database_url: str) -> dict:
    """The production settings (DEBUG off, a real secret key), on the bench's database and broker."""
    return {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64),
            "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "fablab_ops.settings",
            # As in production, e-mails are queued for the Celery workers (none run here), not sent in the request.
            "CELERY_BROKER_URL": os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
            "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "LOG_LEVEL": "WARNING",
            # Static files are not what is measured; an empty STATIC_ROOT only makes whitenoise warn.
            "PYTHONWARNINGS": "ignore::UserWarning"}


def compile_project() -> None:
    """Compile the project's modules ahead, as the image does when it is built (Dockerfile). A process the benches
    time from its start (the ingest) then spends that time on the product: where bytecode is never written
    (PYTHONDONTWRITEBYTECODE, as in the image), a checkout compiles all of its modules again at every start."""
    import compileall

    for folder in ("fablab_ops", "devices"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def setup(default_db: str) -> dict:
    """A fresh migrated database for this bench and Django set up in this process; returns the environment."""
    compile_project()
    database_url = os.environ.get("BENCH_DATABASE_URL", default_db)
    env = bench_env(database_url)
    os.environ.update(env)
    ensure_database(database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    return env


def serve(env: dict) -> tuple[subprocess.Popen, int]:
    """gunicorn with the production configuration (deploy/gunicorn.conf.py) on a free port; (process, port)."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "fablab_ops.wsgi:application",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the app did not start")


def stop_server(server: subprocess.Popen, env: dict) -> None:
    """Stop the server and empty the Celery queue the requests filled."""
    server.terminate()
    server.wait(timeout=30)
    purge_queue(env["CELERY_BROKER_URL"])


def purge_queue(broker_url: str) -> None:
    from fablab_ops.celery import app

    app.conf.broker_url = broker_url
    app.control.purge()


class Client:
    """One keep-alive connection; each request's status, seconds and body (status 0: the connection failed)."""

    def __init__(self, port: int, timeout: float = 60):
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, token: str | None = None, body: dict | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            return response.status, time.perf_counter() - started, data
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            return 0, time.perf_counter() - started, b""


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def load() -> float:
    """The 1-minute load average: on a machine busy with other work the figures say little about the targets."""
    return os.getloadavg()[0]


def signed_up(users) -> None:
    """The learners as sign-up leaves them: the required consent to process their bookings recorded (an account
    without it is refused a booking until it answers the question)."""
    from django.utils import timezone

    from fablab_ops.privacy.models import Channel, Consent, Purpose

    now = timezone.now()
    Consent.objects.bulk_create([Consent(user=user, purpose=Purpose.BOOKINGS, granted=True, notice_version="bench",
                                         at=now, channel=Channel.SIGNUP) for user in users])
