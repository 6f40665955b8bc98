"""The web workers keep their PostgreSQL connections between requests: a connection the server closed is replaced
before a request uses it, and one still open costs the request nothing to check."""

import select
import time

import psycopg
import pytest
from django.db import connection

from fablab_ops.courses.models import Session
from tests import factories

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
