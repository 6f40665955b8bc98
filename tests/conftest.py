"""Shared fixtures: users by role, a lab, and the real services the suite talks to.

Tests that need PostgreSQL, Redis or an MQTT broker ask for the fixture of that
service. With FABLAB_REQUIRE_SERVICES=1 (as in CI) a missing service fails the
test; on a laptop without it the test is skipped with the reason.
"""

import os
import socket
import time
import warnings
from urllib.parse import urlparse

import psycopg
import pytest
from django.db import connection
from django.test import Client

from tests import factories

REQUIRE_SERVICES = os.environ.get("FABLAB_REQUIRE_SERVICES") == "1"


def service_missing(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    if REQUIRE_SERVICES and not os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql")):
        pytest.exit("FABLAB_REQUIRE_SERVICES=1 needs DATABASE_URL pointing at PostgreSQL", returncode=3)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test database; before it is dropped at the end of the run, whoever is still connected to it
    is named and let go. A thread or a child process that a test left connected would otherwise make PostgreSQL
    refuse the drop (after waiting 5 s for it) with a warning that names nobody, and leave the database behind."""
    yield
    if connection.vendor != "postgresql":
        return
    database = connection.settings_dict
    connection.close()
    with psycopg.connect(host=database["HOST"] or None, port=database["PORT"] or None, user=database["USER"] or None,
                         password=database["PASSWORD"] or None, dbname="postgres", autocommit=True) as server:
        deadline = time.monotonic() + 5  # a process stopped by the last test may still be leaving
        while True:
            left = server.execute(
                "SELECT pid, application_name, backend_start, state, left(query, 200) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", [database["NAME"]]).fetchall()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid, *_session in left:
            server.execute("SELECT pg_terminate_backend(%s)", [pid])
    if left:
        warnings.warn(f"still connected to the test database when the run ended, let go: {left}", stacklevel=1)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def site_language():
    """Each test starts in the site's language: a language an earlier test's request switched to (the locale
    middleware leaves it active in the thread) does not leak into reports or e-mails built outside a request."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def postgres(db):
    """For behaviour that only PostgreSQL gives: row locks, exclusion constraints."""
    if connection.vendor != "postgresql":
        service_missing("this test needs PostgreSQL (set DATABASE_URL)")
    return connection


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    url = os.environ.get("TEST_MQTT_URL") or os.environ.get("MQTT_URL") or "mqtt://127.0.0.1:1883"
    parsed = urlparse(url)
    if not _reachable(parsed.hostname or "127.0.0.1", parsed.port or 1883):
        service_missing(f"no MQTT broker at {url}")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15"
    parsed = urlparse(url)
    if not _reachable(parsed.hostname or "127.0.0.1", parsed.port or 6379):
        service_missing(f"no Redis at {url}")
    return url


@pytest.fixture
def lab(db):
    return factories.LabFactory(slug="biic", short_name="BIIC", name_vi="Fablab đa ngành BIIC")


@pytest.fixture
def other_lab(db):
    return factories.LabFactory(slug="eiu", short_name="EIU", name_vi="Fablab EIU")


@pytest.fixture
def learner(db):
    return factories.LearnerFactory(full_name="Nguyễn Thị Lan", email="lan@example.vn")


@pytest.fixture
def technician(lab):
    return factories.TechnicianFactory(labs=[lab], full_name="Trần Văn Kỹ")


@pytest.fixture
def coordinator(db):
    return factories.CoordinatorFactory(full_name="Lê Thị Điều Phối")


@pytest.fixture
def admin_user(db):
    return factories.AdminFactory(full_name="Quản Trị")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def learner_client(learner):
    return client_for(learner)


@pytest.fixture
def technician_client(technician):
    return client_for(technician)


@pytest.fixture
def coordinator_client(coordinator):
    return client_for(coordinator)


def waiting_order(session) -> list[int]:
    """The ids of a session's waiting bookings, first in line first."""
    from fablab_ops.courses.models import SeatBooking, SeatStatus

    return list(SeatBooking.objects.filter(session=session, status=SeatStatus.WAITLISTED)
                .order_by("waitlist_position").values_list("pk", flat=True))


def waiting_places(session) -> dict[int, int]:
    """Each waiting booking's place as its learner is shown it ("you are 3rd"): among those still waiting,
    the people ahead holding an offer not counted."""
    from django.utils import timezone

    from fablab_ops.courses import services
    from fablab_ops.courses.models import SeatBooking, SeatStatus

    now = timezone.now()
    return dict(SeatBooking.objects.filter(session=session, status=SeatStatus.WAITLISTED)
                .exclude(offer_expires_at__gt=now).annotate(place=services.waiting_place(now))
                .values_list("pk", "place"))


@pytest.fixture
def private_redis():
    """A Redis of the test's own on a free port (stopped, frozen or restarted at will); Celery is pointed back
    at running tasks in place afterwards."""
    import shutil

    from fablab_ops.celery import app as celery_app
    from tests.outbox_support import PrivateRedis, use_broker

    if shutil.which("redis-server") is None:
        service_missing("redis-server is not installed (a private Redis is started and stopped by this test)")
    server = PrivateRedis().start()
    yield server
    use_broker(celery_app, None)
    server.close()
