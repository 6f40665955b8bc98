"""Machine telemetry: what a message means, without a broker."""

import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.booking.models import ReservationStatus
from fablab_ops.machines import ingest, services
from fablab_ops.machines.ingest import Incoming, Rejection, StateReport, apply_batch, parse
from fablab_ops.machines.models import (
    MachineAlert,
    MachineLiveStatus,
    MachineUsageDay,
    QuarantinedMessage,
    TelemetryMessage,
    UsageSession,
)
from tests import factories
from tests.conftest import client_for


def state(seq, state="idle", *, boot="b1", at=None, **extra) -> bytes:
    at = at or timezone.now()
    return json.dumps({"seq": seq, "boot": boot, "ts": at.isoformat(), "state": state, **extra}).encode()


@pytest.fixture
def laser(lab, technician):
    return factories.MachineFactory(lab=lab, slug="laser-01")


def send(machine, *payloads, kind="state", received_at=None):
    topic = f"fablab/{machine.lab.slug}/{machine.slug}/{kind}"
    now = received_at or timezone.now()
    return apply_batch([Incoming(topic, payload, now) for payload in payloads])


class TestParsing:
    def test_a_well_formed_state_report(self):
        now = timezone.now()
        parsed = parse("fablab/biic/laser-01/state", state(7, "running", at=now, power_w=1250.5, job="hop-go"))
        assert parsed == StateReport("biic", "laser-01", "b1", 7, now, "running", 1250.5, "hop-go")

    def test_unix_milliseconds_are_accepted_as_time(self):
        parsed = parse("fablab/biic/laser-01/state",
                       json.dumps({"seq": 1, "boot": 42, "ts": 1_790_000_000_000, "state": "idle"}).encode())
        assert parsed.ts.timestamp() == 1_790_000_000 and parsed.boot == "42"

    @pytest.mark.parametrize("topic, payload, reason", [
        ("fablab/biic/laser-01/state", b"{not json", "malformed_json"),
        ("fablab/biic/laser-01/state", b"[1, 2]", "not_an_object"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "state": "idle"}', "missing_field"),
        ("fablab/biic/laser-01/state", b'{"seq": "1", "boot": 1, "ts": 0, "state": "idle"}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "ts": 0, "state": "dancing"}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "ts": 0, "state": ["idle"]}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": true, "boot": 1, "ts": 0, "state": "idle"}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": false, "ts": 0, "state": "idle"}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "ts": true, "state": "idle"}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "ts": 0, "state": "idle", "power_w": NaN}',
         "malformed_json"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": "\xff", "ts": 0, "state": "idle"}', "malformed_json"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "ts": "yesterday", "state": "idle"}', "wrong_type"),
        ("fablab/biic/laser-01/state", b'{"seq": 1, "boot": 1, "ts": 0, "state": "idle", "power_w": -5}',
         "wrong_type"),
        ("fablab/biic/laser-01/state", b"x" * 5000, "oversized"),
        ("fablab/biic/laser-01/state",
         b'{"seq": 1, "boot": 1, "ts": 0, "state": "idle", "device": "eiu.laser-01"}', "wrong_publisher"),
        ("fablab/biic/state", b"{}", "bad_topic"),
        ("other/biic/laser-01/state", b"{}", "bad_topic"),
        ("fablab/biic/laser-01/status", b"sleeping", "bad_status"),
    ])
    def test_bad_input_is_refused_with_its_reason(self, topic, payload, reason):
        parsed = parse(topic, payload)
        assert isinstance(parsed, Rejection) and parsed.reason == reason


@pytest.mark.django_db
def test_a_message_is_stored_once_whatever_the_redeliveries(laser):
    payload = state(1)
    first = send(laser, payload)
    again = send(laser, payload, payload)
    assert (first.stored, again.stored, again.duplicates) == (1, 0, 2)
    assert TelemetryMessage.objects.filter(machine=laser).count() == 1
    assert MachineLiveStatus.objects.get(machine=laser).messages == 1


@pytest.mark.django_db
def test_bad_messages_never_become_telemetry_but_are_kept_by_reason(laser, lab):
    result = apply_batch([
        Incoming(f"fablab/{lab.slug}/laser-01/state", b"{oops", timezone.now()),
        Incoming(f"fablab/{lab.slug}/ghost-99/state", state(1), timezone.now()),
        Incoming(f"fablab/{lab.slug}/laser-01/state", state(1), timezone.now()),
    ])
    assert result.stored == 1
    assert result.rejected == {"malformed_json": 1, "unknown_machine": 1}
    kept = dict(QuarantinedMessage.objects.values_list("reason", "payload"))
    assert kept["malformed_json"] == "{oops"


@pytest.mark.django_db
def test_a_message_the_handler_trips_over_is_quarantined_and_the_rest_of_the_batch_stored(laser, monkeypatch):
    real_parse = ingest.parse

    def parse_with_a_slip(topic, payload):
        if b"odd" in payload:
            raise RecursionError("a slip in the handler")
        return real_parse(topic, payload)

    monkeypatch.setattr(ingest, "parse", parse_with_a_slip)
    topic = f"fablab/{laser.lab.slug}/laser-01/state"
    result = apply_batch([Incoming(topic, state(1, job="odd"), timezone.now()),
                          Incoming(topic, state(2), timezone.now())])
    assert (result.stored, result.rejected) == (1, {"handler_error": 1})
    assert QuarantinedMessage.objects.get().reason == "handler_error"


@pytest.mark.django_db
def test_gaps_in_seq_are_counted_and_a_restart_is_not_a_gap(laser):
    send(laser, state(1), state(2), state(5))
    assert MachineLiveStatus.objects.get(machine=laser).lost_messages == 2
    send(laser, state(1, boot="b2"), state(2, boot="b2"))
    live = MachineLiveStatus.objects.get(machine=laser)
    assert (live.lost_messages, live.restarts, live.boot, live.last_seq) == (2, 1, "b2", 2)


@pytest.mark.django_db
def test_a_stream_split_between_two_ingests_counts_no_false_gaps(laser):
    """One machine's reports in two interleaved halves (two writers while the replicas change, or redeliveries)."""
    send(laser, state(1), state(3), state(5))
    assert MachineLiveStatus.objects.get(machine=laser).lost_messages == 2
    send(laser, state(2), state(4), state(6))
    assert MachineLiveStatus.objects.get(machine=laser).lost_messages == 0


@pytest.mark.django_db
def test_a_late_message_is_placed_by_its_own_time_and_does_not_roll_the_state_back(laser):
    now = timezone.now()
    send(laser, state(2, "idle", at=now))
    send(laser, state(1, "running", at=now - timedelta(seconds=30)))
    late = TelemetryMessage.objects.get(machine=laser, seq=1)
    assert late.at == now - timedelta(seconds=30)
    assert MachineLiveStatus.objects.get(machine=laser).state == "idle"


@pytest.mark.django_db
def test_a_device_clock_far_off_is_flagged_and_receive_time_used(laser):
    received = timezone.now()
    send(laser, state(1, at=received - timedelta(hours=3)), received_at=received)
    row = TelemetryMessage.objects.get(machine=laser)
    assert row.clock_skewed and row.at == received
    assert MachineLiveStatus.objects.get(machine=laser).clock_skews == 1


@pytest.mark.django_db
def test_running_periods_become_usage_sessions_attributed_to_the_checked_in_learner(laser, learner):
    start = timezone.now() - timedelta(minutes=50)
    factories.ReservationFactory(machine=laser, user=learner, start=start - timedelta(minutes=5),
                                 end=start + timedelta(hours=1), status=ReservationStatus.CHECKED_IN,
                                 checked_in_at=start - timedelta(minutes=5))
    for seq, what, minutes in [(1, "idle", -1), (2, "running", 0), (3, "running", 20), (4, "idle", 45)]:
        at = start + timedelta(minutes=minutes)
        send(laser, state(seq, what, at=at), received_at=at)
    session = UsageSession.objects.get(machine=laser)
    assert session.user == learner and session.reservation is not None
    assert session.hours == pytest.approx(0.75)
    running = MachineUsageDay.objects.filter(machine=laser).values_list("running_seconds", flat=True)
    assert sum(running) == pytest.approx(45 * 60)  # split at local midnight when the period crosses it
    assert not MachineAlert.objects.filter(kind="unauthorised_use").exists()


@pytest.mark.django_db
def test_a_backlog_with_two_running_periods_in_one_batch_gives_two_sessions_each_attributed(
        laser, learner, technician):
    start = timezone.now() - timedelta(hours=2)
    factories.ReservationFactory(machine=laser, user=learner, start=start, end=start + timedelta(minutes=30),
                                 status=ReservationStatus.CHECKED_IN, checked_in_at=start)
    topic = f"fablab/{laser.lab.slug}/{laser.slug}/state"
    reports = [(1, "idle", 0), (2, "running", 5), (3, "idle", 20), (4, "running", 40), (5, "idle", 70)]
    # An ingest catching up after an outage gets them all at once, each still carrying its own time.
    apply_batch([Incoming(topic, state(seq, what, at=start + timedelta(minutes=minutes)),
                          start + timedelta(minutes=minutes, seconds=1)) for seq, what, minutes in reports])
    first, second = UsageSession.objects.filter(machine=laser).order_by("start")
    assert (first.user, first.hours) == (learner, pytest.approx(0.25))
    assert (second.user, second.hours) == (None, pytest.approx(0.5))
    running = MachineUsageDay.objects.filter(machine=laser).values_list("running_seconds", flat=True)
    assert sum(running) == pytest.approx(45 * 60)  # split at local midnight when the period crosses it
    unauthorised = MachineAlert.objects.get(machine=laser, kind="unauthorised_use")
    assert unauthorised.resolved_at is not None  # raised and cleared within the batch, and kept
    assert Notification.objects.filter(user=technician, kind="machine_alert").count() == 1
    assert MachineLiveStatus.objects.get(machine=laser).state == "idle"


@pytest.mark.django_db
def test_running_without_a_checked_in_reservation_alerts_the_labs_technicians(laser, technician):
    send(laser, state(1, "running"))
    alert = MachineAlert.objects.get(machine=laser, kind="unauthorised_use")
    assert alert.resolved_at is None
    assert Notification.objects.filter(user=technician, kind="machine_alert").count() == 1
    send(laser, state(2, "running"))  # still running: no second alert
    assert Notification.objects.filter(user=technician, kind="machine_alert").count() == 1


@pytest.mark.django_db
def test_an_error_warns_holders_of_upcoming_reservations_before_they_travel(laser, learner):
    factories.ReservationFactory(machine=laser, user=learner, start=timezone.now() + timedelta(hours=3),
                                 end=timezone.now() + timedelta(hours=4))
    send(laser, state(1, "error"))
    assert Notification.objects.filter(user=learner, kind="reservation_machine_trouble").count() == 1
    send(laser, state(2, "idle"))
    assert MachineAlert.objects.get(machine=laser, kind="error").resolved_at is not None


@pytest.mark.django_db
def test_a_usage_day_is_split_at_local_midnight(laser):
    midnight = timezone.make_aware(timezone.datetime(2026, 10, 31, 23, 30))
    services.add_running_time(laser.pk, midnight, midnight + timedelta(hours=1))
    days = dict(MachineUsageDay.objects.filter(machine=laser).values_list("day", "running_seconds"))
    assert days == {midnight.date(): 1800, (midnight + timedelta(days=1)).date(): 1800}


@pytest.mark.django_db
def test_silence_past_the_heartbeat_timeout_means_offline_and_closes_the_running_period(laser):
    long_ago = timezone.now() - timedelta(minutes=10)
    send(laser, state(1, "running", at=long_ago), received_at=long_ago)
    assert services.mark_silent_machines_offline() == 1
    live = MachineLiveStatus.objects.get(machine=laser)
    assert not live.online
    assert UsageSession.objects.get(machine=laser).end == long_ago


@pytest.mark.django_db
def test_the_last_will_marks_a_machine_offline(laser):
    send(laser, b"online", kind="status")
    assert MachineLiveStatus.objects.get(machine=laser).online
    send(laser, b"offline", kind="status")
    assert not MachineLiveStatus.objects.get(machine=laser).online


@pytest.mark.django_db
def test_running_hours_flag_maintenance_and_a_log_resets_them(laser, technician):
    laser.maintenance_interval_hours = 2
    laser.save()
    start = timezone.now() - timedelta(hours=3)
    send(laser, state(1, "running", at=start), received_at=start)
    send(laser, state(2, "idle", at=start + timedelta(hours=2, minutes=30)),
         received_at=start + timedelta(hours=2, minutes=30))
    assert MachineLiveStatus.objects.get(machine=laser).maintenance_due
    assert MachineAlert.objects.filter(machine=laser, kind="maintenance_due", resolved_at__isnull=True).exists()
    response = client_for(technician).post(f"/api/machines/{laser.lab.slug}/{laser.slug}/maintenance-done",
                                           {"note": "Lau gương, căn chỉnh tia"}, content_type="application/json")
    assert response.status_code == 201 and response.json()["running_hours"] == pytest.approx(2.5, abs=0.01)
    assert services.running_hours_since_maintenance(laser) == 0
    assert not MachineLiveStatus.objects.get(machine=laser).maintenance_due


@pytest.mark.django_db
def test_acks_are_recorded_on_the_command(laser):
    from fablab_ops.machines.commands import new_command

    command = new_command(laser, "enable", user_display="Lan", until=timezone.now() + timedelta(hours=1))
    send(laser, json.dumps({"id": command.command_id, "ok": True}).encode(), kind="ack")
    command.refresh_from_db()
    assert command.acked_at is not None and command.ack_ok is True


@pytest.mark.django_db
def test_technicians_see_live_status_and_usage_of_their_labs_only(laser, technician, learner, other_lab):
    send(laser, state(1, "idle", power_w=12.5))
    rows = client_for(technician).get("/api/machines/live").json()
    assert [(r["machine"], r["online"], r["power_w"]) for r in rows] == [("laser-01", True, 12.5)]
    assert client_for(learner).get("/api/machines/live").status_code == 403
    stranger = factories.TechnicianFactory(labs=[other_lab])
    assert client_for(stranger).get("/api/machines/live", {"lab": laser.lab.slug}).status_code == 403
    today = timezone.localdate().isoformat()
    usage = client_for(technician).get("/api/machines/usage", {"date_from": today, "date_to": today})
    assert usage.status_code == 200
    assert client_for(technician).get("/machines/live/").status_code == 200


@pytest.mark.django_db
def test_the_live_board_costs_the_same_queries_for_a_lab_of_twenty_machines_as_for_one(laser, technician):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    send(laser, state(1, "running"))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            board = services.live_board(laser.lab)
        return len(captured), len(board)

    one = queries()
    for n in range(19):
        machine = factories.MachineFactory(lab=laser.lab, slug=f"printer-{n:02d}")
        send(machine, state(1, "running"))
    assert queries() == (one[0], 20)


@pytest.mark.django_db
def test_deleting_a_machine_deletes_its_telemetry(lab):
    machine = factories.MachineFactory(lab=lab, slug="printer-09")
    send(machine, state(1, "idle"), state(2, "running"))
    assert TelemetryMessage.objects.filter(machine_id=machine.pk).count() == 2
    machine_id = machine.pk
    machine.delete()
    assert not TelemetryMessage.objects.filter(machine_id=machine_id).exists()


def test_the_ingest_starts_without_celery_the_admin_or_the_api():
    """The ingest is timed from its start when it catches up on a backlog (a broker restart, a deploy): the
    process that starts it loads what storing telemetry needs, not the task queue, the admin or the HTTP API."""
    probe = ("import sys, django; django.setup(); import fablab_ops.machines.management.commands.mqtt_ingest; "
             "print(' '.join(sorted(name for name in ('celery', 'ninja', 'pydantic', 'icalendar', "
             "'fablab_ops.courses.services', 'fablab_ops.booking.tasks', 'fablab_ops.booking.admin') "
             "if name in sys.modules)))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "fablab_ops.settings", "DEBUG": "0",
           "SECRET_KEY": secrets.token_urlsafe(50)}
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parent.parent, env=env,
                            capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert loaded == []
