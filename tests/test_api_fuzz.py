"""Schemathesis over the whole published API, as anonymous, learner, technician and coordinator.

The schema is read from /api/openapi.json and every operation is called in-process through
the WSGI application (no server), with data generated from the schema: valid requests
(positive) and requests that break it (negative). Ids, slugs and tickets of real objects are
mixed into the generated requests so that they reach the business rules, not just the
404s. Every answer must be no 5xx and must match the schema published for its status.

Bounded for CI: a fixed number of examples per operation, derandomised (the same cases on
every run), no example database. FABLAB_FUZZ_EXAMPLES raises the count for a deeper run.
"""

import os
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from fablab_ops.accounts.models import ApiToken
from fablab_ops.booking import tickets
from fablab_ops.courses import services as course_services
from fablab_ops.courses.models import SeatStatus
from fablab_ops.door import services as door
from tests import factories

POSITIVE_EXAMPLES = int(os.environ.get("FABLAB_FUZZ_EXAMPLES", "12"))
NEGATIVE_EXAMPLES = max(POSITIVE_EXAMPLES // 2, 1)
ROLES = ["anonymous", "learner", "technician", "coordinator"]


@pytest.fixture
def in_process_wsgi():
    """Calls straight into the WSGI app share the test's transaction, as the test client's do.

    Django's test client disconnects `close_old_connections` while it serves a request; a bare
    WSGI call must do the same, or the request would close the connection under the test.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def world(lab, other_lab, learner, technician, coordinator):
    """A small network with something of everything, and the real values to plant in requests."""
    now = timezone.now().replace(microsecond=0)
    laser = factories.MachineTypeFactory(slug="laser", requires_induction=True)
    printer = factories.MachineTypeFactory(slug="printer-3d", requires_induction=False)
    machines = [factories.MachineFactory(lab=lab, machine_type=laser, slug="laser-01"),
                factories.MachineFactory(lab=lab, machine_type=printer, slug="printer-01"),
                factories.MachineFactory(lab=other_lab, machine_type=laser, slug="laser-01")]
    factories.CertificationFactory(user=learner, machine_type=laser)
    arduino = factories.CourseFactory(lab=lab, slug="arduino-biic")
    induction = factories.InductionCourseFactory(lab=lab, slug="laser-induction", certifies=laser)
    upcoming = factories.SessionFactory(course=arduino, start=now + timedelta(days=5))
    today = factories.SessionFactory(course=induction, start=now + timedelta(minutes=10), capacity=2)
    full = factories.SessionFactory(course=induction, start=now + timedelta(days=3), capacity=1)
    seats = [factories.SeatBookingFactory(session=upcoming, learner=learner),
             factories.SeatBookingFactory(session=today, learner=learner),
             factories.SeatBookingFactory(session=full)]
    seats.append(factories.SeatBookingFactory(session=full, learner=learner, status=SeatStatus.WAITLISTED,
                                              waitlist_position=1, confirmed_at=None))
    series = course_services.create_series(
        course=arduino, by=coordinator, rule="FREQ=WEEKLY;COUNT=3", first_date=(now + timedelta(days=14)).date(),
        start_time=datetime.strptime("08:00", "%H:%M").time(), end_time=datetime.strptime("11:30", "%H:%M").time(),
        capacity=18, lab=lab)
    tomorrow_nine = timezone.localtime(now + timedelta(days=1)).replace(hour=9, minute=0, second=0)
    reservations = [
        factories.ReservationFactory(machine=machines[0], user=learner, start=tomorrow_nine,
                                     end=tomorrow_nine + timedelta(hours=1)),
        factories.ReservationFactory(machine=machines[1], user=learner, start=now + timedelta(minutes=5),
                                     end=now + timedelta(minutes=65)),
    ]
    record = door.check_in_manually("seat", seats[1].pk, lab=lab, by=technician)
    day = timezone.localdate(now)
    return {
        "users": {"learner": learner, "technician": technician, "coordinator": coordinator},
        "path": {
            "session_id": [upcoming.pk, today.pk, full.pk, *series.sessions.values_list("pk", flat=True)],
            "booking_id": [seat.pk for seat in seats],
            "series_id": [series.pk],
            "reservation_id": [reservation.pk for reservation in reservations],
            "certification_id": list(learner.certifications.values_list("pk", flat=True)),
            "record_id": [record.record_id] if record.record_id else [1],
            "slug": [lab.slug, other_lab.slug],
            "lab": [lab.slug, other_lab.slug],
            "machine": ["laser-01", "printer-01"],
        },
        "query": {
            "lab": [lab.slug, other_lab.slug],
            "machine_type": ["laser", "printer-3d"],
            "kind": ["arduino", "induction"],
            "month": [f"{day:%Y-%m}", "2026-10"],
            "day": [day.isoformat(), (day + timedelta(days=1)).isoformat()],
            "date_from": [day.isoformat()],
            "date_to": [(day + timedelta(days=30)).isoformat()],
            "format": ["csv", "xlsx", "pdf"],
            "minutes": [60, 90],
            "past": [True, False],
        },
        "body": {
            "lab": [lab.slug, other_lab.slug],
            "machine": ["laser-01", "printer-01"],
            "course": ["arduino-biic", "laser-induction"],
            "machine_type": ["laser", "printer-3d"],
            "user_email": [learner.email, technician.email],
            "token": [tickets.sign(tickets.SEAT, seats[0].ticket_code),
                      tickets.sign(tickets.RESERVATION, reservations[1].ticket_code)],
            "kind": ["seat", "reservation"],
            "id": [seats[1].pk, reservations[1].pk],
            "start": [tomorrow_nine.isoformat(), (tomorrow_nine + timedelta(hours=2)).isoformat()],
            "end": [(tomorrow_nine + timedelta(hours=1)).isoformat(), (tomorrow_nine + timedelta(hours=3)).isoformat()],
            "first_date": [(day + timedelta(days=20)).isoformat()],
            "rule": ["FREQ=WEEKLY;COUNT=2", "FREQ=MONTHLY;BYDAY=SA;BYSETPOS=2,4;COUNT=4"],
        },
    }


def plant(case, data, world) -> None:
    """Swap some generated values for real ones, so requests get past "not found"."""
    for container, known in (("path_parameters", world["path"]), ("query", world["query"])):
        values = getattr(case, container)
        if isinstance(values, dict) and values and data.draw(st.booleans(), label=f"plant {container}"):
            for name in list(values):
                if name in known:
                    values[name] = data.draw(st.sampled_from(known[name]), label=name)
    if isinstance(case.body, dict) and data.draw(st.booleans(), label="plant body"):
        for name in list(case.body):
            if name in world["body"]:
                case.body[name] = data.draw(st.sampled_from(world["body"][name]), label=name)


class Tally:
    def __init__(self):
        self.operations = self.cases = self.server_errors = self.schema_violations = 0
        self.failures: list[str] = []
        self.statuses: Counter = Counter()

    def line(self, role: str, seconds: float) -> str:
        return (f"API fuzz as {role}: {self.operations} operations, {self.cases} cases, "
                f"{self.server_errors} server errors, {self.schema_violations} schema violations "
                f"({seconds:.0f}s; answers {dict(sorted(self.statuses.items()))})")


def fuzz_operation(operation, mode: GenerationMode, examples: int, headers: dict, world, tally: Tally):
    strategy = operation.as_strategy(generation_mode=mode)

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None, print_blob=False,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(case=strategy, data=st.data())
    def call(case, data: Any):
        plant(case, data, world)
        response = case.call(headers=dict(headers))
        tally.cases += 1
        tally.statuses[f"{response.status_code // 100}xx"] += 1
        if response.status_code >= 500:
            tally.server_errors += 1
        case.validate_response(response, checks=[not_a_server_error])
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except BaseException:  # schemathesis reports failures as an exception group
            tally.schema_violations += 1
            raise

    try:
        call()
    except Unsatisfiable:
        pass  # nothing to break in this operation's schema (no parameters, no body): no negative cases
    except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - collected and reported below
        tally.failures.append(f"{operation.label} [{mode.value}]: {failure}")


@pytest.mark.postgres
@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_5xx_or_breaks_its_schema(role, world, in_process_wsgi, postgres, capsys):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", in_process_wsgi)
    headers = {}
    if role != "anonymous":
        _, token = ApiToken.issue(world["users"][role], "fuzz")
        headers["Authorization"] = f"Bearer {token}"
    tally = Tally()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        tally.operations += 1
        fuzz_operation(operation, GenerationMode.POSITIVE, POSITIVE_EXAMPLES, headers, world, tally)
        fuzz_operation(operation, GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, headers, world, tally)
    summary = tally.line(role, time.monotonic() - started)
    with capsys.disabled():
        print(f"\n{summary}")
    assert not tally.failures, summary + "\n\n" + "\n\n".join(tally.failures)
