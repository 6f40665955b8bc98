"""The ingest's health for operators, and stale data shown as stale to technicians."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fablab_ops.machines.ingest import Incoming, apply_batch
from fablab_ops.machines.models import IngestHealth
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def laser(lab):
    return factories.MachineFactory(lab=lab, slug="laser-01")


def reports(machine, seqs, *, received_at=None, **fields):
    received_at = received_at or timezone.now()
    return [Incoming(f"fablab/{machine.lab.slug}/{machine.slug}/state",
                     json.dumps({"seq": seq, "boot": "b1", "ts": received_at.isoformat(), "state": "idle",
                                 **fields}).encode(), received_at) for seq in seqs]


@pytest.mark.django_db
def test_each_commit_adds_to_its_replicas_figures_with_one_more_statement(laser):
    received = timezone.now() - timedelta(seconds=3)
    apply_batch(reports(laser, [1], received_at=received), health_id="fablab-ingest-0")  # the first rows created
    with CaptureQueriesContext(connection) as without:
        apply_batch(reports(laser, range(2, 4), received_at=received))
    with CaptureQueriesContext(connection) as with_health:
        apply_batch(reports(laser, range(4, 7), received_at=received), health_id="fablab-ingest-0")
    assert len(with_health) == len(without) + 1
    apply_batch([*reports(laser, [5, 7], received_at=received + timedelta(seconds=1)),
                 Incoming("fablab/biic/laser-01/state", b"{", received),
                 Incoming("fablab/biic/laser-01/status", b"sleeping", received)], health_id="fablab-ingest-0")
    apply_batch([Incoming("fablab/biic/laser-01/state", b"[]", received)], health_id="fablab-ingest-0")
    health = IngestHealth.objects.get(client_id="fablab-ingest-0")
    assert (health.stored, health.duplicates) == (5, 1)
    assert health.quarantined == {"malformed_json": 1, "bad_status": 1, "not_an_object": 1}
    assert health.newest_received_at == received + timedelta(seconds=1)
    assert timezone.now() - health.last_commit_at < timedelta(seconds=10)


@pytest.mark.django_db
def test_the_health_command_prints_each_replica_and_fails_when_one_is_stuck(laser, capsys):
    now = timezone.now()
    apply_batch(reports(laser, [1], received_at=now), health_id="fablab-ingest-0")
    IngestHealth.objects.filter(client_id="fablab-ingest-0").update(alive_at=now)
    call_command("ingest_health")
    printed = capsys.readouterr().out
    assert "fablab-ingest-0: OK" in printed and "stored 1" in printed
    # Reports wait in its queue and it has committed nothing for three minutes: stuck.
    IngestHealth.objects.filter(client_id="fablab-ingest-0").update(
        queued=120, last_commit_at=now - timedelta(minutes=3))
    with pytest.raises(CommandError):
        call_command("ingest_health")
    assert "reports waiting" in capsys.readouterr().out
    # A replica that stopped saying it is alive (dead, or cut off from the database) fails too.
    IngestHealth.objects.filter(client_id="fablab-ingest-0").update(queued=0, alive_at=now - timedelta(minutes=5))
    with pytest.raises(CommandError):
        call_command("ingest_health")
    call_command("ingest_health", "--forget", "fablab-ingest-0")
    with pytest.raises(SystemExit) as exit_code:
        call_command("ingest_health")
    assert exit_code.value.code == 2


@pytest.mark.django_db
def test_a_technician_sees_a_silent_machines_data_as_stale(laser, technician):
    long_ago = timezone.now() - timedelta(minutes=12)
    apply_batch(reports(laser, [1], received_at=long_ago))
    page = client_for(technician).get("/machines/live/").content.decode()
    assert "Dữ liệu cũ: 12 phút" in page
    english = client_for(technician)
    english.cookies["django_language"] = "en"
    assert "Stale data: 12 min" in english.get("/machines/live/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_a_technician_is_told_when_the_ingest_lags(laser, technician):
    apply_batch(reports(laser, [1]))
    page = client_for(technician).get("/machines/live/").content.decode()
    assert "Dữ liệu cũ" not in page
    IngestHealth.objects.create(client_id="fablab-ingest-0", newest_received_at=timezone.now() - timedelta(minutes=7))
    page = client_for(technician).get("/machines/live/").content.decode()
    assert "Dữ liệu cũ: 7 phút." in page


@pytest.mark.django_db
def test_an_administrator_sees_the_replicas_and_the_usage_counters_in_the_admin(laser, admin_user):
    apply_batch(reports(laser, [1], run_s=30.0, energy_wh=2.5), health_id="fablab-ingest-0")
    admin = client_for(admin_user)
    page = admin.get("/admin/machines/ingesthealth/")
    assert page.status_code == 200 and "fablab-ingest-0" in page.content.decode()
    assert admin.get("/admin/machines/usagecounter/").status_code == 200
