"""The web workers keep their PostgreSQL connections between requests: a connection the server closed is replaced
before a request uses it, and one still open costs the request nothing to check. A transaction's BEGIN travels
with its first statement, and the transaction is still all-or-nothing (fablab_ops/postgresql)."""

import os
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import DataError, connection, transaction
from django.test import Client
from django.utils import timezone
from psycopg import pq
from psycopg._connection_base import BaseConnection
from psycopg.client_cursor import ClientCursorMixin

from fablab_ops.accounts.models import ApiToken
from fablab_ops.courses.models import SeatBooking, Session
from fablab_ops.machines.models import Lab
from tests import factories
from tests.database_support import database_url

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.django_db(transaction=True)


def between_requests():
    """What Django does as a request starts or ends with a persistent connection: the next query checks it."""
    connection.close_if_unusable_or_obsolete()


def terminated_by_the_server(backend_pid: int) -> None:
    """PostgreSQL ends the backend (as a restart or an administrator would) and its goodbye reaches the socket."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [backend_pid])
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    deadline = time.monotonic() + 10
    while not poller.poll(100) and time.monotonic() < deadline:
        pass


def test_a_connection_postgresql_closed_while_idle_is_replaced_before_the_next_request(postgres, client, lab):
    factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    connection.ensure_connection()
    old_backend = connection.connection.info.backend_pid
    terminated_by_the_server(old_backend)

    between_requests()
    response = client.get("/api/courses/sessions")

    assert response.status_code == 200, response.content
    assert len(response.json()) == 1
    assert connection.connection.info.backend_pid != old_backend


def test_a_booking_after_postgresql_closed_the_idle_connection_is_made_on_a_new_one(postgres, lab):
    # A booking's statements go through a cursor kept with the connection (fablab_ops/rows.py): the connection the
    # server closed is replaced, its kept cursor with it, before the token is even looked up.
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    _row, token = ApiToken.issue(factories.LearnerFactory(), "app")
    client = Client(headers={"authorization": f"Bearer {token}"})
    assert client.get("/api/courses/bookings/mine").status_code == 200
    old_backend = connection.connection.info.backend_pid
    terminated_by_the_server(old_backend)

    between_requests()
    response = client.post(f"/api/courses/sessions/{session.pk}/book")

    assert response.status_code == 201, response.content
    assert connection.connection.info.backend_pid != old_backend
    assert SeatBooking.objects.filter(session=session).count() == 1


def test_checking_an_open_connection_before_a_request_costs_no_round_trip(postgres, monkeypatch):
    Session.objects.exists()
    backend = connection.connection.info.backend_pid
    sent = []
    for method in ("execute", "cursor"):
        original = getattr(psycopg.Connection, method)
        monkeypatch.setattr(psycopg.Connection, method,
                            lambda self, *args, _original=original, _method=method, **kwargs:
                            sent.append(_method) or _original(self, *args, **kwargs))

    between_requests()
    connection.close_if_health_check_failed()

    assert sent == []
    assert connection.health_check_done
    assert connection.connection.info.backend_pid == backend


def seen_from_elsewhere(sql: str, params: list):
    """What another connection reads: only what was committed."""
    params_ = connection.get_connection_params()
    params_.pop("cursor_factory", None)
    with psycopg.connect(**params_, autocommit=True) as other:
        return other.execute(sql, params).fetchall()


def lab_names(lab) -> list[str]:
    return [name for (name,) in seen_from_elsewhere("SELECT name_vi FROM machines_lab WHERE id = %s", [lab.pk])]


@pytest.fixture
def round_trips(monkeypatch) -> list[str]:
    """Every message psycopg sends from here on: a statement of a cursor, or a command of its own (BEGIN,
    COMMIT)."""
    sent = []
    send = ClientCursorMixin._execute_send
    command = BaseConnection._exec_command

    def counted_send(self, query, **kwargs):
        sent.append(query.query.decode())
        return send(self, query, **kwargs)

    def counted_command(self, statement, *args, **kwargs):
        sent.append(statement.decode() if isinstance(statement, bytes) else str(statement))
        return (yield from command(self, statement, *args, **kwargs))

    monkeypatch.setattr(ClientCursorMixin, "_execute_send", counted_send)
    monkeypatch.setattr(BaseConnection, "_exec_command", counted_command)
    return sent


def test_a_booking_reaches_postgresql_in_three_round_trips(postgres, lab, round_trips):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    learner = factories.LearnerFactory()
    token_row, token = ApiToken.issue(learner, "app")
    ApiToken.objects.filter(pk=token_row.pk).update(last_used_at=timezone.now())  # used a moment ago
    client = Client(headers={"authorization": f"Bearer {token}"})
    round_trips.clear()
    response = client.post(f"/api/courses/sessions/{session.pk}/book")

    assert response.status_code == 201, response.content
    # The token; BEGIN with the locked session and its counts; the booking and its e-mail's row with the COMMIT.
    # (What follows the commit is the e-mail's delivery, sent here in the request.)
    committed = next(index for index, sent in enumerate(round_trips) if sent.endswith("COMMIT"))
    assert committed == 2, round_trips
    assert round_trips[1].startswith("BEGIN; ") and round_trips[2].endswith("; COMMIT")
    assert seen_from_elsewhere("SELECT learner_id FROM courses_seatbooking WHERE session_id = %s",
                               [session.pk]) == [(learner.pk,)]


def test_a_failed_transaction_whose_begin_travelled_with_its_first_write_leaves_nothing(postgres, lab):
    before = lab_names(lab)
    with pytest.raises(RuntimeError), transaction.atomic():
        Lab.objects.filter(pk=lab.pk).update(name_vi="Không được lưu")
        assert lab_names(lab) == before  # not committed: the update ran inside the transaction
        assert Lab.objects.get(pk=lab.pk).name_vi == "Không được lưu"  # …which sees its own write
        raise RuntimeError("the request fails after its first write")
    assert lab_names(lab) == before
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


def test_a_statement_that_fails_first_in_its_transaction_leaves_the_connection_usable(postgres, lab):
    with pytest.raises(Exception, match="division by zero"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT 1 / %s", [0])
    assert Lab.objects.get(pk=lab.pk).name_vi == lab.name_vi
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


def test_a_statement_outside_a_transaction_commits_on_its_own(postgres, lab):
    Lab.objects.filter(pk=lab.pk).update(name_vi="Đã lưu ngay")
    assert lab_names(lab) == ["Đã lưu ngay"]
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE


def test_what_psycopg_sends_on_its_own_belongs_to_the_transaction_too(postgres, lab):
    # executemany and a named cursor (QuerySet.iterator) are sent by psycopg without a statement of ours first.
    with pytest.raises(RuntimeError), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.executemany("UPDATE machines_lab SET name_vi = %s WHERE id = %s", [["Tạm", lab.pk]])
        assert list(Lab.objects.filter(pk=lab.pk).values_list("name_vi", flat=True).iterator(chunk_size=1)) == [
            "Tạm"]
        raise RuntimeError("undone")
    assert lab_names(lab) == [lab.name_vi]


def test_a_transaction_keeps_the_configured_isolation_level(postgres, monkeypatch):
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "isolation_level", psycopg.IsolationLevel.SERIALIZABLE)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone() == ("serializable",)


def test_rows_written_in_one_transaction_commit_together(postgres, lab):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    learners = [factories.LearnerFactory() for _ in range(2)]
    with transaction.atomic():
        for learner in learners:
            SeatBooking.objects.create(session=session, learner=learner, status="confirmed")
        assert seen_from_elsewhere("SELECT count(*) FROM courses_seatbooking WHERE session_id = %s",
                                   [session.pk]) == [(0,)]
    assert seen_from_elsewhere("SELECT count(*) FROM courses_seatbooking WHERE session_id = %s",
                               [session.pk]) == [(2,)]


@pytest.mark.parametrize("stored", [
    "2026-11-28 12:43:05.563098+00", "2026-11-28 12:43:05.5+00", "2026-11-28 05:00:00+00", "1999-12-31 23:59:59.5+07",
    "0001-01-01 00:00:00+00", "9999-12-31 23:59:59.999999+00"])
def test_a_moment_reads_back_as_the_instant_postgresql_holds(postgres, stored):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::timestamptz, "
                       "to_char(%s::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')", [stored, stored])
        moment, in_utc = cursor.fetchone()
    assert moment == datetime.strptime(in_utc, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_a_moment_python_cannot_hold_is_still_refused(postgres):
    with pytest.raises(DataError, match="after year 10K"), connection.cursor() as cursor:
        cursor.execute("SELECT 'infinity'::timestamptz")
        cursor.fetchone()


NAME_OF_MY_CONNECTION = "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()"


def test_postgresql_names_the_service_behind_each_connection(postgres):
    """Whoever looks at PostgreSQL's sessions for a lock held too long, or a transaction left idle, sees which
    service holds it: each compose service is named (DB_APPLICATION_NAME), any other process by its program."""
    with connection.cursor() as cursor:
        cursor.execute(NAME_OF_MY_CONNECTION)
        mine = cursor.fetchone()[0]
    assert mine == settings.DATABASES["default"]["OPTIONS"]["application_name"] and mine.startswith("fablab-ops ")
    probe = ("from django.db import connection; cursor = connection.cursor(); "
             f"cursor.execute({NAME_OF_MY_CONNECTION!r}); print(cursor.fetchone()[0])")
    for named, expected in (({}, "fablab-ops shell"), ({"DB_APPLICATION_NAME": "fablab-ops web"}, "fablab-ops web")):
        result = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", probe], cwd=ROOT,
                                capture_output=True, text=True, timeout=120,
                                env={**os.environ, "DATABASE_URL": database_url(), "DEBUG": "1", **named})
        assert result.stdout.strip() == expected, result.stderr
