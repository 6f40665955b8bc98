"""A seat change's writes and its COMMIT reach PostgreSQL in one message, and stay all-or-nothing; the statements
of a seat change are planned once per connection."""

import psycopg
import pytest
from django.core import mail
from django.db import DataError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from fablab_ops.courses.models import SeatBooking
from fablab_ops.machines.models import Lab
from fablab_ops.rows import Prepared, Writes
from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def name_seen_from_elsewhere(lab) -> str:
    """The lab's name as another connection reads it: only what was committed."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params, autocommit=True) as other:
        return other.execute("SELECT name_vi FROM machines_lab WHERE id = %s", [lab.pk]).fetchone()[0]


def renamed(writes: Writes, lab, name: str) -> None:
    lab.name_vi = name
    writes.update(lab, ["name_vi"])


def test_the_last_message_of_a_transaction_carries_its_commit(postgres, lab):
    committed = []
    with CaptureQueriesContext(connection) as captured, Writes.atomic() as writes:
        transaction.on_commit(lambda: committed.append(name_seen_from_elsewhere(lab)))
        renamed(writes, lab, "Phòng lab mới")
    (sent,) = [query["sql"] for query in captured.captured_queries if "machines_lab" in query["sql"]]
    assert sent.endswith("; COMMIT")
    assert name_seen_from_elsewhere(lab) == "Phòng lab mới"
    assert committed == ["Phòng lab mới"]  # what waits for the commit ran after it, and saw it
    assert not connection.in_atomic_block and Lab.objects.filter(pk=lab.pk).exists()


def test_a_statement_that_fails_in_the_last_message_leaves_nothing_written(postgres, lab):
    before = lab.name_vi
    with pytest.raises(DataError), Writes.atomic() as writes:
        renamed(writes, lab, "Không được lưu")
        writes.add("SELECT 1 / %s", [0])
    assert name_seen_from_elsewhere(lab) == before
    assert Lab.objects.get(pk=lab.pk).name_vi == before  # and the connection serves the next request


def test_inside_a_larger_transaction_the_commit_is_left_to_it(postgres, lab):
    with pytest.raises(RuntimeError), transaction.atomic():
        with Writes.atomic() as writes:
            renamed(writes, lab, "Bị hoàn tác")
        assert Lab.objects.get(pk=lab.pk).name_vi == "Bị hoàn tác"
        raise RuntimeError("the larger transaction fails after the block")
    assert Lab.objects.get(pk=lab.pk).name_vi != "Bị hoàn tác"


def test_a_booking_commits_with_its_writes_and_its_email_still_goes_out(postgres, lab, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    learner = factories.LearnerFactory()
    with CaptureQueriesContext(connection) as captured:
        response = client_for(learner).post(f"/api/courses/sessions/{session.pk}/book")
    assert response.status_code == 201, response.content
    (writes,) = [query["sql"] for query in captured.captured_queries
                 if 'INSERT INTO "courses_seatbooking"' in query["sql"]]
    assert 'INSERT INTO "accounts_notification"' in writes and writes.endswith("; COMMIT")
    assert SeatBooking.objects.filter(session=session, learner=learner).count() == 1
    assert [message.to for message in mail.outbox] == [[learner.email]]


# Statements planned once per connection (rows.Prepared).
NAME_AND_RATE = Prepared("SELECT name_vi || %(suffix)s, '100%%' FROM machines_lab WHERE id = %(lab)s "
                         "AND name_vi <> %(suffix)s", "lab_name_and_rate")


def prepared_here() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return {name for (name,) in cursor.fetchall()}


def test_a_statement_is_prepared_once_per_connection_and_then_only_executed(postgres, lab):
    with CaptureQueriesContext(connection) as captured:
        first = Writes().read(NAME_AND_RATE, {"lab": lab.pk, "suffix": " (mới)"})
        second = Writes().read(NAME_AND_RATE, {"lab": lab.pk, "suffix": "!"})
    assert first == [(f"{lab.name_vi} (mới)", "100%")] and second == [(f"{lab.name_vi}!", "100%")]
    sent = [query["sql"] for query in captured.captured_queries]
    assert sent[0].startswith(f"PREPARE {NAME_AND_RATE.name} AS SELECT")
    assert sent[1].startswith(f"EXECUTE {NAME_AND_RATE.name}(") and "PREPARE" not in sent[1]
    assert NAME_AND_RATE.name in prepared_here()


def test_a_message_that_fails_after_its_prepare_leaves_the_statement_prepared(postgres, lab):
    statement = Prepared("SELECT id FROM machines_lab WHERE id = %s", "lab_by_id_after_a_failure")
    writes = Writes()
    writes.add(statement, [lab.pk])
    with pytest.raises(DataError):
        writes.read("SELECT 1 / %s", [0])
    assert Writes().read(statement, [lab.pk]) == [(lab.pk,)]  # executed, not prepared a second time


def test_a_statement_postgresql_no_longer_knows_fails_once_then_is_prepared_again(postgres, lab):
    statement = Prepared("SELECT name_vi FROM machines_lab WHERE id = %s", "lab_name_forgotten")
    assert Writes().read(statement, [lab.pk]) == [(lab.name_vi,)]
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")  # as a connection pooler resetting the session would
    with pytest.raises(ProgrammingError):
        Writes().read(statement, [lab.pk])
    assert Writes().read(statement, [lab.pk]) == [(lab.name_vi,)]


def test_a_seat_changes_statements_are_prepared_once_and_reused(postgres, lab):
    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    for learner in (factories.LearnerFactory(), factories.LearnerFactory()):
        response = client_for(learner).post(f"/api/courses/sessions/{session.pk}/book")
        assert response.status_code == 201, response.content
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements")
        executions = dict(cursor.fetchall())
    assert {name.rsplit("_", 1)[0]: count for name, count in executions.items()
            if name.startswith(("lock_session", "seat_counts", "insert_courses_seatbooking"))} == {
        "lock_session": 2, "seat_counts_next_key": 2, "insert_courses_seatbooking": 2}


def test_two_statements_under_one_long_label_keep_names_of_their_own(postgres):
    label = "insert_" + "a_very_long_table_name_" * 4
    first, second = Prepared("SELECT 1", label), Prepared("SELECT 2", label)
    assert len(first.name.encode()) <= 63 and len(second.name.encode()) <= 63  # as PostgreSQL keeps them
    assert first.name != second.name
    assert Writes().read(first, []) == [(1,)] and Writes().read(second, []) == [(2,)]


def test_a_cancelled_sessions_emails_do_not_leave_a_prepared_statement_per_size(postgres, lab):
    from fablab_ops.accounts.models import Notification
    from fablab_ops.courses import services

    session = factories.SessionFactory(course=factories.CourseFactory(lab=lab))
    for _ in range(6):
        factories.SeatBookingFactory(session=session)
    services.cancel_session(session.pk, by=factories.CoordinatorFactory(), reason="Mất điện")
    assert Notification.objects.filter(kind="session_cancelled").count() == 6
    assert not {name for name in prepared_here() if name.startswith("outbox_insert_6")}
