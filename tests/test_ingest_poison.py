"""One message must never stop the telemetry of the whole network.

Each test is a device (or an attacker on a device's credentials) sending something the
service cannot store or makes no sense of: it is refused with its reason, kept in the
quarantine, and every other report of the batch is stored.
"""

import json
from datetime import timedelta

import psycopg
import pytest
from django.db import DataError, transaction
from django.utils import timezone

from fablab_ops.machines import ingest
from fablab_ops.machines.ingest import Incoming, Rejection, apply_batch, parse, store
from fablab_ops.machines.models import IngestHealth, MachineLiveStatus, QuarantinedMessage, TelemetryMessage
from tests import factories
from tests.conftest import client_for

TOPIC = "fablab/biic/laser-01/state"


def report(seq=1, **fields) -> dict:
    return {"seq": seq, "boot": "b1", "ts": timezone.now().isoformat(), "state": "idle", **fields}


def raw(body: dict) -> bytes:
    return json.dumps(body).encode()


@pytest.fixture
def laser(lab):
    return factories.MachineFactory(lab=lab, slug="laser-01")


def batch(machine, *payloads, kind="state"):
    topic = f"fablab/{machine.lab.slug}/{machine.slug}/{kind}"
    return [Incoming(topic, payload, timezone.now()) for payload in payloads]


class TestWhatParseRefuses:
    @pytest.mark.parametrize("fields, why", [
        ({"job": "bracket\x00-125"}, "job"),
        ({"job": "bracket\x1b[2J"}, "job"),
        ({"job": "line\nbreak"}, "job"),
        ({"boot": "b\x00"}, "boot"),
        ({"boot": "b\t1"}, "boot"),
        ({"device": "biic.laser-01\x00"}, "publish"),
        ({"seq": 2**64 - 1}, "seq"),
        ({"seq": 2**53 + 1}, "seq"),
        ({"seq": -1}, "seq"),
        ({"boot": 2**64}, "boot"),
        ({"power_w": 1e300}, "power_w"),
        ({"run_s": -1}, "run_s"),
        ({"energy_wh": 2**60}, "energy_wh"),
        ({"desired_v": 1.5}, "desired_v"),
        ({"desired_v": 2**63}, "desired_v"),
        ({"ts": "9999-12-31T23:59:59Z"}, "ts"),
        ({"ts": "1970-01-01T00:00:00Z"}, "ts"),
        ({"ts": 253_402_300_799_000}, "ts"),
    ])
    def test_a_report_the_database_could_not_store_or_that_makes_no_sense_is_refused(self, fields, why):
        parsed = parse(TOPIC, raw(report(**fields)))
        assert isinstance(parsed, Rejection), parsed
        assert parsed.reason in ("wrong_type", "wrong_publisher") and why[:4] in parsed.detail

    def test_the_largest_integers_the_protocol_allows_are_accepted(self):
        parsed = parse(TOPIC, raw(report(seq=2**53, boot=2**53, run_s=2**53, desired_v=2**53)))
        assert (parsed.seq, parsed.boot, parsed.run_s, parsed.desired_v) == (2**53, str(2**53), 2**53, 2**53)

    def test_a_lone_surrogate_is_refused_as_malformed(self):
        assert parse(TOPIC, b'{"seq": 1, "boot": "\\ud800", "ts": 0, "state": "idle"}').reason == "malformed_json"

    def test_an_ack_with_a_nul_in_its_id_is_refused(self):
        parsed = parse("fablab/biic/laser-01/ack", raw({"id": "a\x00b", "ok": True}))
        assert isinstance(parsed, Rejection) and parsed.reason == "wrong_type"

    def test_a_protocol_2_ack_names_the_version(self):
        parsed = parse("fablab/biic/laser-01/ack", raw({"v": 12, "ok": True}))
        assert (parsed.v, parsed.ok) == (12, True)


@pytest.mark.django_db
@pytest.mark.parametrize("poison", [
    raw(report(seq=2, job="bracket\x00-125")),
    raw(report(seq=2, boot="b\x00")),
    raw(report(seq=2**64 - 1)),
    raw(report(seq=2, ts="9999-12-31T23:59:59Z")),
    b'{"seq": 2, "boot": "b1", "state": "idle", "job": "\x00 not json',
    b"\x00\xff\xfe{{",
])
def test_a_poison_report_is_quarantined_and_the_rest_of_its_batch_stored(laser, poison):
    result = apply_batch(batch(laser, raw(report(seq=1)), poison, raw(report(seq=3))))
    assert result.stored == 2 and sum(result.rejected.values()) == 1
    assert sorted(TelemetryMessage.objects.filter(machine=laser).values_list("seq", flat=True)) == [1, 3]
    kept = QuarantinedMessage.objects.get()
    assert "\x00" not in kept.payload and kept.payload_size == len(poison)


@pytest.mark.django_db
def test_a_status_with_a_nul_is_quarantined_escaped(laser):
    result = apply_batch(batch(laser, b"online\x00\xff", kind="status"))
    assert result.rejected == {"bad_status": 1}
    kept = QuarantinedMessage.objects.get()
    assert kept.reason == "bad_status" and "\x00" not in kept.payload and "\x00" not in kept.detail
    assert kept.payload.startswith("online\\x00")


@pytest.mark.django_db
def test_a_topic_with_control_characters_is_quarantined(laser):
    result = apply_batch([Incoming("fablab/biic/laser\x00-01/state", raw(report()), timezone.now())])
    assert result.rejected == {"bad_topic": 1}
    assert "\x00" not in QuarantinedMessage.objects.get().topic


@pytest.mark.django_db
def test_two_valid_reports_whose_seq_jump_by_2_to_the_63_cannot_overflow_the_lost_count(laser):
    result = apply_batch(batch(laser, raw(report(seq=1)), raw(report(seq=2**63 + 1))))
    assert result.stored == 1 and result.rejected == {"wrong_type": 1}
    # The largest jump the protocol allows, again and again over many boots: counted, capped, stored.
    for boot in range(5):
        apply_batch(batch(laser, raw(report(seq=1, boot=f"r{boot}")), raw(report(seq=2**53, boot=f"r{boot}"))))
    live = MachineLiveStatus.objects.get(machine=laser)
    assert live.lost_messages == 2**53


@pytest.mark.django_db
def test_a_report_dated_year_9999_leaves_the_telemetry_admin_page_working(laser, admin_user):
    apply_batch(batch(laser, raw(report(seq=1)), raw(report(seq=2, ts="9999-12-31T23:59:59+00:00")),
                      raw(report(seq=3, ts=253_402_300_799_000))))
    admin = client_for(admin_user)
    assert admin.get("/admin/machines/telemetrymessage/").status_code == 200
    for row in TelemetryMessage.objects.all():
        assert admin.get(f"/admin/machines/telemetrymessage/{row.pk}/change/").status_code == 200
    assert admin.get("/admin/machines/quarantinedmessage/").status_code == 200


@pytest.mark.django_db
def test_a_batch_the_database_refuses_is_split_until_the_offending_message_is_found(laser, postgres):
    """A message that passes `parse` but that the database refuses: only it is quarantined, with the reason."""
    with postgres.cursor() as cursor:  # a rule of the database's own, as a future constraint would be
        cursor.execute("ALTER TABLE machines_telemetrymessage ADD CONSTRAINT no_refused_jobs CHECK (job <> 'refused')")
    payloads = [raw(report(seq=seq, job="refused" if seq in (7, 16) else "")) for seq in range(1, 21)]
    result = store(batch(laser, *payloads), health_id="fablab-ingest-0")
    assert (result.stored, result.rejected) == (18, {"handler_error": 2})
    kept = QuarantinedMessage.objects.order_by("pk")
    assert [json.loads(k.payload)["seq"] for k in kept] == [7, 16]
    assert all(k.reason == "handler_error" and "no_refused_jobs" in k.detail for k in kept)
    assert TelemetryMessage.objects.filter(machine=laser).count() == 18
    assert MachineLiveStatus.objects.get(machine=laser).messages == 18
    health = IngestHealth.objects.get()
    assert (health.stored, health.quarantined) == (18, {"handler_error": 2})


@pytest.mark.django_db
def test_only_an_unreachable_database_is_worth_retrying_a_batch_for(postgres):
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/fablab", connect_timeout=2)
    assert ingest.connection_lost(refused.value)
    with pytest.raises(DataError) as division, transaction.atomic(), postgres.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")
    assert not ingest.connection_lost(division.value)


@pytest.mark.django_db
def test_a_poison_report_with_a_future_clock_never_reaches_the_live_board(laser, technician):
    apply_batch(batch(laser, raw(report(seq=1, ts=(timezone.now() + timedelta(days=365 * 70)).isoformat()))))
    assert client_for(technician).get("/machines/live/").status_code == 200
