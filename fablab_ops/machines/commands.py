"""Commands from the service to a machine: switch it on for one person, or off.

Published at QoS 1 on `fablab/{lab}/{machine}/command` (docs/mqtt.md); the device
answers on `.../ack` with the command id, which the ingest records. The `until`
time travels with `enable`, so a machine switches itself off even if the later
`disable` never reaches it.
"""

import json
import logging
import uuid
from datetime import datetime
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from django.conf import settings
from django.utils import timezone

from fablab_ops.machines.models import Machine, MachineCommand

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 10


class CommandNotDelivered(Exception):
    """The broker did not accept the command (down, refused our credentials, or too slow)."""


def broker_settings(url: str | None = None) -> dict:
    parsed = urlparse(url or settings.MQTT_URL)
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or (8883 if parsed.scheme == "mqtts" else 1883),
        "username": unquote(parsed.username) if parsed.username else None,
        "password": unquote(parsed.password) if parsed.password else None,
        "tls": parsed.scheme == "mqtts",
    }


def command_payload(command: MachineCommand) -> str:
    return json.dumps({
        "action": command.action,
        "user": command.user_display,
        "until": timezone.localtime(command.until).isoformat() if command.until else None,
        "id": command.command_id,
    }, ensure_ascii=False)


def new_command(machine: Machine, action: str, *, user_display: str = "", until: datetime | None = None,
                reservation=None) -> MachineCommand:
    return MachineCommand.objects.create(machine=machine, reservation=reservation, action=action,
                                         user_display=user_display, until=until, command_id=uuid.uuid4().hex)


def publish(command: MachineCommand, *, url: str | None = None) -> None:
    """Hand the command to the broker and wait until it has it (PUBACK)."""
    broker = broker_settings(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fablab-service-{uuid.uuid4().hex[:12]}",
                         protocol=mqtt.MQTTv311)
    if broker["username"]:
        client.username_pw_set(broker["username"], broker["password"])
    if broker["tls"]:
        client.tls_set()
    try:
        client.connect(broker["host"], broker["port"], keepalive=30)
        client.loop_start()
        info = client.publish(f"{command.machine.topic_prefix}/command", command_payload(command), qos=1)
        info.wait_for_publish(timeout=PUBLISH_TIMEOUT_S)
        if not info.is_published():
            raise CommandNotDelivered(f"no PUBACK within {PUBLISH_TIMEOUT_S}s")
    except (OSError, ValueError, RuntimeError) as error:
        raise CommandNotDelivered(str(error)) from error
    finally:
        client.loop_stop()
        client.disconnect()
    MachineCommand.objects.filter(pk=command.pk).update(published_at=timezone.now(), error="")
