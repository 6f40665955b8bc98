"""The MQTT ingest process: receive telemetry, store it in batches, acknowledge after commit.

paho's network loop only puts messages on a queue (`on_message` never waits for the
database); a writer thread takes batches off it, applies them in one transaction,
and only then acknowledges each message (`manual_ack`). With a persistent session
(`clean_start` false, a stable client id) the broker keeps what was not yet
acknowledged across a crash and redelivers it; storing is idempotent, so nothing
is lost and nothing doubled. On MQTT 5 the subscription is shared
(`$share/ingest/...`) so several ingest processes split the stream.
"""

import gc
import logging
import queue
import signal
import socket
import struct
import threading
import time
from datetime import UTC, datetime
from typing import NamedTuple

import paho.mqtt.client as mqtt
from django.db import close_old_connections
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fablab_ops.machines.commands import broker_settings
from fablab_ops.machines.ingest import Incoming, MachineDirectory, apply_batch, parse_safely

log = logging.getLogger(__name__)
TOPICS = ("fablab/+/+/state", "fablab/+/+/status", "fablab/+/+/ack")
SHARE_GROUP = "ingest"
SESSION_EXPIRY_S = 7 * 24 * 3600
CONNECTION_CHECK_S = 30.0
# Up to this many messages per transaction. Each batch has a fixed price (a dozen statements
# when machines change state, locking and writing their live status, the WAL flush at commit),
# so a backlog drains faster in large batches; in light traffic a batch closes after `batch_wait` whatever its size.
# The broker must allow more unacknowledged messages in flight than this (deploy/mosquitto).
BATCH_SIZE = 2000


PUBACK = 0x40


class Received(NamedTuple):
    """What the network loop hands over: a tuple, because it is built for every message."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    parsed: object


def acknowledge(client: mqtt.Client, mids: list[int]) -> None:
    """Acknowledge a committed batch's QoS 1 messages.

    paho's `ack()` queues one PUBACK per message, each waking the network loop and
    costing a send of its own; for a batch of hundreds that is most of the loop's
    work. The batch's PUBACKs are queued as one write instead: the same bytes on the
    wire (a PUBACK is fixed header + packet id; MQTT 5 may omit the reason code when
    it is success). Falls back to `ack()` if paho's queue ever changes shape.
    """
    if not mids:
        return
    queue_packet = getattr(client, "_packet_queue", None)
    if queue_packet is None:
        for mid in mids:
            client.ack(mid, 1)
        return
    packet = b"".join(struct.pack("!BBH", PUBACK, 2, mid) for mid in mids)
    queue_packet(PUBACK, packet, 0, 0)


class Ingest:
    def __init__(self, *, url: str, client_id: str | None = None, protocol: str = "5", batch_size: int = BATCH_SIZE,
                 batch_wait: float = 0.2, share_group: str = SHARE_GROUP):
        self.broker = broker_settings(url)
        self.protocol = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        self.client_id = client_id or f"fablab-ingest-{socket.gethostname()}"
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.share_group = share_group
        # Unbounded here; bounded in fact by the broker's in-flight window (unacknowledged messages).
        self.inbox: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.subscribed = threading.Event()  # connected, and the broker has granted the subscriptions
        self.directory = MachineDirectory()
        self._next_connection_check = 0.0
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0, "gaps": 0}
        kwargs = {"clean_session": False} if self.protocol == mqtt.MQTTv311 else {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                  protocol=self.protocol, manual_ack=True, **kwargs)
        if self.broker["username"]:
            self.client.username_pw_set(self.broker["username"], self.broker["password"])
        if self.broker["tls"]:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def topics(self) -> list[str]:
        if self.protocol == mqtt.MQTTv5:
            return [f"$share/{self.share_group}/{topic}" for topic in TOPICS]
        return list(TOPICS)

    # paho callbacks: network thread, never the database

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the ingest: %s", reason_code)
            return
        # Subscriptions are renewed on every connect, whatever the broker kept.
        client.subscribe([(topic, 1) for topic in self.topics()])
        log.info("ingest %s connected (session present: %s)", self.client_id, flags.session_present)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused the ingest's subscriptions: %s", refused)
            return
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.subscribed.clear()
        if not self.stopping.is_set():
            log.warning("ingest disconnected (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message):
        if self.stopping.is_set():
            return  # not acknowledged: the broker keeps it for our next session
        # Parsing is pure CPU and done here, not in the writer: the network loop works in the bursts
        # that follow each acknowledged batch, while the writer is waiting on the database.
        topic, payload = message.topic, message.payload
        self.inbox.put(Received(message.mid, message.qos, topic, payload, datetime.now(UTC),
                                parse_safely(topic, payload)))

    # writer thread

    def _take_batch(self) -> list[Received]:
        batch = []
        try:
            batch.append(self.inbox.get(timeout=self.batch_wait))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.batch_wait
        take = self.inbox.get_nowait
        while len(batch) < self.batch_size:
            try:
                batch.append(take())  # whatever is already waiting, without a timed wait each
                continue
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self.inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Received]) -> None:
        failed = False
        while True:
            try:
                # Django's connection check costs a round trip; once in a while, or after a failure, is enough.
                if failed or time.monotonic() >= self._next_connection_check:
                    close_old_connections()
                    self._next_connection_check = time.monotonic() + CONNECTION_CHECK_S
                messages = [Incoming(item.topic, item.payload, item.received_at, item.parsed) for item in batch]
                result = apply_batch(messages, self.directory)
                break
            except Exception:
                # The database is unreachable or failed: keep the batch unacknowledged and retry;
                # the broker redelivers anything we never acknowledge.
                log.exception("could not store a batch of %d messages; retrying", len(batch))
                failed = True
                if self.stopping.wait(2):
                    return
        self.stats["stored"] += result.stored
        self.stats["duplicates"] += result.duplicates
        self.stats["rejected"] += sum(result.rejected.values())
        self.stats["gaps"] += result.gaps
        acknowledge(self.client, [item.mid for item in batch if item.qos == 1])

    def _writer(self) -> None:
        while not (self.stopping.is_set() and self.inbox.empty()):
            batch = self._take_batch()
            if batch:
                self._write(batch)

    def run(self, *, install_signals: bool = True) -> None:
        # Everything loaded so far (Django, the models, the URL map) lives as long as the process:
        # keep it out of the garbage collector's scans, which the per-message objects trigger often.
        gc.freeze()
        if install_signals:
            signal.signal(signal.SIGTERM, lambda *_: self.stop())
            signal.signal(signal.SIGINT, lambda *_: self.stop())
        properties = None
        connect_kwargs = {}
        if self.protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            connect_kwargs = {"clean_start": False, "properties": properties}
        self.client.connect_async(self.broker["host"], self.broker["port"], keepalive=30, **connect_kwargs)
        self.client.loop_start()
        writer = threading.Thread(target=self._writer, name="ingest-writer", daemon=True)
        writer.start()
        try:
            while not self.stopping.wait(30):
                log.info("ingest %s: %s, queue %d", self.client_id, self.stats, self.inbox.qsize())
        finally:
            # Drain: store and acknowledge the batch in hand before leaving.
            writer.join(timeout=60)
            self.client.loop_stop()
            self.client.disconnect()
            log.info("ingest %s stopped: %s", self.client_id, self.stats)

    def stop(self) -> None:
        self.stopping.set()
