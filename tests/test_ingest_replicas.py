"""The ingest against real Mosquitto brokers: broker restarts, replicas, sessions, and threads that die."""

import logging
import signal
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fablab_ops.machines import consumer
from fablab_ops.machines.consumer import Ingest, IngestFailed, drop_session, replica_of
from fablab_ops.machines.models import IngestHealth, TelemetryMessage
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


class CountingPublisher(Publisher):
    """A device that remembers which of its reports the broker acknowledged (PUBACK), by seq."""

    def __init__(self, *args, **kwargs):
        self.seq_of: dict[int, int] = {}
        self.acked: set[int] = set()
        self._acked_mids: set[int] = set()
        super().__init__(*args, **kwargs)

    def _acknowledged(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            self._acked_mids.add(mid)
            if mid in self.seq_of:
                self.acked.add(self.seq_of.pop(mid))
        super()._acknowledged(client, userdata, mid, reason_code, properties)

    def publish_stream(self, count, *, rate=500.0, boot="boot-1", on_progress=None):
        original = self.client.publish

        def publish(topic, payload, qos):
            info = original(topic, payload, qos=qos)
            seq = __import__("json").loads(payload)["seq"]
            with self.lock:
                if info.mid in self._acked_mids:
                    self.acked.add(seq)
                else:
                    self.seq_of[info.mid] = seq
            return info

        self.client.publish = publish
        try:
            super().publish_stream(count, rate=rate, boot=boot, on_progress=on_progress)
        finally:
            self.client.publish = original


def stored_seqs(machine, boot="boot-1") -> list[int]:
    connection.close()  # see the other process's commits, not a stale snapshot
    return list(TelemetryMessage.objects.filter(machine=machine, boot=boot).values_list("seq", flat=True))


def _stored(machine, boot) -> bool:
    if stored_seqs(machine, boot):
        return True
    threading.Event().wait(0.5)
    return False


def unique_machine(slug="printer-01", lab=None):
    lab = lab or factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}")
    return factories.MachineFactory(lab=lab, slug=slug)


@pytest.mark.django_db(transaction=True)
def test_a_broker_restart_over_mqtt_5_loses_nothing_the_broker_acknowledged(postgres, tmp_path):
    """The devices keep publishing while Mosquitto is stopped (SIGTERM) and started again.

    Every report the broker acknowledged to a device is stored, once: the ingest's
    subscription lives in its persistent session, which the broker restores, so what
    arrives before the ingest is back is queued for it, not dropped.
    """
    machine = unique_machine()
    broker = PrivateBroker(tmp_path).start()
    ingest = ingest_process(broker.url, f"ingest-{uuid.uuid4().hex[:8]}", "--protocol", "5")
    publisher = None
    try:
        publisher = CountingPublisher(broker.port, machine.lab.slug, machine.slug)
        probe = Publisher(broker.port, machine.lab.slug, machine.slug)
        wait_for(lambda: probe.publish_stream(1, boot="probe") or _stored(machine, "probe"), 30,
                 "the ingest never subscribed")
        probe.close()
        restarted = threading.Event()

        def restart_midway(seq):
            if seq == 800 and not restarted.is_set():
                broker.process.send_signal(signal.SIGTERM)
                broker.process.wait(timeout=10)
                broker.start()
                restarted.set()

        publisher.publish_stream(2500, rate=1000, on_progress=restart_midway)
        publisher.wait_acknowledged(90)
        wait_for(lambda: publisher.acked <= set(stored_seqs(machine)), 60,
                 "reports acknowledged by the broker were never stored")
    finally:
        if publisher:
            publisher.close()
        ingest.terminate()
        ingest.wait(timeout=30)
        broker.stop()
    seqs = stored_seqs(machine)
    assert len(seqs) == len(set(seqs)), "duplicates"
    assert len(publisher.acked) == 2500 and set(seqs) >= publisher.acked


@pytest.mark.django_db(transaction=True)
def test_two_replicas_split_the_machines_between_them_and_store_each_report_once(postgres, tmp_path):
    lab = factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}")
    machines = [unique_machine(f"printer-{n:02d}", lab) for n in range(6)]
    assert len({replica_of(lab.slug, m.slug, 2) for m in machines}) == 2, "all machines hashed to one replica"
    broker = PrivateBroker(tmp_path).start()
    replicas = [Ingest(url=broker.url, protocol="5", replicas=2, replica=k, registry_refresh=0.5) for k in (0, 1)]
    assert [r.client_id for r in replicas] == ["fablab-ingest-0", "fablab-ingest-1"]
    threads = [run_in_thread(r)[0] for r in replicas]
    try:
        for replica in replicas:
            assert replica.subscribed.wait(10)
        late = unique_machine("printer-99", lab)  # registered while the ingest runs: found at the next look
        wait_for(lambda: any(f"/{late.slug}/state" in t for r in replicas for t in r.topics()), 10,
                 "the new machine was never subscribed")
        threading.Event().wait(0.5)
        for machine in [*machines, late]:
            publish_acknowledged(broker.port, lab.slug, machine.slug, 50, rate=2000)
        wait_for(lambda: all(len(stored_seqs(m)) == 50 for m in [*machines, late]), 30, "not everything was stored")
    finally:
        for replica in replicas:
            replica.stop()
        for thread in threads:
            thread.join(timeout=30)
        broker.stop()
    health = {h.client_id: h for h in IngestHealth.objects.all()}
    assert health["fablab-ingest-0"].stored + health["fablab-ingest-1"].stored == 350
    assert health["fablab-ingest-0"].stored and health["fablab-ingest-1"].stored
    assert sum(h.duplicates for h in health.values()) == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_an_exception_in_the_bulk_puback_path_takes_the_ingest_down(postgres, tmp_path):
    machine = unique_machine()
    broker = PrivateBroker(tmp_path).start()
    ingest = Ingest(url=broker.url, client_id=f"ingest-{uuid.uuid4().hex[:8]}", protocol="5")

    def broken_queue(*args):
        raise AttributeError("'Client' object has no attribute '_out_packet'")

    ingest._queue_packet = broken_queue
    thread, outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        publisher = Publisher(broker.port, machine.lab.slug, machine.slug)
        publisher.publish_stream(5, rate=1000)
        publisher.close()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the ingest kept running half-alive"
    finally:
        ingest.stop()
        thread.join(timeout=10)
        broker.stop()
    assert isinstance(outcome[0], IngestFailed) and "writer" in str(outcome[0])


@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_network_thread_takes_the_ingest_down(postgres, tmp_path):
    machine = unique_machine()
    broker = PrivateBroker(tmp_path).start()
    ingest = Ingest(url=broker.url, client_id=f"ingest-{uuid.uuid4().hex[:8]}", protocol="5")

    def on_message(*args):
        raise MemoryError("the network thread fails")

    ingest.client.on_message = on_message
    thread, outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        publisher = Publisher(broker.port, machine.lab.slug, machine.slug)
        publisher.publish_stream(1, rate=1000)
        publisher.close()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the ingest kept running half-alive"
    finally:
        ingest.stop()
        thread.join(timeout=10)
        broker.stop()
    assert isinstance(outcome[0], IngestFailed) and "network" in str(outcome[0])


@pytest.mark.django_db
def test_the_command_exits_non_zero_when_the_ingest_fails(monkeypatch):
    def fail(self, **kwargs):
        raise IngestFailed("the writer thread died")

    monkeypatch.setattr(Ingest, "run", fail)
    with pytest.raises(CommandError, match="writer thread died"):
        call_command("mqtt_ingest", "--url", "mqtt://127.0.0.1:1")


@pytest.mark.django_db(transaction=True)
def test_the_ingest_says_when_the_broker_lost_its_session(postgres, tmp_path, caplog):
    broker = PrivateBroker(tmp_path).start()
    ingest = Ingest(url=broker.url, client_id=f"ingest-{uuid.uuid4().hex[:8]}", protocol="5")
    thread, _outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        with caplog.at_level(logging.INFO, logger="fablab_ops.machines.consumer"):
            broker.stop()  # saves the session ...
            broker.start()
            assert ingest.subscribed.wait(10)  # back within a second or two
            assert "lost the ingest's session" not in caplog.text
            broker.stop()
            (tmp_path / "mosquitto.db").unlink()  # ... which is gone this time
            broker.start()
            assert ingest.subscribed.wait(10)
        assert any(r.levelno == logging.WARNING and "lost the ingest's session" in r.getMessage()
                   for r in caplog.records)
    finally:
        ingest.stop()
        thread.join(timeout=30)
        broker.stop()


@pytest.mark.django_db(transaction=True)
def test_dropping_a_retired_replicas_session_deletes_it_at_the_broker(postgres, tmp_path):
    broker = PrivateBroker(tmp_path).start()
    client_id = f"fablab-ingest-{uuid.uuid4().hex[:4]}"
    ingest = Ingest(url=broker.url, client_id=client_id, protocol="5")
    thread, _outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        ingest.stop()
        thread.join(timeout=30)
        assert _session_present(broker.port, client_id)  # kept for the replica's return
        call_command("mqtt_ingest", "--url", broker.url, "--client-id", client_id, "--drop-session")
        assert not _session_present(broker.port, client_id)
        assert drop_session(url=broker.url, client_id=client_id)
    finally:
        broker.stop()


def _session_present(port: int, client_id: str) -> bool:
    flags, done = {}, threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)

    def on_connect(client, userdata, connect_flags, reason_code, properties):
        flags["present"] = connect_flags.session_present
        done.set()

    client.on_connect = on_connect
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    client.loop_start()
    assert done.wait(10)
    client.disconnect()
    client.loop_stop()
    return flags["present"]


def _consumed(port: int) -> bool:
    """True once the ingest's session holds its subscriptions (the broker counts them)."""
    return subscriptions_held(port) >= 3


def test_the_default_client_id_is_the_replicas_own_never_the_host_name():
    assert Ingest(url="mqtt://127.0.0.1:1", replicas=3, replica=2).client_id == "fablab-ingest-2"
    assert Ingest(url="mqtt://127.0.0.1:1").client_id == "fablab-ingest-0"
    assert consumer.replica_of("biic", "laser-01", 4) == consumer.replica_of("biic", "laser-01", 4)


@pytest.mark.django_db(transaction=True)
def test_a_replica_whose_share_changed_stops_receiving_what_is_no_longer_its_own(postgres, tmp_path):
    """fablab-ingest-0 ran alone (wildcards in its session), then as replica 0 of 2."""
    lab = factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}")
    machines = [unique_machine(f"printer-{n:02d}", lab) for n in range(8)]
    mine = next(m for m in machines if replica_of(lab.slug, m.slug, 2) == 0)
    theirs = next(m for m in machines if replica_of(lab.slug, m.slug, 2) == 1)
    broker = PrivateBroker(tmp_path).start()
    try:
        alone = Ingest(url=broker.url, protocol="5")
        thread, _outcome = run_in_thread(alone)
        assert alone.subscribed.wait(10)
        alone.stop()
        thread.join(timeout=30)
        replica = Ingest(url=broker.url, protocol="5", replicas=2, replica=0)
        thread, _outcome = run_in_thread(replica)
        assert replica.subscribed.wait(10)
        for machine in (theirs, mine):
            publish_acknowledged(broker.port, lab.slug, machine.slug, 20, rate=2000)
        wait_for(lambda: len(stored_seqs(mine)) == 20, 20, "replica 0 did not store its own machine")
        threading.Event().wait(1)
        assert stored_seqs(theirs) == [], "replica 0 still stores another replica's machine"
    finally:
        replica.stop()
        thread.join(timeout=30)
        broker.stop()
