"""Device credentials survive provisioning, and the ACL keeps each device to its own topics (real Mosquitto)."""

import json
import stat
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command

from tests import factories
from tests.mqtt_support import PrivateBroker, wait_for


def provision(output_dir, *args) -> list[dict]:
    call_command("mqtt_credentials", "--output-dir", str(output_dir), *args)
    return json.loads((output_dir / "devices.json").read_text())


def passwords(registry: list[dict]) -> dict[str, str]:
    return {entry["username"]: entry["password"] for entry in registry}


def login(port, username, password) -> mqtt.Client:
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{username}-{uuid.uuid4().hex[:6]}")
    client.username_pw_set(username, password)
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not connected.wait(5):
        client.loop_stop()
        raise AssertionError(f"{username} could not log in")
    return client


@pytest.mark.mqtt
@pytest.mark.django_db
def test_running_the_provisioning_again_keeps_every_devices_password(mqtt_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MQTT_SERVICE_PASSWORD", "service-secret")
    lab = factories.LabFactory(slug="biic")
    factories.MachineFactory(lab=lab, slug="laser-01")
    factories.MachineFactory(lab=lab, slug="printer-01")
    auth = tmp_path / "auth"
    first = passwords(provision(auth))
    assert set(first) == {"biic.laser-01", "biic.printer-01"} and all(first.values())
    assert stat.S_IMODE((auth / "devices.json").stat().st_mode) == 0o600
    assert passwords(provision(auth)) == first  # compose's `setup` runs it on every `up`
    factories.MachineFactory(lab=lab, slug="cnc-01")
    third = passwords(provision(auth))
    assert {k: v for k, v in third.items() if k != "biic.cnc-01"} == first and third["biic.cnc-01"]
    broker = PrivateBroker(tmp_path, extra=f"allow_anonymous false\npassword_file {auth}/passwd\n"
                                           f"acl_file {auth}/acl").start()
    try:
        login(broker.port, "biic.laser-01", first["biic.laser-01"]).disconnect()  # the first run's password
        rotated = passwords(provision(auth, "--rotate", "biic/laser-01"))
        assert rotated["biic.laser-01"] != first["biic.laser-01"]
        assert {k: v for k, v in rotated.items() if k != "biic.laser-01"} == \
            {k: v for k, v in third.items() if k != "biic.laser-01"}
        broker.stop()
        broker.start()
        with pytest.raises(AssertionError):
            login(broker.port, "biic.laser-01", first["biic.laser-01"])
        login(broker.port, "biic.laser-01", rotated["biic.laser-01"]).disconnect()
    finally:
        broker.stop()


@pytest.mark.mqtt
@pytest.mark.django_db
def test_a_device_reads_only_its_own_desired_state(mqtt_url, tmp_path, monkeypatch):
    monkeypatch.setenv("MQTT_SERVICE_PASSWORD", "service-secret")
    lab = factories.LabFactory(slug="biic")
    factories.MachineFactory(lab=lab, slug="laser-01")
    factories.MachineFactory(lab=lab, slug="printer-01")
    auth = tmp_path / "auth"
    devices = {e["username"]: e["password"] for e in provision(auth)}
    broker = PrivateBroker(tmp_path, extra=f"allow_anonymous false\npassword_file {auth}/passwd\n"
                                           f"acl_file {auth}/acl").start()
    try:
        service = login(broker.port, "service", "service-secret")
        for machine in ("laser-01", "printer-01"):
            service.publish(f"fablab/biic/{machine}/desired", json.dumps({"v": 1, "holder": None}), qos=1,
                            retain=True).wait_for_publish(5)
        seen = []
        device = login(broker.port, "biic.laser-01", devices["biic.laser-01"])
        device.on_message = lambda c, u, m: seen.append(m.topic)
        device.subscribe("fablab/biic/printer-01/desired", qos=1)
        device.subscribe("fablab/biic/laser-01/desired", qos=1)
        device.subscribe("fablab/+/+/desired", qos=1)
        wait_for(lambda: "fablab/biic/laser-01/desired" in seen, 10, "the device's own retained desired state")
        threading.Event().wait(1)
        assert set(seen) == {"fablab/biic/laser-01/desired"}
        # Nor may a device write a desired state, its own included.
        device.publish("fablab/biic/laser-01/desired", json.dumps({"v": 99, "holder": "x"}), qos=1, retain=True)
        threading.Event().wait(0.5)
        watcher = login(broker.port, "biic.laser-01", devices["biic.laser-01"])
        got = []
        watcher.on_message = lambda c, u, m: got.append(json.loads(m.payload)["v"])
        watcher.subscribe("fablab/biic/laser-01/desired", qos=1)
        wait_for(lambda: got, 10, "the retained state")
        assert got == [1]
    finally:
        broker.stop()
