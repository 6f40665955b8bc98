"""Personal data is not kept longer than needed: the daily retention job warns a learner inactive for the
configured period, anonymises them after the grace period unless they came back (the reports keep their
figures), and deletes refused door scans and sent or failed e-mails after their own periods."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection

from fablab_ops import notifications
from fablab_ops.accounts.models import Notification, User
from fablab_ops.booking.models import CheckInOutcome, CheckInRecord
from fablab_ops.notifications import notify
from fablab_ops.privacy import retention
from fablab_ops.privacy.models import Consent
from fablab_ops.reports import services as reports
from tests import factories
from tests.conftest import service_missing
from tests.test_privacy import figures
from tests.test_reports import OCTOBER, local, october  # noqa: F401  (the fixture)

NOW = local(2026, 11, 5, 9)


@pytest.fixture(autouse=True)
def periods(settings):
    settings.PRIVACY_RETENTION = {"INACTIVE_WARN_DAYS": 365, "INACTIVE_GRACE_DAYS": 30, "REFUSED_SCANS_DAYS": 90,
                                  "NOTIFICATIONS_DAYS": 180}
    return settings.PRIVACY_RETENTION


def dormant(**fields):
    """A learner who joined and last logged in more than a year before NOW."""
    learner = factories.LearnerFactory(**fields)
    User.objects.filter(pk=learner.pk).update(date_joined=NOW - timedelta(days=800),
                                              last_login=NOW - timedelta(days=400))
    learner.refresh_from_db()
    return learner


def state():
    """Everything the job could change, to compare two runs."""
    return (sorted(User.objects.values_list("pk", "email", "full_name", "is_active")),
            Consent.objects.count(), Notification.objects.count(), CheckInRecord.objects.count(),
            sorted(User.objects.values_list("personal_data__inactivity_warned_at", flat=True), key=str))


@pytest.mark.django_db
def test_an_inactive_learner_is_warned_then_anonymised_after_the_grace_period(lab):
    old = dormant(full_name="Hồ Văn Ngủ Quên", email="nguquen@example.vn")
    active = factories.LearnerFactory(full_name="Đang Học")
    User.objects.filter(pk=active.pk).update(date_joined=NOW - timedelta(days=800))
    factories.SeatBookingFactory(learner=active, session__start=NOW - timedelta(days=40))  # came to a class

    run = retention.apply(NOW)
    assert (run.warned, run.anonymised) == (1, 0)
    warning = Notification.objects.get(user=old, kind="inactive_account")
    notifications.send_due(ids=[warning.pk])
    letter = next(m for m in mail.outbox if m.to == ["nguquen@example.vn"])
    assert "sắp được ẩn danh" in letter.subject and "05/12/2026" in letter.body  # the day it will happen
    assert not Notification.objects.filter(user=active, kind="inactive_account").exists()

    assert retention.apply(NOW + timedelta(days=29)).anonymised == 0  # still within the grace period
    run = retention.apply(NOW + timedelta(days=31))
    assert run.anonymised == 1
    old.refresh_from_db()
    assert old.full_name == "—" and "nguquen" not in old.email and not old.is_active
    assert Consent.objects.filter(user=old, channel="retention", granted=False).count() == 2
    active.refresh_from_db()
    assert active.is_active and active.full_name == "Đang Học"


@pytest.mark.django_db
def test_running_the_job_twice_changes_nothing_the_second_time(lab):
    dormant()
    dormant()
    factories.LearnerFactory()
    retention.apply(NOW)
    first = state()
    assert retention.apply(NOW) == retention.RetentionRun()
    assert state() == first
    later = NOW + timedelta(days=31)
    retention.apply(later)
    anonymised = state()
    assert retention.apply(later) == retention.RetentionRun()
    assert state() == anonymised


@pytest.mark.django_db
def test_a_learner_who_comes_back_after_the_warning_is_kept(lab, client):
    old = dormant(email="quaylai@example.vn")
    retention.apply(NOW)
    User.objects.filter(pk=old.pk).update(last_login=NOW + timedelta(days=3))  # logged in again
    assert retention.apply(NOW + timedelta(days=31)).anonymised == 0
    old.refresh_from_db()
    assert old.is_active and old.email == "quaylai@example.vn"
    assert old.personal_data.inactivity_warned_at is None  # a later silence is warned about afresh


@pytest.mark.django_db
def test_anonymising_inactive_learners_leaves_last_months_report_unchanged(october, periods):  # noqa: F811
    periods["INACTIVE_WARN_DAYS"] = 1
    User.objects.filter(role="learner").update(date_joined=local(2025, 1, 1, 9), last_login=None)
    before = figures(reports.monthly_report(OCTOBER, now=NOW))
    retention.apply(NOW + timedelta(days=3))
    run = retention.apply(NOW + timedelta(days=40))
    assert run.anonymised >= 7  # every learner of October
    assert not User.objects.filter(role="learner", full_name__startswith="L").exists()
    assert figures(reports.monthly_report(OCTOBER, now=NOW)) == before


@pytest.mark.django_db
def test_refused_scans_and_old_emails_go_after_their_periods_never_last_months(lab, technician, learner, periods):
    def scan(days_ago, outcome=CheckInOutcome.REFUSED):
        return CheckInRecord.objects.create(at=NOW - timedelta(days=days_ago), lab=lab, by=technician,
                                            outcome=outcome, reason="unknown_ticket", method="qr")

    _old_refusal, recent_refusal, old_check_in = scan(120), scan(30), scan(120, CheckInOutcome.CHECKED_IN)

    def email(key, days_ago, state):
        row, _created = notify(learner, "seat_confirmed", dedup_key=key)
        Notification.objects.filter(pk=row.pk).update(state=state, created_at=NOW - timedelta(days=days_ago),
                                                      sent_at=NOW - timedelta(days=days_ago))
        return row

    email("old-sent", 200, "sent"), email("old-failed", 200, "failed")
    recent_sent, old_due = email("recent-sent", 20, "sent"), email("old-due", 200, "due")

    run = retention.apply(NOW)
    assert (run.refused_scans_deleted, run.notifications_deleted) == (1, 2)
    assert set(CheckInRecord.objects.values_list("pk", flat=True)) == {recent_refusal.pk, old_check_in.pk}
    assert set(Notification.objects.values_list("pk", flat=True)) == {recent_sent.pk, old_due.pk}

    # However short the periods are set, nothing since the start of last month goes.
    periods.update(REFUSED_SCANS_DAYS=1, NOTIFICATIONS_DAYS=1)
    assert retention.apply(NOW).refused_scans_deleted == 0  # 30 days ago is within October
    assert recent_refusal.pk in set(CheckInRecord.objects.values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_warn_once_and_anonymise_once(lab):
    if connection.vendor != "postgresql":
        service_missing("row locks need PostgreSQL (set DATABASE_URL)")
    learners = [dormant() for _ in range(6)]
    retention.apply(NOW)
    Notification.objects.all().delete()
    User.objects.filter(pk__in=[u.pk for u in learners]).update(last_login=NOW - timedelta(days=400))
    later = NOW + timedelta(days=31)
    results, barrier = [], threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            results.append(retention.apply(later))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.anonymised for r in results) == 6
    assert Consent.objects.filter(channel="retention").count() == 12  # each erased once: two rows each
    assert not User.objects.filter(pk__in=[u.pk for u in learners], is_active=True).exists()
