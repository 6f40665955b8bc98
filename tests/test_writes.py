"""A seat change's writes and its COMMIT reach PostgreSQL in one message, and stay all-or-nothing."""

import psycopg
import pytest
from django.core import mail
from django.db import DataError, connection, transaction
from django.test.utils import CaptureQueriesContext

from fablab_ops.courses.models import SeatBooking
from fablab_ops.machines.models import Lab
from fablab_ops.rows import Writes
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
