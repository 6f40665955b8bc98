"""Is the service ready? What `/readyz` answers and what `/metrics` reads at scrape time.

Each check is cheap and bounded: a connection with a short timeout, a statement with a
`statement_timeout`, never a call that can hang. A check reports what failed with a
code for programs (`unreachable`, `timeout`, `refused`, `late`, `stale`) and a
sentence in the request's language; never a URL, a password or a host name.

Checks and their bounds (settings, from the environment):

- `database`: PostgreSQL (or SQLite) answers `SELECT 1`;
- `redis`: the Celery broker and the shared cache answer PING, each when configured;
- `mqtt`: the broker accepts the service's own login (CONNECT, CONNACK);
- `outbox`: no e-mail has been due for more than READY_OUTBOX_LATE_S, and no machine's
  desired state has waited for the broker for more than READY_DESIRED_LATE_S;
- `ingest`: every ingest replica said it is alive within INGEST_STALE_AFTER and is
  not stuck with reports waiting; with READY_INGEST_MAX_LAG_S set, the newest
  stored report is no older than that (off by default: a night with every device
  off is not a failure).
"""

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlparse

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

TIMEOUT_S = 2.0  # per check; the whole answer stays well under a health check's own timeout

OK = "ok"
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
REFUSED = "refused"
LATE = "late"
STALE = "stale"
FAILED = "failed"


@dataclass
class Check:
    name: str
    ok: bool
    code: str = OK
    message: str = ""
    figures: dict = field(default_factory=dict)
    ms: float = 0.0

    def as_dict(self) -> dict:
        answer = {"ok": self.ok, "code": self.code, "ms": round(self.ms, 1)}
        if self.message:
            answer["message"] = self.message
        answer.update(self.figures)
        return answer


@dataclass
class Readiness:
    checks: list[Check]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def as_dict(self) -> dict:
        return {"status": "ready" if self.ready else "not_ready", "failing": self.failing,
                "checks": {check.name: check.as_dict() for check in self.checks}}


def _bounds() -> dict:
    return {
        "outbox_late_s": getattr(settings, "READY_OUTBOX_LATE_S", 600),
        "desired_late_s": getattr(settings, "READY_DESIRED_LATE_S", 300),
        "ingest_max_lag_s": getattr(settings, "READY_INGEST_MAX_LAG_S", 0),
    }


def _failure(error: BaseException) -> tuple[str, str]:
    """A code and a sentence for a failed connection, without its address or credentials."""
    if isinstance(error, TimeoutError | socket.timeout) or "timeout" in type(error).__name__.lower() \
            or "timed out" in str(error).lower():
        return TIMEOUT, _("Không có trả lời trong thời gian cho phép.")
    return UNREACHABLE, _("Không kết nối được (%(error)s).") % {"error": type(error).__name__}


def _timed(name: str, probe) -> Check:
    started = time.monotonic()
    try:
        check = probe()
    except Exception as error:  # any failure of a dependency is an answer, never a 500
        code, message = _failure(error)
        check = Check(name, False, code, message)
    check.name = name
    check.ms = (time.monotonic() - started) * 1000
    return check


# --- database ------------------------------------------------------------------------------------------

def _database_probe() -> Check:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        import psycopg

        # A connection of its own with a connect timeout: Django's would wait for the operating system's.
        with psycopg.connect(dbname=db["NAME"], user=db.get("USER") or None, password=db.get("PASSWORD") or None,
                             host=db.get("HOST") or None, port=db.get("PORT") or None,
                             connect_timeout=max(int(TIMEOUT_S), 1),
                             options=f"-c statement_timeout={int(TIMEOUT_S * 1000)}") as probe:
            probe.execute("SELECT 1")
    else:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    return Check("database", True)


def bounded_queries():
    """A transaction whose statements give up after TIMEOUT_S (PostgreSQL); for the figures below."""
    atomic = transaction.atomic()

    class _Bounded:
        def __enter__(self):
            atomic.__enter__()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {int(TIMEOUT_S * 1000)}")
            return self

        def __exit__(self, *exc):
            return atomic.__exit__(*exc)

    return _Bounded()


# --- Redis ---------------------------------------------------------------------------------------------

def redis_urls() -> dict[str, str]:
    """The Redis instances this process uses, by role: the Celery broker and the shared cache."""
    urls = {}
    for role, url in (("broker", settings.CELERY_BROKER_URL), ("cache", getattr(settings, "REDIS_URL", ""))):
        if url and urlparse(url).scheme in ("redis", "rediss"):
            urls[role] = url
    return urls


def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S,
                                retry_on_timeout=False)


def _redis_probe() -> Check:
    urls = redis_urls()
    for role, url in urls.items():
        client = redis_client(url)
        try:
            client.ping()
        except Exception as error:
            code, message = _failure(error)
            return Check("redis", False, code, f"{role}: {message}", {"part": role})
        finally:
            client.close()
    return Check("redis", True, figures={"parts": sorted(urls)})


# --- MQTT ----------------------------------------------------------------------------------------------

def _mqtt_probe() -> Check:
    import paho.mqtt.client as mqtt

    from fablab_ops.machines.commands import broker_settings

    broker = broker_settings()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fablab-ready-{uuid.uuid4().hex[:10]}",
                         protocol=mqtt.MQTTv311)
    client.connect_timeout = TIMEOUT_S
    if broker["username"]:
        client.username_pw_set(broker["username"], broker["password"])
    if broker["tls"]:
        client.tls_set()
    answer: dict = {}
    client.on_connect = lambda c, userdata, flags, reason_code, properties: answer.setdefault("rc", reason_code)
    deadline = time.monotonic() + TIMEOUT_S
    client.connect(broker["host"], broker["port"], keepalive=10)
    try:
        while "rc" not in answer and time.monotonic() < deadline:
            client.loop(timeout=0.1)
        if "rc" in answer and not answer["rc"].is_failure:
            client.disconnect()
            client.loop(timeout=0.1)  # writes the DISCONNECT
    finally:
        sock = client.socket()
        if sock is not None:
            sock.close()
    if "rc" not in answer:
        return Check("mqtt", False, TIMEOUT, _("Không có trả lời trong thời gian cho phép."))
    if answer["rc"].is_failure:
        return Check("mqtt", False, REFUSED, _("Máy chủ MQTT từ chối đăng nhập của dịch vụ."))
    return Check("mqtt", True)


# --- outbox and ingest ---------------------------------------------------------------------------------

def outbox_figures(now=None) -> dict:
    """The e-mail outbox and the machines' desired states: what waits, what is late, what failed."""
    from fablab_ops import notifications
    from fablab_ops.accounts.models import Notification, NotificationState
    from fablab_ops.booking.models import MachineDesiredState

    now = now or timezone.now()
    bounds = _bounds()
    late_since = now - timedelta(seconds=bounds["outbox_late_s"])
    unpublished = MachineDesiredState.objects.filter(published_version__lt=F("version"))
    figures = notifications.backlog(now)
    oldest_due = (Notification.objects.filter(Q(state=NotificationState.DUE, next_attempt_at__lte=now)
                                              | Q(state=NotificationState.SENDING, claimed_until__lte=now))
                  .order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first())
    oldest_unpublished = unpublished.order_by("computed_at").values_list("computed_at", flat=True).first()
    figures.update({
        "late": Notification.objects.filter(
            Q(state=NotificationState.DUE, next_attempt_at__lte=late_since)
            | Q(state=NotificationState.SENDING, claimed_until__lte=late_since)).count(),
        "oldest_due_s": (now - oldest_due).total_seconds() if oldest_due else 0.0,
        "desired_unpublished": unpublished.count(),
        "desired_failing": unpublished.exclude(last_error="").count(),
        "desired_late": unpublished.filter(
            computed_at__lte=now - timedelta(seconds=bounds["desired_late_s"])).count(),
        "desired_oldest_s": (now - oldest_unpublished).total_seconds() if oldest_unpublished else 0.0,
    })
    return figures


def _outbox_probe() -> Check:
    with bounded_queries():
        figures = outbox_figures()
    bounds = _bounds()
    shown = {key: figures[key] for key in ("due", "failed", "late", "desired_unpublished", "desired_late")}
    if figures["late"]:
        return Check("outbox", False, LATE, _("%(count)s thư đã đến hạn gửi hơn %(minutes)s phút mà chưa gửi.") % {
            "count": figures["late"], "minutes": bounds["outbox_late_s"] // 60}, {"part": "notifications", **shown})
    if figures["desired_late"]:
        return Check("outbox", False, LATE,
                     _("%(count)s trạng thái mong muốn của máy chờ gửi tới máy chủ MQTT hơn %(seconds)s giây.") % {
                         "count": figures["desired_late"], "seconds": bounds["desired_late_s"]},
                     {"part": "desired_states", **shown})
    return Check("outbox", True, figures=shown)


def _ingest_probe() -> Check:
    from fablab_ops.machines.services import ingest_health

    with bounded_queries():
        replicas = ingest_health()
    bounds = _bounds()
    figures = {"replicas": len(replicas),
               "lag_s": min((r["lag_s"] for r in replicas if r["lag_s"] is not None), default=None)}
    stuck = [r["client_id"] for r in replicas if r["problems"]]
    if stuck:
        return Check("ingest", False, STALE, _("Tiến trình nhận dữ liệu không hoạt động: %(replicas)s.") % {
            "replicas": ", ".join(stuck)}, {"part": stuck[0], **figures})
    limit = bounds["ingest_max_lag_s"]
    if limit and replicas and (figures["lag_s"] is None or figures["lag_s"] > limit):
        return Check("ingest", False, LATE, _("Bản tin mới nhất đã lưu cũ hơn %(seconds)s giây.") % {
            "seconds": limit}, figures)
    return Check("ingest", True, figures=figures)


def readiness() -> Readiness:
    """Every check; Redis and MQTT side by side with the database, so the answer takes the longest of them.

    Those that need the database are not run (and fail) when it is out of reach. Worst case, every
    dependency silent: about 3 × TIMEOUT_S, within the health check's own timeout.
    """
    language = translation.get_language()

    def in_language(name, probe):  # the request's language is the calling thread's only
        with translation.override(language):
            return _timed(name, probe)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz") as pool:
        redis = pool.submit(in_language, "redis", _redis_probe)
        mqtt = pool.submit(in_language, "mqtt", _mqtt_probe)
        database = _timed("database", _database_probe)
        checks = [database, redis.result(), mqtt.result()]
    for name, probe in (("outbox", _outbox_probe), ("ingest", _ingest_probe)):
        if database.ok:
            checks.append(_timed(name, probe))
        else:
            checks.append(Check(name, False, FAILED, _("Không kiểm tra được khi cơ sở dữ liệu không truy cập được.")))
    return Readiness(checks)
