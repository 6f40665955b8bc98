"""Prometheus metrics: request latency measured by a middleware, the rest read at scrape time.

- `fablab_http_request_duration_seconds{view, method, status}`: a histogram per route name (never the raw
  path: `courses:session_list`, `api:book_seat`, `<unresolved>` for what matched no route), method (the
  usual ones, else `other`) and status class (`2xx` … `5xx`), so the number of series stays bounded.
- Read from the database and Redis when Prometheus scrapes (`OperationsCollector`): the e-mail outbox
  (due, sending, failed, late, age of the oldest due), the machines' desired states not yet published,
  the Celery queue's length (LLEN of its Redis list), and each ingest replica's lag, queue, figures
  and quarantined messages by reason.

Several gunicorn workers: with PROMETHEUS_MULTIPROC_DIR set (compose sets it on `web`, on a tmpfs that
starts empty), prometheus-client keeps each process's histogram in files there and a scrape adds them
up, whichever worker answers it. The directory must be empty when the server starts.

Who may scrape: with METRICS_TOKEN set, a request carrying `Authorization: Bearer <token>` (compared in
constant time); without it, only clients on loopback or internal networks (METRICS_ALLOWED_NETWORKS),
the client's address taken as the login throttle takes it (behind TRUSTED_PROXY_COUNT proxies).
"""

import hmac
import ipaddress
import logging
import os
import time

from django.conf import settings
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from fablab_ops import health

log = logging.getLogger(__name__)

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
UNRESOLVED = "<unresolved>"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DEFAULT_NETWORKS = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"

# Only the request histogram lives in the processes; in multiprocess mode its values go to files.
REQUESTS = CollectorRegistry(auto_describe=True)
REQUEST_DURATION = Histogram(
    "fablab_http_request_duration_seconds", "Time to answer an HTTP request, by route name, method and status class",
    ["view", "method", "status"], buckets=BUCKETS, registry=REQUESTS)

# Celery's queue in Redis: kombu keeps a list per priority step; the default one bears the queue's name.
CELERY_QUEUE = "celery"
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


# --- request latency -----------------------------------------------------------------------------------

def view_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNRESOLVED
    return match.view_name or UNRESOLVED


def observe(request, status: int, seconds: float) -> None:
    method = request.method if request.method in METHODS else "other"
    REQUEST_DURATION.labels(view_label(request), method, f"{min(max(status // 100, 1), 5)}xx").observe(seconds)


class RequestMetricsMiddleware:
    """Outermost: times every answer, refusals of the middlewares below included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            observe(request, response.status_code, time.perf_counter() - started)
        except Exception:  # a metric must never cost an answer
            log.exception("request metric not recorded")
        return response


# --- who may scrape ------------------------------------------------------------------------------------

def _networks():
    raw = getattr(settings, "METRICS_ALLOWED_NETWORKS", "") or DEFAULT_NETWORKS
    networks = []
    for part in str(raw).split(","):
        if part.strip():
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
    return networks


def scrape_allowed(request) -> str | None:
    """None when this request may read the metrics; else why not: "token" (403) or "network" (404)."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return "token"
    from fablab_ops.accounts.throttle import client_address

    try:
        address = ipaddress.ip_address(client_address(request).strip("[]"))
    except ValueError:
        return "network"
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return None if any(address in network for network in _networks()) else "network"


# --- what is read at scrape time -----------------------------------------------------------------------

def celery_queue_length() -> int | None:
    """Tasks waiting in the Celery queue (LLEN of its Redis lists); None without a Redis broker."""
    url = health.redis_urls().get("broker")
    if not url:
        return None
    client = health.redis_client(url)
    try:
        keys = [CELERY_QUEUE] + [f"{CELERY_QUEUE}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.llen(key)
        return sum(pipe.execute())
    finally:
        client.close()


class OperationsCollector:
    """The database-derived and Redis-derived figures, computed when Prometheus scrapes."""

    def collect(self):
        up = GaugeMetricFamily("fablab_metrics_source_up",
                               "Whether the figures of a source could be read at this scrape", labels=["source"])
        try:
            yield from self._database()
            up.add_metric(["database"], 1)
        except Exception as error:
            log.warning("metrics: database figures not read: %s", type(error).__name__)
            up.add_metric(["database"], 0)
        try:
            length = celery_queue_length()
            if length is not None:
                queue = GaugeMetricFamily("fablab_celery_queue_length", "Tasks waiting in the Celery queue",
                                          labels=["queue"])
                queue.add_metric([CELERY_QUEUE], length)
                yield queue
                up.add_metric(["redis"], 1)
        except Exception as error:
            log.warning("metrics: Celery queue not read: %s", type(error).__name__)
            up.add_metric(["redis"], 0)
        yield up

    def _database(self):
        from django.db.models import Count

        from fablab_ops.machines.models import QuarantinedMessage
        from fablab_ops.machines.services import ingest_health

        with health.bounded_queries():
            outbox = health.outbox_figures()
            replicas = ingest_health()
            quarantine = dict(QuarantinedMessage.objects.values("reason").annotate(n=Count("pk"))
                              .values_list("reason", "n"))
        notifications = GaugeMetricFamily("fablab_outbox_notifications", "E-mails in the outbox by state "
                                          "(due: to be sent now; late: due for longer than READY_OUTBOX_LATE_S)",
                                          labels=["state"])
        for state in ("due", "sending", "failed", "late"):
            notifications.add_metric([state], outbox[state])
        yield notifications
        yield GaugeMetricFamily("fablab_outbox_oldest_due_seconds", "Age of the oldest e-mail due and not sent",
                                value=outbox["oldest_due_s"])
        desired = GaugeMetricFamily("fablab_desired_states_unpublished",
                                    "Machines whose latest desired state the broker does not hold yet "
                                    "(failing: the last publication failed)", labels=["state"])
        desired.add_metric(["unpublished"], outbox["desired_unpublished"])
        desired.add_metric(["failing"], outbox["desired_failing"])
        desired.add_metric(["late"], outbox["desired_late"])
        yield desired
        yield GaugeMetricFamily("fablab_desired_states_oldest_unpublished_seconds",
                                "Age of the oldest desired state not yet published", value=outbox["desired_oldest_s"])

        lag = GaugeMetricFamily("fablab_ingest_lag_seconds",
                                "Now minus the receive time of the newest report a replica stored", labels=["replica"])
        alive = GaugeMetricFamily("fablab_ingest_alive_age_seconds", "Since a replica last said it is alive",
                                  labels=["replica"])
        queued = GaugeMetricFamily("fablab_ingest_queued", "Reports received by a replica, not yet committed",
                                   labels=["replica"])
        healthy = GaugeMetricFamily("fablab_ingest_healthy", "1 when a replica is alive and not stuck",
                                    labels=["replica"])
        stored = CounterMetricFamily("fablab_ingest_stored", "Reports a replica stored", labels=["replica"])
        duplicates = CounterMetricFamily("fablab_ingest_duplicates", "Redelivered reports a replica found stored",
                                         labels=["replica"])
        quarantined = CounterMetricFamily("fablab_ingest_quarantined", "Messages a replica refused, by reason",
                                          labels=["replica", "reason"])
        from django.utils import timezone

        now = timezone.now()
        for replica in replicas:
            name = replica["client_id"]
            if replica["lag_s"] is not None:
                lag.add_metric([name], replica["lag_s"])
            if replica["alive_at"] is not None:
                alive.add_metric([name], (now - replica["alive_at"]).total_seconds())
            queued.add_metric([name], replica["queued"])
            healthy.add_metric([name], 0 if replica["problems"] else 1)
            stored.add_metric([name], replica["stored"])
            duplicates.add_metric([name], replica["duplicates"])
            for reason, count in sorted(replica["quarantined"].items()):
                quarantined.add_metric([name, reason], count)
        yield from (lag, alive, queued, healthy, stored, duplicates, quarantined)
        kept = GaugeMetricFamily("fablab_quarantined_messages", "Refused MQTT messages kept for inspection, by reason",
                                 labels=["reason"])
        for reason, count in sorted(quarantine.items()):
            kept.add_metric([reason], count)
        yield kept


class _Requests:
    """The request histogram of this very process (without PROMETHEUS_MULTIPROC_DIR)."""

    def collect(self):
        return REQUESTS.collect()


def exposition() -> tuple[bytes, str]:
    """The scrape's body and media type."""
    from prometheus_client import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Requests())
    registry.register(OperationsCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
