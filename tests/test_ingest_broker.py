"""The ingest against real Mosquitto brokers: exactly once, through crashes and broker restarts."""

import json
import signal
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.db import connection

from fablab_ops.machines import consumer, credentials
from fablab_ops.machines.consumer import Ingest
from fablab_ops.machines.models import MachineLiveStatus, TelemetryMessage
from tests import factories
from tests.mqtt_support import (
    PrivateBroker,
    Publisher,
    ingest_process,
    publish_acknowledged,
    run_in_thread,
    subscriptions_held,
    wait_for,
)

pytestmark = pytest.mark.mqtt


def stored(machine) -> int:
    connection.close()  # see the other process's commits, not a stale snapshot
    return TelemetryMessage.objects.filter(machine=machine).count()


def unique_machine():
    lab = factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}")
    return factories.MachineFactory(lab=lab, slug="printer-01")


@pytest.mark.django_db(transaction=True)
def test_messages_published_at_qos1_are_stored_exactly_once(mqtt_url, postgres):
    machine = unique_machine()
    ingest = Ingest(url=mqtt_url, client_id=f"test-ingest-{uuid.uuid4().hex[:8]}", protocol="5")
    thread, _outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        publish_acknowledged(int(mqtt_url.rsplit(":", 1)[1]), machine.lab.slug, machine.slug, 300, rate=2000)
        wait_for(lambda: stored(machine) == 300, 30, "not every message was stored")
    finally:
        ingest.stop()
        thread.join(timeout=30)
    assert sorted(TelemetryMessage.objects.filter(machine=machine).values_list("seq", flat=True)) == list(
        range(1, 301))
    assert MachineLiveStatus.objects.get(machine=machine).lost_messages == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("puback", ["bulk", "ack() fallback"])
def test_what_the_ingest_stored_is_acknowledged_so_its_next_session_gets_nothing_again(
        mqtt_url, postgres, tmp_path, monkeypatch, puback):
    if puback != "bulk":  # as if paho had changed: its packet queue gone, each message acknowledged with ack()
        monkeypatch.setattr(consumer, "PACKET_QUEUE", "_no_such_method")
    machine = unique_machine()
    broker = PrivateBroker(tmp_path).start()
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    ingest = Ingest(url=broker.url, client_id=client_id, protocol="3.1.1", batch_size=300)
    assert (ingest._queue_packet is not None) == (puback == "bulk")
    thread, _outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        publish_acknowledged(broker.port, machine.lab.slug, machine.slug, 1000, rate=5000)
        wait_for(lambda: stored(machine) == 1000, 30, "not every message was stored")
        ingest.stop()
        thread.join(timeout=30)
        # The same persistent session again: anything never acknowledged would be redelivered now.
        redelivered = []
        connected = threading.Event()
        again = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        again.on_connect = lambda *args: connected.set()
        again.on_message = lambda client, userdata, message: redelivered.append(message.payload)
        again.connect("127.0.0.1", broker.port)
        again.loop_start()
        assert connected.wait(10)
        probe = Publisher(broker.port, machine.lab.slug, machine.slug)
        probe.publish_stream(1, boot="probe")  # arrives after any redelivery: the session is live and subscribed
        probe.wait_acknowledged()
        probe.close()
        wait_for(lambda: redelivered, 10, "the session was not subscribed any more")
        again.loop_stop()
        again.disconnect()
    finally:
        ingest.stop()
        thread.join(timeout=30)
        broker.stop()
    assert [json.loads(payload)["boot"] for payload in redelivered] == ["probe"]


@pytest.mark.django_db(transaction=True)
def test_an_ingest_killed_mid_stream_and_restarted_loses_and_doubles_nothing(mqtt_url, postgres, tmp_path):
    machine = unique_machine()
    broker = PrivateBroker(tmp_path).start()
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    ingest = ingest_process(broker.url, client_id, "--protocol", "3.1.1")
    try:
        wait_for(lambda: _subscribed(broker.port), 20, "the ingest never subscribed")
        publisher = Publisher(broker.port, machine.lab.slug, machine.slug)
        killed = threading.Event()

        def kill_midway(seq):
            if seq == 1000 and not killed.is_set():
                ingest.send_signal(signal.SIGKILL)
                killed.set()

        publisher.publish_stream(3000, rate=1500, on_progress=kill_midway)
        ingest.wait(timeout=10)
        assert stored(machine) < 3000, "the kill came too late to test anything"
        # Same client id: the same persistent session.
        ingest = ingest_process(broker.url, client_id, "--protocol", "3.1.1")
        publisher.wait_acknowledged()
        publisher.close()
        wait_for(lambda: stored(machine) == 3000, 60, f"lost messages: {3000 - stored(machine)}")
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)
        broker.stop()
    seqs = list(TelemetryMessage.objects.filter(machine=machine).values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) == 3000


@pytest.mark.django_db(transaction=True)
def test_the_broker_restarted_mid_stream_loses_and_doubles_nothing(mqtt_url, postgres, tmp_path):
    machine = unique_machine()
    broker = PrivateBroker(tmp_path).start()
    ingest = ingest_process(broker.url, f"ingest-{uuid.uuid4().hex[:8]}", "--protocol", "3.1.1")
    try:
        wait_for(lambda: _subscribed(broker.port), 20, "the ingest never subscribed")
        publisher = Publisher(broker.port, machine.lab.slug, machine.slug)
        restarted = threading.Event()

        def restart_midway(seq):
            if seq == 1000 and not restarted.is_set():
                broker.stop()
                broker.start()
                restarted.set()

        publisher.publish_stream(2000, rate=1000, on_progress=restart_midway)
        publisher.wait_acknowledged(90)
        publisher.close()
        wait_for(lambda: stored(machine) == 2000, 90, f"lost messages: {2000 - stored(machine)}")
    finally:
        ingest.terminate()
        ingest.wait(timeout=30)
        broker.stop()
    seqs = list(TelemetryMessage.objects.filter(machine=machine).values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) == 2000


def _subscribed(port: int) -> bool:
    """True once a probe message on a telemetry topic is consumed by someone (the ingest)."""
    probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
    try:
        probe.connect("127.0.0.1", port)
    except OSError:
        return False
    probe.loop_start()
    # The ingest's session is created on its first subscribe; a retained status is enough to tell.
    info = probe.publish("fablab/probe/probe/status", "online", qos=1, retain=True)
    info.wait_for_publish(5)
    probe.loop_stop()
    probe.disconnect()
    return subscriptions_held(port) >= 3


@pytest.mark.django_db
def test_generated_credentials_let_a_device_publish_only_its_own_topics(mqtt_url, tmp_path):
    lab = factories.LabFactory(slug="biic")
    mine = factories.MachineFactory(lab=lab, slug="laser-01")
    other = factories.MachineFactory(lab=lab, slug="printer-01")
    password = credentials.provision(mine)
    credentials.provision(other)
    credentials.write_files(tmp_path / "auth", {"ingest": "ingest-secret", "service": "service-secret"})
    broker = PrivateBroker(tmp_path, extra=f"allow_anonymous false\npassword_file {tmp_path}/auth/passwd\n"
                                            f"acl_file {tmp_path}/auth/acl").start()
    try:
        seen = []
        ingest = _client(broker.port, "ingest", "ingest-secret")
        ingest.on_message = lambda c, u, m: seen.append(m.topic)
        ingest.subscribe("fablab/+/+/state", qos=1)
        commands_seen = []
        device = _client(broker.port, "biic.laser-01", password)
        device.on_message = lambda c, u, m: commands_seen.append(m.topic)
        device.subscribe("fablab/biic/printer-01/desired", qos=1)
        device.subscribe("fablab/biic/laser-01/desired", qos=1)
        device.publish("fablab/biic/laser-01/state", json.dumps({"seq": 1}), qos=1).wait_for_publish(5)
        service = _client(broker.port, "service", "service-secret")
        service.publish("fablab/biic/printer-01/desired", "{}", qos=1).wait_for_publish(5)
        service.publish("fablab/biic/laser-01/desired", "{}", qos=1).wait_for_publish(5)
        wait_for(lambda: "fablab/biic/laser-01/state" in seen and commands_seen, 10, "nothing arrived")
        # Publishing for another machine is refused (the broker then drops the connection).
        device.publish("fablab/biic/printer-01/state", json.dumps({"seq": 1}), qos=1)
        threading.Event().wait(1)
        assert "fablab/biic/printer-01/state" not in seen
        assert commands_seen == ["fablab/biic/laser-01/desired"]
        with pytest.raises(AssertionError):
            _client(broker.port, "biic.laser-01", "wrong-password")
    finally:
        broker.stop()


def _client(port, username, password):
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
