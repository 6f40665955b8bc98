"""An operator watches the service: /healthz, /readyz and Prometheus's /metrics.

/healthz says the process answers and touches nothing else; /readyz checks the database, Redis and
the MQTT broker, the outbox's backlog and the ingest, naming what fails, and never shows a URL or a
password; /metrics is for Prometheus, with a token or from the internal network only.
"""

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from fablab_ops import health
from fablab_ops.accounts.models import Notification, NotificationState
from fablab_ops.booking.models import MachineDesiredState
from fablab_ops.machines.models import IngestHealth, QuarantinedMessage
from tests import factories
from tests.outbox_support import free_port

ROOT = Path(__file__).resolve().parent.parent


def closed_port_url(scheme: str, secret: str = "") -> str:
    auth = f"service:{secret}@" if secret else ""
    return f"{scheme}://{auth}127.0.0.1:{free_port()}/0" if scheme == "redis" else \
        f"{scheme}://{auth}127.0.0.1:{free_port()}"


@pytest.fixture
def services_up(settings, mqtt_url, redis_url):
    settings.CELERY_BROKER_URL = redis_url
    settings.REDIS_URL = redis_url
    settings.MQTT_URL = mqtt_url
    return settings


def readyz(**headers):
    response = Client().get("/readyz", **headers)
    return response, response.json()


# --- /healthz ------------------------------------------------------------------------------------------

def test_healthz_answers_plain_ok_without_touching_the_database_or_the_network(monkeypatch, settings):
    # Without the django_db mark any query fails the test: pytest-django blocks the database.
    settings.CELERY_BROKER_URL = closed_port_url("redis")
    opened = []
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: opened.append(address))
    response = Client().get("/healthz")
    assert (response.status_code, response.content) == (200, b"ok\n")
    assert response["Content-Type"].startswith("text/plain")
    assert opened == []


# --- /readyz -------------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_readyz_is_200_and_names_each_check_when_everything_answers(postgres, services_up):
    response, body = readyz()
    assert response.status_code == 200, body
    assert body["status"] == "ready" and body["failing"] == []
    assert list(body["checks"]) == ["database", "redis", "mqtt", "outbox", "ingest"]
    assert body["checks"]["redis"]["parts"] == ["broker", "cache"]
    assert all(check["ok"] and check["ms"] < 2000 for check in body["checks"].values())
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db(transaction=True)
def test_readyz_with_redis_down_is_503_naming_redis_and_the_broker_without_the_url(postgres, services_up):
    services_up.CELERY_BROKER_URL = closed_port_url("redis", "redis-secret-pw")
    response, body = readyz()
    assert response.status_code == 503
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"]["part"] == "broker"
    assert body["checks"]["redis"]["code"] == "unreachable"
    assert body["checks"]["database"]["ok"] and body["checks"]["mqtt"]["ok"]
    assert "redis-secret-pw" not in response.content.decode() and "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_readyz_with_the_broker_down_or_refusing_the_login_is_503_naming_mqtt(postgres, services_up, tmp_path):
    services_up.MQTT_URL = closed_port_url("mqtt", "mqtt-secret-pw")
    response, body = readyz(HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503 and body["failing"] == ["mqtt"]
    assert body["checks"]["mqtt"]["code"] == "unreachable"
    assert "mqtt-secret-pw" not in response.content.decode()

    from tests.mqtt_support import PrivateBroker

    (tmp_path / "passwd").write_text("")
    broker = PrivateBroker(tmp_path, extra=f"allow_anonymous false\npassword_file {tmp_path}/passwd").start()
    try:
        services_up.MQTT_URL = f"mqtt://service:wrong@127.0.0.1:{broker.port}"
        response, body = readyz(HTTP_ACCEPT_LANGUAGE="en")
    finally:
        broker.stop()
    assert response.status_code == 503 and body["checks"]["mqtt"]["code"] == "refused"
    assert "refused" in body["checks"]["mqtt"]["message"]


@pytest.mark.django_db(transaction=True)
def test_readyz_fails_on_an_email_left_due_too_long_and_on_a_desired_state_the_broker_never_got(
        postgres, services_up, learner):
    now = timezone.now()
    Notification.objects.create(user=learner, kind="seat_confirmed", dedup_key="fresh", subject="s", body="b")
    assert readyz()[0].status_code == 200, "an e-mail due a moment ago is the relay's ordinary work"

    Notification.objects.create(user=learner, kind="seat_confirmed", dedup_key="left-behind", subject="s",
                                body="b", next_attempt_at=now - timedelta(minutes=20))
    response, body = readyz(HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503 and body["failing"] == ["outbox"]
    outbox = body["checks"]["outbox"]
    assert (outbox["code"], outbox["part"], outbox["late"], outbox["due"]) == ("late", "notifications", 1, 2)
    assert "10 minutes" in outbox["message"]

    Notification.objects.filter(dedup_key="left-behind").update(state=NotificationState.SENT)
    machine = factories.MachineFactory()
    MachineDesiredState.objects.create(machine=machine, version=3, published_version=2,
                                       computed_at=now - timedelta(minutes=10), last_error="refused")
    response, body = readyz()
    assert response.status_code == 503
    assert (body["checks"]["outbox"]["part"], body["checks"]["outbox"]["desired_late"]) == ("desired_states", 1)


@pytest.mark.django_db(transaction=True)
def test_readyz_names_an_ingest_replica_that_stopped_and_judges_lag_only_when_bounded(postgres, services_up):
    now = timezone.now()
    IngestHealth.objects.create(client_id="fablab-ingest-0", alive_at=now, newest_received_at=now - timedelta(hours=3))
    assert readyz()[0].status_code == 200, "a night with every device off is not a failure"
    services_up.READY_INGEST_MAX_LAG_S = 600
    response, body = readyz()
    assert response.status_code == 503 and body["checks"]["ingest"]["code"] == "late"
    services_up.READY_INGEST_MAX_LAG_S = 0

    IngestHealth.objects.create(client_id="fablab-ingest-1", alive_at=now - timedelta(minutes=10))
    response, body = readyz()
    assert response.status_code == 503 and body["failing"] == ["ingest"]
    assert (body["checks"]["ingest"]["code"], body["checks"]["ingest"]["part"]) == ("stale", "fablab-ingest-1")


@pytest.mark.django_db(transaction=True)
def test_readyz_with_the_database_out_of_reach_is_503_and_skips_what_needs_it(postgres, services_up, monkeypatch):
    from django.db import connection

    monkeypatch.setitem(connection.settings_dict, "PORT", str(free_port()))
    response, body = readyz()
    assert response.status_code == 503
    assert body["failing"] == ["database", "outbox", "ingest"]
    assert body["checks"]["database"]["code"] == "unreachable"


@pytest.mark.django_db(transaction=True)
def test_probes_speak_plain_http_to_the_production_settings(postgres, services_up):
    """Behind the TLS proxy every page is redirected to HTTPS; the probes inside the network are not."""
    services_up.SECURE_SSL_REDIRECT = True
    services_up.ALLOWED_HOSTS = ["fablab.example.vn"]
    client = Client()
    assert client.get("/api/health", HTTP_HOST="fablab.example.vn").status_code == 301
    assert client.get("/healthz", HTTP_HOST="fablab.example.vn").status_code == 200
    assert client.get("/readyz", HTTP_HOST="fablab.example.vn").status_code == 200
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 400, "an unknown host stays refused"


def test_the_compose_health_check_sends_a_host_the_site_allows():
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    assert probe.allowed_host("fablab.example.vn,www.fablab.example.vn") == "fablab.example.vn"
    assert probe.allowed_host(".example.vn") == "example.vn"
    assert probe.allowed_host("*") == "localhost"
    assert probe.allowed_host("") == "localhost"


# --- /metrics ------------------------------------------------------------------------------------------

def scrape(**headers):
    return Client().get("/metrics", **headers)


def sample(body: str, series: str) -> float:
    """The value of one series in an exposition, 0 when absent."""
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.django_db
def test_metrics_with_a_token_set_need_that_bearer_token_from_anywhere(settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert scrape().status_code == 403
    assert scrape(HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert scrape(HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", REMOTE_ADDR="203.0.113.7").status_code == 200


@pytest.mark.django_db
def test_metrics_without_a_token_answer_only_the_internal_network(settings):
    settings.METRICS_TOKEN = ""
    assert scrape(REMOTE_ADDR="127.0.0.1").status_code == 200
    assert scrape(REMOTE_ADDR="172.18.0.9").status_code == 200
    assert scrape(REMOTE_ADDR="203.0.113.7").status_code == 404
    # Through the TLS proxy (on the internal network) the client is the one it names.
    settings.TRUSTED_PROXY_COUNT = 1
    assert scrape(REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 404
    assert scrape(REMOTE_ADDR="172.18.0.2", HTTP_X_FORWARDED_FOR="10.0.0.4").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_metrics_show_latency_by_route_the_outbox_the_queue_the_ingest_and_quarantines(
        postgres, settings, redis_url, learner):
    import redis

    settings.CELERY_BROKER_URL = redis_url
    queue = redis.Redis.from_url(redis_url)
    queue.delete("celery")
    queue.lpush("celery", "a", "b", "c")
    now = timezone.now()
    Notification.objects.create(user=learner, kind="seat_confirmed", dedup_key="m-due", subject="s", body="b",
                                next_attempt_at=now - timedelta(minutes=30))
    Notification.objects.create(user=learner, kind="seat_confirmed", dedup_key="m-failed", subject="s", body="b",
                                state=NotificationState.FAILED)
    MachineDesiredState.objects.create(machine=factories.MachineFactory(), version=2, published_version=1,
                                       computed_at=now, last_error="no PUBACK")
    IngestHealth.objects.create(client_id="fablab-ingest-0", stored=120, duplicates=3, alive_at=now,
                                newest_received_at=now - timedelta(seconds=4),
                                quarantined={"malformed_json": 2, "wrong_type": 5})
    for reason in ("malformed_json", "malformed_json", "bad_topic"):
        QuarantinedMessage.objects.create(received_at=now, topic="fablab/x/y/state", payload="{", payload_size=1,
                                          reason=reason)
    series = 'fablab_http_request_duration_seconds_count{method="GET",status="4xx",view="api:get_session"}'
    before = sample(scrape(REMOTE_ADDR="127.0.0.1").content.decode(), series)
    client = Client()
    for session_id in (123456, 654321):
        client.get(f"/api/courses/sessions/{session_id}")
    client.get("/no/such/page/987654")
    try:
        body = scrape(REMOTE_ADDR="127.0.0.1").content.decode()
    finally:
        queue.delete("celery")

    assert sample(body, series) - before == 2, "counted per route: this process's histogram goes on across tests"
    assert 'view="<unresolved>"' in body
    # Read in the labels, not the whole page: a sample's value (a `_created` time) may hold those digits.
    labels = " ".join(re.findall(r'="([^"]*)"', body))
    assert "123456" not in labels and "987654" not in labels, "route names, never raw paths"
    assert 'fablab_outbox_notifications{state="due"} 1.0' in body
    assert 'fablab_outbox_notifications{state="failed"} 1.0' in body
    assert 'fablab_outbox_notifications{state="late"} 1.0' in body
    assert 'fablab_desired_states_unpublished{state="failing"} 1.0' in body
    assert 'fablab_celery_queue_length{queue="celery"} 3.0' in body
    assert 'fablab_ingest_lag_seconds{replica="fablab-ingest-0"} 4.' in body
    assert 'fablab_ingest_stored_total{replica="fablab-ingest-0"} 120.0' in body
    assert 'fablab_ingest_quarantined_total{reason="wrong_type",replica="fablab-ingest-0"} 5.0' in body
    assert 'fablab_quarantined_messages{reason="malformed_json"} 2.0' in body
    assert 'fablab_metrics_source_up{source="database"} 1.0' in body


@pytest.mark.django_db(transaction=True)
def test_metrics_add_up_every_gunicorn_worker_in_multiprocess_mode(postgres, tmp_path):
    """Each worker process writes its observations to PROMETHEUS_MULTIPROC_DIR; any worker's scrape sums them."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "fablab_ops.test_settings"}
    request = ("import django; django.setup(); from django.test import Client; "
               "[Client().get('/healthz') for _ in range({n})]")
    for n in (2, 3):  # two workers, two processes
        subprocess.run([sys.executable, "-c", request.format(n=n)], cwd=ROOT, env=env, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.test import Client; "
                               "print(Client().get('/metrics', REMOTE_ADDR='127.0.0.1').content.decode())"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    assert 'fablab_http_request_duration_seconds_count{method="GET",status="2xx",view="healthz"} 5.0' in scraped
    assert len(list(tmp_path.glob("*.db"))) >= 2


def test_readiness_checks_are_bounded_by_a_short_timeout():
    assert health.TIMEOUT_S <= 3
    assert json.dumps(health.Readiness([health.Check("database", True)]).as_dict())
