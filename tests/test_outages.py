"""The database busy or out of reach: 503 with Retry-After on pages and API alike, never a 500.

The database going away is tried for real: the connection is pointed at a port where
nothing listens for the length of the test. A lock timeout is a real row lock held by
another connection. Both are recognised by their error class, not by their text.
"""

import socket
import sqlite3

import psycopg
import psycopg.sql
import pytest
from django.db import connection
from django.db.utils import OperationalError

from fablab_ops import outages
from fablab_ops.accounts.models import ApiToken
from fablab_ops.courses.models import Session
from tests import factories
from tests.conftest import client_for


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def database_down(transactional_db):
    """The default database refuses connections until the end of the test."""
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)


def quiet(client):
    client.raise_request_exception = False
    return client


# --- the database is gone -----------------------------------------------------------------------


def test_the_classes_page_says_come_back_later_while_the_database_is_down(client, database_down):
    response = quiet(client).get("/courses/")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("text/html")
    assert "Tạm thời không phục vụ được" in response.content.decode()


def test_the_down_page_speaks_english_to_those_who_ask(client, database_down):
    response = quiet(client).get("/courses/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.content.decode()


def test_the_api_answers_json_unavailable_while_the_database_is_down(client, database_down):
    response = quiet(client).get("/api/courses/sessions")
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "unavailable"
    assert response.json()["message"]


@pytest.mark.django_db(transaction=True)
def test_a_phone_app_with_a_token_hears_unavailable_not_an_html_page(client):
    learner = factories.LearnerFactory()
    _, token = ApiToken.issue(learner, "phone")
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        response = quiet(client).get("/api/courses/bookings/mine", HTTP_AUTHORIZATION=f"Bearer {token}")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_learner_opening_their_bookings_sees_the_friendly_page(client):
    learner_client = client_for(factories.LearnerFactory())
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        response = quiet(learner_client).get("/courses/my/")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    assert "Retry-After" in response


# --- a lock timeout -----------------------------------------------------------------------------


@pytest.fixture
def session_locked_elsewhere(transactional_db):
    """A class whose row another transaction holds FOR UPDATE; our lock_timeout is short."""
    session = factories.SessionFactory()
    settings = connection.settings_dict
    other = psycopg.connect(dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
                            host=settings["HOST"] or None, port=settings["PORT"] or None)
    other.execute(psycopg.sql.SQL("SELECT id FROM {} WHERE id = %s FOR UPDATE").format(
        psycopg.sql.Identifier(Session._meta.db_table)), [session.pk])
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '150ms'")
    try:
        yield session
    finally:
        other.rollback()
        other.close()
        connection.close()


def test_booking_a_seat_while_the_class_is_locked_answers_busy_on_the_api(postgres, session_locked_elsewhere):
    learner = factories.LearnerFactory()
    _, token = ApiToken.issue(learner, "phone")
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '150ms'")
    response = quiet(client_for(learner)).post(f"/api/courses/sessions/{session_locked_elsewhere.pk}/book",
                                               HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    assert response.json()["code"] == "busy"
    assert int(response["Retry-After"]) > 0


def test_booking_a_seat_on_the_page_while_the_class_is_locked_shows_busy_not_500(postgres, session_locked_elsewhere):
    learner_client = quiet(client_for(factories.LearnerFactory()))
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '150ms'")
    response = learner_client.post(f"/courses/sessions/{session_locked_elsewhere.pk}/book/")
    assert response.status_code == 503
    assert "Retry-After" in response
    assert "Hệ thống đang bận" in response.content.decode()


# --- recognised by class, not by text -----------------------------------------------------------


def wrapped(cause: Exception) -> OperationalError:
    """What Django raises: its own OperationalError with the driver's error as the cause."""
    try:
        raise OperationalError(str(cause)) from cause
    except OperationalError as error:
        return error


def test_a_lock_timeout_is_busy_whatever_language_postgresql_speaks():
    assert outages.classify(wrapped(psycopg.errors.LockNotAvailable("không thể lấy khóa trên hàng"))) == "busy"
    assert outages.classify(wrapped(psycopg.errors.QueryCanceled("hủy câu lệnh do hết thời gian"))) == "busy"


def test_an_error_that_merely_mentions_a_lock_is_not_taken_for_busy():
    assert outages.classify(wrapped(psycopg.errors.DiskFull("could not extend file: lock file"))) is None
    assert outages.classify(OperationalError("table is locked by a migration")) is None


def test_a_refused_connection_is_unavailable():
    assert outages.classify(wrapped(psycopg.OperationalError("connection failed: Connection refused"))) \
        == "unavailable"
    assert outages.classify(wrapped(psycopg.errors.AdminShutdown("terminating connection"))) == "unavailable"


def test_sqlite_busy_is_recognised_by_its_error_code():
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert outages.classify(wrapped(error)) == "busy"


@pytest.mark.django_db
def test_a_lock_timeout_reported_in_vietnamese_is_still_busy_on_the_api(monkeypatch, learner):
    from fablab_ops.courses import services

    def locked(*args, **kwargs):
        raise wrapped(psycopg.errors.LockNotAvailable("hủy câu lệnh do hết thời gian chờ khóa"))

    monkeypatch.setattr(services, "book_seat", locked)
    response = quiet(client_for(learner)).post("/api/courses/sessions/1/book")
    assert response.status_code == 503
    assert response.json()["code"] == "busy"


@pytest.mark.django_db
def test_a_full_disk_whose_message_mentions_a_lock_is_a_server_error_in_json_not_busy(monkeypatch, learner):
    from fablab_ops.courses import services

    def disk_full(*args, **kwargs):
        raise wrapped(psycopg.errors.DiskFull("could not extend file \"base/16384/2619\": lock file"))

    monkeypatch.setattr(services, "book_seat", disk_full)
    response = quiet(client_for(learner)).post("/api/courses/sessions/1/book")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "server_error"


@pytest.mark.parametrize("path, content_type", [("/courses/", "text/html"), ("/api/courses/sessions",
                                                                             "application/json")])
def test_an_outage_met_outside_any_view_is_still_a_503(rf, path, content_type):
    """A session saved by a middleware after the view, say: Django's 500 handler sees it first."""
    from fablab_ops.views import server_error

    try:
        raise wrapped(psycopg.OperationalError("connection failed: Connection refused"))
    except OperationalError:
        response = server_error(rf.get(path))
    assert response.status_code == 503
    assert response["Content-Type"].startswith(content_type)
    assert int(response["Retry-After"]) > 0
