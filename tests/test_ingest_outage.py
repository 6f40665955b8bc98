"""PostgreSQL unreachable for the ingest for a while: it waits, retries, and loses nothing."""

import threading
import uuid

import pytest
from django.conf import settings
from django.db import connection

from fablab_ops.machines.models import QuarantinedMessage, TelemetryMessage
from tests import factories
from tests.database_support import database_url
from tests.mqtt_support import PrivateBroker, Publisher, ingest_process, wait_for
from tests.net_support import Relay

pytestmark = pytest.mark.mqtt


def stored(machine) -> int:
    connection.close()
    return TelemetryMessage.objects.filter(machine=machine).count()


@pytest.mark.django_db(transaction=True)
def test_the_database_unreachable_for_a_while_holds_the_stream_back_and_loses_nothing(postgres, tmp_path):
    machine = factories.MachineFactory(lab=factories.LabFactory(slug=f"lab-{uuid.uuid4().hex[:8]}"),
                                       slug="printer-01")
    db = settings.DATABASES["default"]
    link = Relay(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)).restore()
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
