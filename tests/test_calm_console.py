"""The console tells an operator what matters: a refusal is one line, a crash keeps its traceback.

Every kind of refusal the service makes — Django's PermissionDenied and Http404, the policy's and the
services' refusals (403, 404, 409), ninja's own HttpError, an unauthenticated or a wrong-method API call —
is the service working as meant: at most one line on the console, without a traceback.
"""

import json
import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests import factories
from tests.conftest import client_for


def console_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def assert_one_calm_line(caplog) -> None:
    records = console_records(caplog)
    assert len(records) <= 1, [r.getMessage() for r in records]
    for record in records:
        assert record.exc_info is None, record.getMessage()
        assert not record.stack_info
        assert "\n" not in record.getMessage()


@pytest.mark.django_db
def test_a_refused_request_is_logged_in_one_line_without_a_traceback(learner, lab, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    response = client_for(learner).get(f"/booking/labs/{lab.slug}/scanner/")
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].exc_info is None
    assert "\n" not in records[0].getMessage()


@pytest.fixture
def started_session(lab):
    start = timezone.now() - timedelta(minutes=30)
    return factories.SessionFactory(lab=lab, course__lab=lab, start=start, end=start + timedelta(hours=2))


@pytest.mark.django_db
@pytest.mark.parametrize(("who", "method", "path", "body", "status"), [
    ("learner", "get", "/booking/labs/{lab}/scanner/", None, 403),  # Django's PermissionDenied, on a page
    ("learner", "get", "/courses/sessions/999999/", None, 404),  # Http404, on a page
    ("learner", "get", "/no-such-page/", None, 404),  # no route at all
    ("learner", "get", "/reports/", None, 403),  # the policy's refusal, on a page
    ("anonymous", "get", "/api/accounts/me", None, 401),  # the API without a login
    ("learner", "get", "/api/reports/monthly?month=2026-10", None, 403),  # the policy's refusal, in the API
    ("learner", "get", "/api/booking/reservations/999999", None, 404),  # a service's NotFound
    ("learner", "post", "/api/courses/sessions/{session}/book", None, 409),  # a service's Conflict
    ("learner", "post", "/api/booking/reservations", b"{not json", 400),  # ninja's HttpError
    ("learner", "get", "/api/booking/checkin", None, 405),  # the wrong method
])
def test_each_kind_of_refusal_is_one_line_without_a_traceback(learner, lab, started_session, caplog,
                                                                who, method, path, body, status):
    caplog.set_level(logging.INFO)
    client = client_for(learner) if who == "learner" else Client()
    url = path.format(lab=lab.slug, session=started_session.pk)
    kwargs = {"data": body, "content_type": "application/json"} if body is not None else {}
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.content[:300]
    assert_one_calm_line(caplog)


@pytest.mark.django_db
def test_a_crash_keeps_its_traceback(learner, caplog, monkeypatch):
    """The other side: a real failure (500) still logs the exception with it."""
    from fablab_ops.courses import views

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(views, "render", broken)
    client = client_for(learner)
    client.raise_request_exception = False
    caplog.set_level(logging.ERROR, logger="django.request")
    response = client.get("/courses/")
    assert response.status_code == 500
    assert any(r.exc_info for r in caplog.records if r.name == "django.request")
    json.dumps([r.getMessage() for r in caplog.records])


def test_a_demo_email_is_saved_to_a_file_and_announced_in_one_line(settings, tmp_path, caplog):
    from django.core.mail import EmailMessage

    settings.EMAIL_BACKEND = "fablab_ops.mail.OneFilePerMessageBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    caplog.set_level(logging.INFO)
    report = EmailMessage("Báo cáo tháng 10/2026 — Mạng lưới Fablab Bình Dương", "Báo cáo được đính kèm.",
                          "fablab@localhost", ["dieuphoi@fablab.local"])
    report.attach("bao-cao.xlsx", b"PK\x03\x04" + bytes(range(256)) * 40, "application/vnd.ms-excel")
    reminder = EmailMessage("Nhắc lịch học ngày mai", "Hẹn gặp bạn.", "fablab@localhost", ["lan@example.vn"])
    assert report.get_connection().send_messages([report, reminder]) == 2

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 2, "one file per message"
    assert b"bao-cao.xlsx" in b"".join(f.read_bytes() for f in files)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "dieuphoi@fablab.local" in lines[0] and "Báo cáo tháng 10/2026" in lines[0]
    assert "lan@example.vn" in lines[1] and "Nhắc lịch học ngày mai" in lines[1]
    assert all(f.resolve().as_uri() in "\n".join(lines) for f in files)
    assert all(len(line) < 300 for line in lines), "no message body, no base64 on the console"


def test_a_refusal_is_printed_once_on_the_demo_console(tmp_path):
    """With DEBUG on (`make run`), Django's own console handler used to print each refusal a second time."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "LOG_LEVEL")}
    env.update({"DEBUG": "1", "SQLITE_PATH": str(tmp_path / "db.sqlite3")})
    code = ("import logging; logging.getLogger('django.request').warning("
            "'Forbidden (Permission denied): %s', '/booking/labs/biic/scanner/', extra={'status_code': 403})")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=Path(__file__).parent.parent,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    console = done.stdout + done.stderr
    assert console.count("Forbidden (Permission denied): /booking/labs/biic/scanner/") == 1, console


def test_the_demo_broker_lets_machines_subscribe_while_another_one_connects():
    """amqtt walks its subscriptions across awaits while others subscribe; the demo's broker must not crash a
    connecting machine's session with "dictionary changed size during iteration"."""
    import asyncio

    from fablab_ops.machines.management.commands.run_demo_machines import demo_broker

    loop = asyncio.new_event_loop()
    try:
        broker = demo_broker("127.0.0.1", 0, loop)
        subscriptions = broker._subscriptions
        subscriptions["fablab/biic/laser-01/desired"] = []
        for number, _topic in enumerate(subscriptions, start=2):  # what amqtt does, with others subscribing
            subscriptions[f"fablab/biic/printer-{number:02d}/desired"] = []
            if number > 5:
                break
        assert len(subscriptions) == 2
    finally:
        loop.close()
