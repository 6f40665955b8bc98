"""Nothing lost, nothing doubled: every e-mail is a row written with the change that calls for it.

The row is sent at once after commit, and a sweep that Celery beat runs every minute sends whatever was
left behind (Redis down at commit, a worker killed). Sending happens outside any database transaction;
a row carries a stable Message-ID, and the only duplicate allowed — a worker killed inside the SMTP
exchange — keeps it. These tests use a real SMTP server (aiosmtpd), PostgreSQL and a private Redis.
"""

import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from fablab_ops import notifications
from fablab_ops.accounts.models import Notification, NotificationState
from fablab_ops.accounts.tasks import send_due_notifications, send_notification
from fablab_ops.celery import app as celery_app
from fablab_ops.courses import services as courses
from fablab_ops.reports import delivery
from fablab_ops.reports.tasks import send_last_months_report
from tests import factories
from tests.conftest import client_for
from tests.outbox_support import NetworkWatch, SmtpSink, use_broker, wait_for, worker_env

OCTOBER = date(2026, 10, 1)


@pytest.fixture
def sink(settings):
    server = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 10
    yield server
    server.stop()


@pytest.fixture
def no_network_in_transaction(monkeypatch):
    watch = NetworkWatch().install(monkeypatch)
    yield watch
    assert watch.inside_transaction == [], "network calls made inside a database transaction"


@pytest.fixture
def small_class(lab):
    course = factories.CourseFactory(lab=lab, default_capacity=2, min_capacity=1, max_capacity=10)
    return factories.SessionFactory(course=course, capacity=2)


def the_row(user, kind) -> Notification:
    return Notification.objects.get(user=user, kind=kind)


@pytest.mark.django_db(transaction=True)
def test_a_booking_email_carries_the_message_id_of_its_row(postgres, sink, small_class, learner):
    response = client_for(learner).post(f"/api/courses/sessions/{small_class.pk}/book")
    assert response.status_code == 201
    row = the_row(learner, "seat_confirmed")
    assert (row.state, row.attempts, row.last_error) == (NotificationState.SENT, 1, "")
    (received,) = sink.messages
    assert received["Message-ID"] == row.message_id
    assert row.message_id.startswith(f"<notification-{row.pk}-") and row.message_id.endswith(">")
    # A second run of the same task (a redelivered Celery message) sends nothing.
    assert send_notification(row.pk) is False
    assert len(sink.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_no_network_call_is_made_inside_a_database_transaction(
        postgres, sink, no_network_in_transaction, small_class, coordinator, learner):
    """Booking, giving a seat up, an offer, a cancelled class and the monthly report, each with its e-mails
    going out through a real SMTP server: no connection is opened while a transaction is open."""
    client = client_for(learner)
    assert client.post(f"/api/courses/sessions/{small_class.pk}/book").status_code == 201
    other = factories.LearnerFactory()
    courses.book_seat(small_class.pk, other)
    waiting = factories.LearnerFactory()
    courses.book_seat(small_class.pk, waiting)
    booking = small_class.bookings.get(learner=learner)
    assert client.post(f"/api/courses/bookings/{booking.pk}/cancel").status_code == 200
    courses.cancel_session(small_class.pk, by=coordinator, reason="Mất điện")
    assert delivery.send_monthly_report(OCTOBER) is True
    assert send_due_notifications() == 0
    assert Notification.objects.exclude(state=NotificationState.SENT).count() == 0
    assert len(sink.messages) == Notification.objects.count() >= 7


@pytest.mark.django_db(transaction=True)
def test_a_hung_broker_does_not_hold_the_learners_answer_and_the_email_still_goes_out(
        postgres, sink, private_redis, small_class, learner):
    use_broker(celery_app, private_redis.url)
    private_redis.freeze()
    # Whatever happens, the broker answers again after a while (a request that waited for it returns then).
    thaw = threading.Timer(6, private_redis.thaw)
    thaw.start()
    try:
        started = time.monotonic()
        response = client_for(learner).post(f"/api/courses/sessions/{small_class.pk}/book")
        took = time.monotonic() - started
    finally:
        thaw.cancel()
        private_redis.thaw()
    assert response.status_code == 201
    assert took < 3, f"the answer waited {took:.1f} s for the broker"
    row = the_row(learner, "seat_confirmed")
    assert row.state == NotificationState.DUE and sink.messages == []
    # No worker runs here; the sweep sends what the queue would have.
    assert send_due_notifications() == 1
    assert [m["Message-ID"] for m in sink.to(learner.email)] == [row.message_id]


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_at_commit_the_sweep_sends_the_email_later_exactly_once(
        postgres, sink, private_redis, small_class, learner):
    use_broker(celery_app, private_redis.url)
    private_redis.stop()

    started = time.monotonic()
    response = client_for(learner).post(f"/api/courses/sessions/{small_class.pk}/book")
    assert response.status_code == 201, "the booking stands even though its e-mail could not be queued"
    assert time.monotonic() - started < 10
    row = the_row(learner, "seat_confirmed")
    assert row.state == NotificationState.DUE and sink.messages == []

    private_redis.start()
    # Celery beat runs the sweep every minute.
    schedule = {entry["task"]: entry["schedule"] for entry in celery_app.conf.beat_schedule.values()}
    assert schedule[send_due_notifications.name] <= 60
    assert send_due_notifications() == 1
    assert send_due_notifications() == 0
    assert send_notification(row.pk) is False  # the queued task, had it got through, finds it sent
    row.refresh_from_db()
    assert (row.state, row.attempts) == (NotificationState.SENT, 1)
    assert [m["Message-ID"] for m in sink.to(learner.email)] == [row.message_id]


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_while_the_smtp_server_holds_its_reply_sends_again_with_the_same_message_id(
        postgres, sink, learner):
    row = Notification.objects.create(user=learner, kind="seat_confirmed", dedup_key="seat-confirmed-kill",
                                      subject="Đã xác nhận chỗ", body="Hẹn gặp bạn ở lớp.")
    sink.hold_replies = True
    worker = subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup(); from fablab_ops.accounts.tasks import "
         f"send_notification; send_notification({row.pk})"],
        env=worker_env(sink),
    )
    try:
        wait_for(lambda: len(sink.messages) == 1, timeout=60, what="the worker to hand the message over")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    sink.hold_replies = False

    row.refresh_from_db()
    assert (row.state, row.attempts) == (NotificationState.SENDING, 1)
    # While its lease runs, nobody else sends it; once the lease is over, the sweep does.
    assert send_due_notifications() == 0
    later = timezone.now() + notifications.LEASE + timedelta(seconds=1)
    assert notifications.send_due(now=later) == 1
    row.refresh_from_db()
    assert (row.state, row.attempts) == (NotificationState.SENT, 2)
    assert sink.message_ids() == [row.message_id, row.message_id], "the one duplicate keeps its Message-ID"
    assert notifications.send_due(now=later + timedelta(hours=1)) == 0


@pytest.mark.django_db(transaction=True)
def test_sweeps_running_side_by_side_send_each_email_once(postgres, sink):
    learners = [factories.LearnerFactory() for _ in range(40)]
    rows = [Notification.objects.create(user=learner, kind="seat_reminder", dedup_key=f"reminder-side-{i}",
                                        subject="Nhắc lịch", body="…")
            for i, learner in enumerate(learners)]
    barrier = threading.Barrier(4)
    sent = []

    def sweep():
        try:
            barrier.wait()
            sent.append(notifications.sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sum(sent) == len(rows)
    assert sorted(sink.message_ids()) == sorted(row.message_id for row in rows)
    assert set(Notification.objects.values_list("state", "attempts")) == {(NotificationState.SENT, 1)}


@pytest.mark.django_db(transaction=True)
def test_a_refused_email_backs_off_then_shows_as_failed_to_staff_who_retry_it(postgres, sink, learner, admin_user):
    sink.refuse_always.add(learner.email)
    with transaction.atomic():
        row, _ = notifications.notify(learner, "seat_reminder", dedup_key="reminder-refused",
                                      context={"booking": None, "session": factories.SessionFactory()})
    row.refresh_from_db()
    assert (row.state, row.attempts) == (NotificationState.DUE, 1)
    assert "451" in row.last_error
    first_wait = row.next_attempt_at - timezone.now()
    assert timedelta(seconds=30) < first_wait <= notifications.backoff(1)

    now = timezone.now()
    for attempt in range(2, notifications.MAX_ATTEMPTS + 1):
        now = row.next_attempt_at + timedelta(seconds=1)
        assert notifications.send_due(now=now) == 0
        row.refresh_from_db()
        assert row.attempts == attempt
        if attempt < notifications.MAX_ATTEMPTS:
            assert row.next_attempt_at - now == notifications.backoff(attempt)
    assert row.state == NotificationState.FAILED
    assert notifications.send_due(now=now + timedelta(days=30)) == 0, "a failed row waits for staff"

    staff = client_for(admin_user)
    page = staff.get("/admin/accounts/notification/?state__exact=failed").content.decode()
    assert "reminder" in page.lower() and "451" in page
    sink.refuse_always.clear()  # the address was fixed
    response = staff.post("/admin/accounts/notification/", {"action": "retry_sending", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.state == NotificationState.SENT
    assert [m["Message-ID"] for m in sink.to(learner.email)] == [row.message_id]


@pytest.mark.django_db(transaction=True)
def test_the_monthly_report_reaches_each_coordinator_once_even_when_the_run_breaks_halfway(postgres, sink):
    first = factories.CoordinatorFactory(email="a.dieuphoi@fablab.test")
    second = factories.CoordinatorFactory(email="b.dieuphoi@fablab.test", language="en")
    sink.refuse_once.add(second.email)  # the mail server turns the second one away this time

    assert delivery.send_monthly_report(OCTOBER) is True
    assert len(sink.to(first.email)) == 1 and sink.to(second.email) == []
    # The job runs again (a redelivered task, a second beat): what was sent is not sent again.
    assert delivery.send_monthly_report(OCTOBER) is False
    assert len(sink.messages) == 1

    later = timezone.now() + notifications.backoff(1) + timedelta(seconds=1)
    assert notifications.send_due(now=later) == 1
    for coordinator in (first, second):
        (message,) = sink.to(coordinator.email)
        row = the_row(coordinator, "monthly_report")
        assert message["Message-ID"] == row.message_id
        attachment = next(part for part in message.walk() if part.get_filename())
        assert attachment.get_filename().endswith(".xlsx")
        assert attachment.get_payload(decode=True) == bytes(row.attachment)
    assert the_row(second, "monthly_report").subject.startswith("Monthly report")
    assert notifications.send_due(now=later + timedelta(days=1)) == 0
    assert len(sink.messages) == 2


@pytest.mark.django_db(transaction=True)
def test_a_report_run_killed_halfway_resends_nothing_that_went_out(postgres, sink):
    first = factories.CoordinatorFactory(email="a.dieuphoi@fablab.test")
    second = factories.CoordinatorFactory(email="b.dieuphoi@fablab.test")
    sink.hold_replies_to.add(second.email)  # the worker dies while the server holds the second reply
    worker = subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup(); from datetime import date; from "
         "fablab_ops.reports.delivery import send_monthly_report; send_monthly_report(date(2026, 10, 1))"],
        env=worker_env(sink),
    )
    try:
        wait_for(lambda: len(sink.to(second.email)) == 1, timeout=60, what="the second coordinator's e-mail")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    sink.hold_replies_to.clear()

    assert the_row(first, "monthly_report").state == NotificationState.SENT
    assert the_row(second, "monthly_report").state == NotificationState.SENDING
    assert delivery.send_monthly_report(OCTOBER) is False
    assert len(sink.messages) == 2, "nothing sent again while the dead worker's lease runs"
    later = timezone.now() + notifications.LEASE + timedelta(seconds=1)
    assert notifications.send_due(now=later) == 1
    assert len(sink.to(first.email)) == 1
    second_row = the_row(second, "monthly_report")
    assert [m["Message-ID"] for m in sink.to(second.email)] == [second_row.message_id] * 2
    assert (second_row.state, second_row.attempts) == (NotificationState.SENT, 2)


@pytest.mark.django_db(transaction=True)
def test_the_report_task_mails_last_month_once(postgres, sink, coordinator):
    assert send_last_months_report() is True
    assert send_last_months_report() is False
    assert len(sink.to(coordinator.email)) == 1


def test_celery_delivery_semantics_are_set_deliberately():
    conf = celery_app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    visibility = conf.broker_transport_options["visibility_timeout"]
    # Redelivered only after the longest task could have finished, and well before kombu's default hour.
    assert conf.task_time_limit < visibility <= 30 * 60
    assert notifications.LEASE.total_seconds() < visibility
    assert any(entry["task"] == send_due_notifications.name and entry["schedule"] <= 60
               for entry in conf.beat_schedule.values())


@pytest.mark.django_db(transaction=True)
def test_an_operator_sends_failed_emails_again_from_the_command_line(postgres, sink, learner):
    from io import StringIO

    from django.core.management import call_command

    row = Notification.objects.create(user=learner, kind="seat_confirmed", dedup_key="seat-confirmed-cli",
                                      subject="Đã xác nhận chỗ", body="…", state=NotificationState.FAILED,
                                      attempts=notifications.MAX_ATTEMPTS, last_error="SMTPServerDisconnected")
    out = StringIO()
    call_command("retry_notifications", stdout=out)
    assert "failed=1" in out.getvalue() and "SMTPServerDisconnected" in out.getvalue()
    assert sink.messages == []
    call_command("retry_notifications", "--failed", stdout=out)
    row.refresh_from_db()
    assert row.state == NotificationState.SENT
    assert sink.message_ids() == [row.message_id]
