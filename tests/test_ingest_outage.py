"""PostgreSQL unreachable for the ingest for a while: it waits, retries, and loses nothing."""

import contextlib
import socket
import threading
import uuid

import pytest
from django.conf import settings
from django.db import connection

from fablab_ops.machines.models import QuarantinedMessage, TelemetryMessage
from tests import factories
from tests.database_support import database_url
from tests.mqtt_support import PrivateBroker, Publisher, free_port, ingest_process, wait_for

pytestmark = pytest.mark.mqtt


class DatabaseLink:
    """A TCP relay between the ingest and PostgreSQL that can be cut (connections dropped, new ones refused)."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = free_port()
        self.sockets: list[socket.socket] = []
        self.listener = None
        self.lock = threading.Lock()

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        with self.lock:
            self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self):
        with self.lock:
            listener, self.listener = self.listener, None
            dropped, self.sockets = self.sockets, []
        if listener is not None:
            # Closing alone would not do: an accept() waiting in another thread keeps the socket listening until
            # it returns, so the next connection would still get through. Shutting it down wakes that accept().
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                relayed = self.listener is listener  # not cut while PostgreSQL was being reached
                if relayed:
                    self.sockets += [client, server]
            if not relayed:
                client.close()
                server.close()
                return
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # Shut down before closing: the pump of the other direction waits in recv() on one of these, and a
            # close() alone would neither wake it nor tell the far end (PostgreSQL would keep the session open).
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()


def stored(machine) -> int:
    connection.close()
    return TelemetryMessage.objects.filter(machine=machine).count()


@pytest.mark.django_db(transaction=True)
def test_the_database_unreachable_for_a_while_holds_the_stream_back_and_loses_nothing(postgres, tmp_path):
    machine = factories.MachineFactory(lab=factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}"),
                                       slug="printer-01")
    db = settings.DATABASES["default"]
    link = DatabaseLink(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).restore()
    broker = PrivateBroker(tmp_path).start()
    ingest = ingest_process(broker.url, "fablab-ingest-0", "--protocol", "5", database=database_url(port=link.port))
    publisher = Publisher(broker.port, machine.lab.slug, machine.slug)
    try:
        wait_for(lambda: publisher.publish_stream(1, boot="probe") or stored(machine) or threading.Event().wait(0.5),
                 30, "the ingest never subscribed")
        publisher.publish_stream(99, rate=1000)
        wait_for(lambda: stored(machine) == 100, 30, "the ingest never stored the first reports")
        link.cut()  # PostgreSQL goes away for the ingest
        publisher.publish_stream(300, rate=1000, boot="boot-2")
        publisher.wait_acknowledged()
        threading.Event().wait(4)  # several retries' worth
        assert ingest.poll() is None, "the ingest gave up instead of waiting for its database"
        assert stored(machine) == 100, "reports were stored while the database was unreachable: no outage happened"
        link.restore()
        wait_for(lambda: stored(machine) == 400, 60, "reports sent while the database was away were lost")
    finally:
        publisher.close()
        ingest.terminate()
        ingest.wait(timeout=30)
        link.cut()
        broker.stop()
    assert not QuarantinedMessage.objects.exists()
