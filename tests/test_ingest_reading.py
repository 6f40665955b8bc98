"""How the ingest reads the broker's byte stream: in large chunks, whatever way the network cuts it."""

import uuid

import paho.mqtt.client as mqtt
import pytest
from django.db import connection

from fablab_ops.machines.consumer import Ingest
from fablab_ops.machines.models import MachineLiveStatus, TelemetryMessage
from tests import factories
from tests.mqtt_support import PrivateBroker, publish_acknowledged, run_in_thread, wait_for
from tests.net_support import Relay

pytestmark = pytest.mark.mqtt


def stored(machine) -> int:
    connection.close()  # see the ingest thread's commits, not a stale snapshot
    return TelemetryMessage.objects.filter(machine=machine).count()


@pytest.mark.django_db(transaction=True)
def test_reports_cut_at_odd_places_by_the_network_are_each_stored_once(postgres, tmp_path):
    lab = factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}")
    machine = factories.MachineFactory(lab=lab, slug="printer-01")
    broker = PrivateBroker(tmp_path).start()
    # What the broker sends reaches the ingest cut after a packet's first byte, inside its length, anywhere.
    link = Relay("127.0.0.1", broker.port, pieces=(1, 2, 3, 5, 7, 64, 333, 4096, 1, 190, 2)).restore()
    ingest = Ingest(url=f"mqtt://127.0.0.1:{link.port}", client_id=f"ingest-{uuid.uuid4().hex[:8]}",
                    protocol="5", batch_size=200)
    thread, _outcome = run_in_thread(ingest)
    try:
        assert ingest.subscribed.wait(10)
        publish_acknowledged(broker.port, lab.slug, machine.slug, 800, rate=4000)
        # Well within the connection's keepalive (30 s): bytes already received never wait for the next packet.
        wait_for(lambda: stored(machine) == 800, 20, "not every report came through the cut stream")
    finally:
        ingest.stop()
        thread.join(timeout=30)
        link.cut()
        broker.stop()
    assert sorted(TelemetryMessage.objects.filter(machine=machine).values_list("seq", flat=True)) == list(
        range(1, 801))
    assert MachineLiveStatus.objects.get(machine=machine).lost_messages == 0
    assert ingest.stats["rejected"] == 0


@pytest.mark.django_db(transaction=True)
def test_an_ingest_coming_back_to_a_backlog_reads_it_in_chunks_not_several_receives_per_report(
        postgres, tmp_path, monkeypatch):
    """paho alone receives three or four times per report (first byte, length, rest): a system call each."""
    receives = []

    class CountingSocket:
        def __init__(self, sock):
            self._sock = sock

        def recv(self, size):
            receives.append(size)
            return self._sock.recv(size)

        def __getattr__(self, name):
            return getattr(self._sock, name)

    paho_create_socket = mqtt.Client._create_socket
    monkeypatch.setattr(mqtt.Client, "_create_socket", lambda client: CountingSocket(paho_create_socket(client)))
    lab = factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}")
    machine = factories.MachineFactory(lab=lab, slug="printer-01")
    broker = PrivateBroker(tmp_path).start()
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    try:
        first = Ingest(url=broker.url, client_id=client_id, protocol="3.1.1")
        thread, _outcome = run_in_thread(first)
        assert first.subscribed.wait(10)
        first.stop()
        thread.join(timeout=30)
        # While the ingest is away the broker queues the reports in its session.
        publish_acknowledged(broker.port, lab.slug, machine.slug, 1000, rate=5000)
        receives.clear()
        again = Ingest(url=broker.url, client_id=client_id, protocol="3.1.1")
        thread, _outcome = run_in_thread(again)
        try:
            # Well within the connection's keepalive (30 s): reports already received never wait for more bytes.
            wait_for(lambda: stored(machine) == 1000, 20, "the backlog was not stored")
        finally:
            again.stop()
            thread.join(timeout=30)
    finally:
        broker.stop()
    assert len(receives) < 1000 / 2, f"{len(receives)} receives for 1,000 reports"
