"""The production topology of docker-compose.yml, run natively for tests/test_topology.py.

`Topology` reads docker-compose.yml and starts its services as local processes, with the
commands and health checks written there; only what a container gives differently is
translated (`native`): `python`, `gunicorn` and `celery` are this interpreter, container
paths are temporary folders, 1883/6379/8000 are free ports, and the `.env` secrets are
made up. PostgreSQL is the real one (a database of the run's own, migrated by compose's
`setup` command); Redis and Mosquitto are private instances (Mosquitto with
deploy/mosquitto/mosquitto.conf, the password file and ACL that `setup` generated); the
SMTP server is the aiosmtpd sink of tests/outbox_support.py.

`seed()` runs inside a process of the topology (production settings) and builds the
small world the walk needs.
"""

import contextlib
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import yaml

from tests.mqtt_support import MOSQUITTO
from tests.outbox_support import PrivateRedis, SmtpSink, free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
HOST = "fablab.example.vn"  # ALLOWED_HOSTS of the run, as in the README's .env
CLIENT_ADDRESS = "203.0.113.10"  # a learner's address, as the TLS proxy reports it


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def native(argv: list[str]) -> list[str]:
    """A container's command as a local one: its Python, gunicorn and celery are this interpreter's."""
    head, *rest = argv
    if head == "python":
        return [sys.executable, *rest]
    if head in ("gunicorn", "celery"):
        return [sys.executable, "-m", head, *rest]
    return argv


def native_shell(command: str, replacements: dict[str, str]) -> str:
    """A CMD-SHELL line or `sh -c` script: compose's `$$` is `$`, container paths and ports replaced."""
    command = command.replace("$$", "$")
    for old, new in replacements.items():
        command = command.replace(old, new)
    words = []
    for word in command.split(" "):
        if word == "python":
            word = shlex.quote(sys.executable)
        elif word in ("celery", "gunicorn"):
            word = f"{shlex.quote(sys.executable)} -m {word}"
        words.append(word)
    return " ".join(words)


class Process:
    """One service's process, in its own process group (a container: a kill takes all of it).

    With `restarts` (compose's `restart: unless-stopped`), a process that exits on its own is started again by
    `Topology`'s supervisor, as Docker does; one the test killed or stopped stays down until it is started, as
    after `docker kill` or `docker stop`. `exits` keeps the exit codes of the processes brought back."""

    def __init__(self, name: str, argv: list[str], env: dict, logs: Path, *, restarts: bool = False):
        self.name, self.argv, self.env, self.restarts = name, argv, env, restarts
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.starts = 0
        self.stopped = False  # by the test, as `docker kill` or `docker stop`: no restart
        self.exits: list[int] = []
        self.lock = threading.Lock()

    def start(self) -> "Process":
        with self.lock:
            log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
            log.close()
            self.starts += 1
            self.stopped = False
        return self

    def restart_if_exited(self) -> bool:
        """Start the process again when it exited on its own and its policy says so; whether it did."""
        with self.lock:
            if not self.restarts or self.stopped or self.popen is None or self.popen.poll() is None:
                return False
            self.exits.append(self.popen.returncode)
        self.start()
        return True

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, signum: int = signal.SIGKILL, timeout: float = 20) -> None:
        """Like `docker kill -s`: the signal to every process of the group."""
        if self.popen is None:
            return
        with self.lock:
            self.stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        # A prefork pool's children may outlive their parent for a moment: the group goes entirely.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.running():
            self.kill(signal.SIGTERM, timeout=15)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Topology:
    def __init__(self, database_admin_url: str):
        self.spec = compose()
        self.folder = Path(tempfile.mkdtemp(prefix="fablab-topology-"))
        self.logs = self.folder / "logs"
        self.logs.mkdir()
        self.auth = self.folder / "mosquitto-auth"
        self.auth.mkdir()
        self.database = f"fablab_topology_{uuid.uuid4().hex[:8]}"
        admin = urlparse(database_admin_url)
        self.database_admin_url = database_admin_url.rsplit("/", 1)[0] + "/postgres"
        self.database_url = f"{admin.scheme}://{admin.netloc}/{self.database}"
        self.web_port = free_port()
        self.mqtt_port = free_port()
        self.redis = PrivateRedis()
        self.sink = SmtpSink()
        self.secrets = {name: secrets.token_urlsafe(24) for name in
                        ("MQTT_SERVICE_PASSWORD", "MQTT_INGEST_PASSWORD", "MQTT_HEALTHCHECK_PASSWORD", "METRICS_TOKEN")}
        self.processes: dict[str, Process] = {}
        self._closing = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.mosquitto: subprocess.Popen | None = None

    # --- the environment compose gives -----------------------------------------------------------------

    def app_env(self, service: str = "web") -> dict:
        """x-app's environment, and the service's own, with the values of this run; plus `.env`."""
        spec = self.spec["services"][service]
        values = {
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{self.redis.port}/0",
            "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/1",
            "STATIC_ROOT": str(self.folder / "staticfiles"),
            "PROMETHEUS_MULTIPROC_DIR": str(self.folder / "prometheus"),
        }
        env = {key: str(value) for key, value in spec.get("environment", {}).items()}
        for key in list(env):
            if key in values:
                env[key] = values[key]
            elif key == "MQTT_URL":
                user = re.match(r"mqtts?://([^:@/]+)[:@]", env[key]).group(1)
                password = self.secrets[f"MQTT_{user.upper()}_PASSWORD"]
                env[key] = f"mqtt://{user}:{password}@127.0.0.1:{self.mqtt_port}"
        base = {key: value for key, value in os.environ.items()
                if not key.startswith(("DJANGO_", "DEBUG", "DATABASE_", "TEST_", "CELERY_", "REDIS_", "MQTT_",
                                       "EMAIL_", "PROMETHEUS_", "PYTEST_"))}
        dotenv = {
            "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": HOST, "CSRF_TRUSTED_ORIGINS": f"https://{HOST}",
            "SITE_URL": f"https://{HOST}", **self.secrets,
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.sink.port), "EMAIL_TIMEOUT": "5", "DEFAULT_FROM_EMAIL": "Fablab <fablab@example.vn>",
            # Faster than production so the faults play out in seconds: a dead worker's row is due again
            # after 12 s (not 5 min), and beat sweeps every 2 s (not every minute).
            "OUTBOX_LEASE_S": "12", "OUTBOX_SWEEP_S": "2",
            "PORT": str(self.web_port), "WEB_WORKERS": "2", "HOSTNAME": socket.gethostname(),
            "DJANGO_SETTINGS_MODULE": "fablab_ops.settings", "LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1",
        }
        return {**base, **dotenv, **env}

    # --- setup, brokers ------------------------------------------------------------------------------

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.database_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def drop_database(self) -> None:
        import psycopg

        with psycopg.connect(self.database_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    def sql(self, query: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def run_setup(self) -> None:
        """compose's one-shot `setup`: migrate, collect static files, write Mosquitto's users and ACL."""
        script = " ".join(self.spec["services"]["setup"]["command"].split())
        if script.startswith("sh -c "):
            script = script[len("sh -c "):].strip().strip('"')
        self.run_shell(native_shell(script, {"/mosquitto-auth": str(self.auth)}), self.app_env("setup"), "setup")

    def run_shell(self, command: str, env: dict, what: str, timeout: float = 180) -> str:
        result = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stdout[-3000:]}\n" \
                                       f"{result.stderr[-3000:]}"
        return result.stdout

    def seed(self) -> dict:
        code = "import json, django; django.setup(); from tests.topology_support import seed; print(json.dumps(seed()))"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=self.app_env("setup"), capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    def start_mosquitto(self) -> None:
        """deploy/mosquitto/mosquitto.conf, with this run's port and folders."""
        config = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
        data = self.folder / "mosquitto-data"
        data.mkdir(exist_ok=True)
        config = (config.replace("listener 1883", f"listener {self.mqtt_port} 127.0.0.1")
                  .replace("/mosquitto/auth/", f"{self.auth}/").replace("/mosquitto/data/", f"{data}/"))
        (self.folder / "mosquitto.conf").write_text("user root\n" + config)
        log = open(self.logs / "mosquitto.log", "ab")  # noqa: SIM115 - handed to the child
        self.mosquitto = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")], stdout=log,
                                          stderr=subprocess.STDOUT)
        log.close()
        wait_for(lambda: _listening(self.mqtt_port), 10, "mosquitto on its port")

    # --- services --------------------------------------------------------------------------------------

    def command(self, service: str) -> list[str]:
        argv = native(list(self.spec["services"][service]["command"]))
        if service == "worker":  # two cores here: the pool of compose's command, smaller
            argv[argv.index("--concurrency") + 1] = "2"
        if service == "beat":
            argv[argv.index("--schedule") + 1] = str(self.folder / "celerybeat-schedule")
        return argv

    def start(self, service: str) -> Process:
        env = self.app_env(service)
        if service != "web":
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            env.pop("PORT", None)
        else:
            Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(exist_ok=True)
        restarts = self.spec["services"][service].get("restart") in ("always", "unless-stopped")
        process = self.processes.get(service) or Process(service, self.command(service), env, self.logs,
                                                         restarts=restarts)
        self.processes[service] = process
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="restart-policy", daemon=True)
            self._supervisor.start()
        return process.start()

    def _supervise(self) -> None:
        """Docker's restart policy: a service that exits on its own is started again, about a second later."""
        while not self._closing.wait(1.0):
            for process in list(self.processes.values()):
                if process.restart_if_exited():
                    print(f"topology: {process.name} exited ({process.exits[-1]}) and was started again "
                          f"by its restart policy:\n{process.tail(12)}")

    def healthcheck(self, service: str) -> tuple[int, str]:
        """The service's own compose health check, run as compose runs it."""
        test = self.spec["services"][service]["healthcheck"]["test"]
        env = self.processes[service].env if service in self.processes else self.app_env(service)
        if test[0] == "CMD":
            argv = native(list(test[1:]))
            if argv[0] == "redis-cli":
                argv += ["-p", str(self.redis.port)]
            result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        else:
            command = native_shell(test[1], {"-p 1883": f"-p {self.mqtt_port}"})
            if service == "mosquitto":
                env = {**env, "HEALTHCHECK_PASSWORD": self.secrets["MQTT_HEALTHCHECK_PASSWORD"]}
            result = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True,
                                    timeout=30)
        return result.returncode, (result.stdout + result.stderr).strip()

    def wait_healthy(self, service: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        code, output = 1, ""
        while time.monotonic() < deadline:
            code, output = self.healthcheck(service)
            if code == 0:
                return output
            process = self.processes.get(service)
            if process is not None and not process.running():
                break
            time.sleep(1)
        process = self.processes.get(service)
        raise AssertionError(f"{service} not healthy (exit {code}): {output[-1500:]}\n"
                             f"{process.tail() if process else ''}")

    def close(self) -> None:
        self._closing.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)
        for process in reversed(list(self.processes.values())):
            process.stop()
        if self.mosquitto is not None and self.mosquitto.poll() is None:
            self.mosquitto.terminate()
            self.mosquitto.wait(timeout=10)
        self.redis.close()
        self.sink.stop()
        try:
            self.drop_database()
        except Exception as error:  # noqa: BLE001 - leave the run's report intact
            print(f"topology: could not drop {self.database}: {error}")

    # --- HTTP, as through the TLS proxy ---------------------------------------------------------------

    def http(self, method: str, path: str, *, token: str | None = None, body: dict | None = None,
             proxied: bool = True) -> tuple[int, dict | str]:
        headers = {"Host": HOST}
        if proxied:
            headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-For": CLIENT_ADDRESS})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.web_port, timeout=30)
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- the world of the walk, built inside the topology (production settings) ----------------------------

def seed() -> dict:
    from datetime import time as clock
    from datetime import timedelta

    from django.utils import timezone

    from fablab_ops.accounts.models import ApiToken
    from tests import factories

    always_open = [(day, clock(0), clock(23, 59, 59)) for day in range(7)]
    biic = factories.LabFactory(slug="biic", short_name="BIIC", name_vi="Fablab đa ngành BIIC", hours=always_open)
    eiu = factories.LabFactory(slug="eiu", short_name="EIU", name_vi="Fablab EIU", hours=always_open)
    # Reservations of 2 minutes or more: the walk's stays within the lab's day even just before midnight.
    laser = factories.MachineTypeFactory(slug="laser-cutter", name_vi="Máy cắt laser", min_reservation_minutes=2)
    printer = factories.MachineTypeFactory(slug="printer-3d", name_vi="Máy in 3D", requires_induction=False)
    factories.MachineFactory(lab=biic, machine_type=laser, slug="laser-01", name="Máy cắt laser 01",
                             has_interlock=True)
    factories.MachineFactory(lab=biic, machine_type=printer, slug="printer-01", name="Máy in 3D 01")
    factories.MachineFactory(lab=eiu, machine_type=printer, slug="printer-01", name="Máy in 3D 01")

    course = factories.CourseFactory(lab=biic, default_capacity=20, min_capacity=1, max_capacity=20)
    session = factories.SessionFactory(course=course, capacity=20,
                                       start=timezone.now().replace(microsecond=0) + timedelta(days=7))
    learners = {}
    for key, name, email in (("lan", "Nguyễn Thị Lan", "lan@example.vn"),
                             ("khoa", "Trần Minh Khoa", "khoa@example.vn"),
                             ("minh", "Lê Văn Minh", "minh@example.vn"),
                             ("thu", "Phạm Thị Thu", "thu@example.vn")):
        user = factories.LearnerFactory(full_name=name, email=email, language="vi")
        learners[key] = {"email": email, "token": ApiToken.issue(user, "topology")[1]}
        if key == "lan":  # inducted on the laser cutter
            factories.CertificationFactory(user=user, machine_type=laser)
    technician = factories.TechnicianFactory(labs=[biic], full_name="Trần Văn Kỹ", email="ktv.biic@example.vn")
    coordinator = factories.CoordinatorFactory(full_name="Lê Thị Điều Phối", email="dieuphoi@example.vn")
    return {"session": session.pk, "learners": learners,
            "technician": {"email": technician.email, "token": ApiToken.issue(technician, "topology")[1]},
            "coordinator": {"email": coordinator.email}}
