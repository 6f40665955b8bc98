"""Messages from the service to the machines: retained desired states (docs/mqtt.md, protocol 2).

What a machine should do is decided in `booking.interlock` and stored as its desired
state; this module only hands such messages to the broker and waits for its PUBACK.
They are published retained at QoS 1 on `fablab/{lab}/{machine}/desired`, so a device
that (re)connects gets the current one at once. The `command` topic of protocol 1 is
no longer published.
"""

import json
import logging
import uuid
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from django.conf import settings

from fablab_ops.machines.models import MachineCommand

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 10


class CommandNotDelivered(Exception):
    """The broker did not accept the message (down, refused our credentials, or too slow)."""


def broker_settings(url: str | None = None) -> dict:
    parsed = urlparse(url or settings.MQTT_URL)
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or (8883 if parsed.scheme == "mqtts" else 1883),
        "username": unquote(parsed.username) if parsed.username else None,
        "password": unquote(parsed.password) if parsed.password else None,
        "tls": parsed.scheme == "mqtts",
    }


def new_command(machine, action: str, *, user_display: str = "", until=None, reservation=None) -> MachineCommand:
    """A protocol-1 command record. The service no longer sends these; the ingest still matches a
    protocol-1 device's acks against old records, so the model and this constructor stay until the
    ingest drops protocol-1 acks."""
    return MachineCommand.objects.create(machine=machine, reservation=reservation, action=action,
                                         user_display=user_display, until=until, command_id=uuid.uuid4().hex)


def encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class RetainedPublisher:
    """One connection to the broker for a batch of retained messages; each `publish` waits for its PUBACK.

    Used as a context manager: connecting fails with CommandNotDelivered, and so does a
    message the broker does not acknowledge in time.
    """

    def __init__(self, url: str | None = None):
        self.broker = broker_settings(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"fablab-service-{uuid.uuid4().hex[:12]}", protocol=mqtt.MQTTv311)
        if self.broker["username"]:
            self.client.username_pw_set(self.broker["username"], self.broker["password"])
        if self.broker["tls"]:
            self.client.tls_set()

    def __enter__(self) -> "RetainedPublisher":
        try:
            self.client.connect(self.broker["host"], self.broker["port"], keepalive=30)
        except (OSError, ValueError) as error:
            raise CommandNotDelivered(str(error)) from error
        self.client.loop_start()
        return self

    def publish(self, topic: str, payload: dict) -> None:
        try:
            info = self.client.publish(topic, encode(payload), qos=1, retain=True)
            info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
        except (OSError, ValueError, RuntimeError) as error:
            raise CommandNotDelivered(str(error)) from error
        if not info.is_published():
            raise CommandNotDelivered(f"no PUBACK within {PUBLISH_TIMEOUT_S}s")

    def __exit__(self, *exc) -> None:
        # DISCONNECT first: the network loop then ends at once; stopping the loop first waits out its select (1 s).
        self.client.disconnect()
        self.client.loop_stop()
