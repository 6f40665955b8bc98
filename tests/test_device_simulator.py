"""The simulated machine behaves like the firmware: seq, boot, interlock, commands."""

import json
import random
import tempfile
import threading
import uuid
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from devices.simulator import LOCAL, SimulatedMachine
from devices.simulator import main as run_simulator
from fablab_ops.machines.ingest import StateReport, parse
from tests.mqtt_support import wait_for


def machine(**kwargs) -> SimulatedMachine:
    return SimulatedMachine("biic", "laser-01", "laser-cutter", rng=random.Random(7), **kwargs)


def test_each_report_has_the_next_seq_and_passes_the_service_parser():
    device = machine()
    now = datetime.now(LOCAL)
    reports = [device.report(now) for _ in range(5)]
    assert [r["seq"] for r in reports] == [1, 2, 3, 4, 5]
    for report in reports:
        assert isinstance(parse("fablab/biic/laser-01/state", json.dumps(report).encode()), StateReport)


def test_a_restart_changes_boot_and_starts_seq_again():
    device = machine()
    now = datetime.now(LOCAL)
    device.report(now)
    device.report(now)
    before = device.boot
    device.restart()
    assert device.boot != before
    assert device.report(now)["seq"] == 1


def test_an_interlocked_machine_runs_only_while_enabled_and_until_the_end():
    device = machine(interlock=True)
    now = datetime.now(LOCAL)
    for tick in range(2000):
        device.step(now, tick)
    assert device.state != "running"
    ack = device.handle_command(json.dumps({"action": "enable", "user": "Lan", "id": "c1",
                                            "until": (now + timedelta(hours=1)).isoformat()}).encode(), now)
    assert ack == {"id": "c1", "ok": True}
    for tick in range(2000, 4000):
        device.step(now, tick)
        if device.state == "running":
            break
    assert device.state == "running"
    device.step(now + timedelta(hours=2), 4001)
    assert device.state == "idle"


def test_disable_stops_a_running_interlocked_machine():
    device = machine(interlock=True)
    now = datetime.now(LOCAL)
    device.handle_command(json.dumps({"action": "enable", "id": "a", "until": (now + timedelta(hours=1))
                                      .isoformat()}).encode(), now)
    device.state = "running"
    assert device.handle_command(b'{"action": "disable", "id": "b"}', now)["ok"]
    assert device.state == "idle"


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"action": "enable", "id": "x"}',
                                     b'{"action": "explode", "id": "x"}'])
def test_a_malformed_command_is_answered_not_ok(payload):
    ack = machine().handle_command(payload, datetime.now(LOCAL))
    assert ack["ok"] is False and ack["reason"]


@pytest.mark.mqtt
def test_simulated_machines_speak_the_protocol_on_a_real_broker(mqtt_url):
    lab = f"sim{uuid.uuid4().hex[:6]}"
    host, port = mqtt_url.rsplit("/", 1)[1].split(":")
    registry = [{"lab": lab, "machine": "laser-01", "type": "laser-cutter", "interlock": True},
                {"lab": lab, "machine": "printer-01", "type": "printer-3d", "interlock": False}]
    received = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{lab}")
    client.on_message = lambda c, u, m: received.append((m.topic, m.payload))
    client.connect(host, int(port))
    client.subscribe(f"fablab/{lab}/#", qos=1)
    client.loop_start()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(registry, handle)
    thread = threading.Thread(target=run_simulator, args=([
        "--registry", handle.name, "--machines", "2", "--rate", "5", "--duration", "4", "--url", mqtt_url],),
        daemon=True)
    thread.start()
    try:
        wait_for(lambda: any(t.endswith("/status") and p == b"online" for t, p in received), 10, "no online")
        client.publish(f"fablab/{lab}/laser-01/command", json.dumps({
            "action": "enable", "user": "Lan", "id": "cmd-1",
            "until": (datetime.now(LOCAL) + timedelta(minutes=5)).isoformat()}), qos=1)
        wait_for(lambda: any(t.endswith("/ack") for t, _ in received), 10, "no ack")
    finally:
        thread.join(timeout=15)
        client.loop_stop()
        client.disconnect()
    acks = [json.loads(p) for t, p in received if t.endswith("/ack")]
    assert acks == [{"id": "cmd-1", "ok": True}]
    seqs = [json.loads(p)["seq"] for t, p in received if t == f"fablab/{lab}/printer-01/state"]
    assert len(seqs) >= 5 and seqs == list(range(1, len(seqs) + 1))
    assert (f"fablab/{lab}/printer-01/status", b"offline") in received  # said goodbye on stop
