"""The MQTT ingest process: receive telemetry, store it in batches, acknowledge after commit.

paho's network loop only puts messages on a queue (`on_message` never waits for the
database); a writer thread takes batches off it, stores them in one transaction,
and only then acknowledges each message (`manual_ack`). With a persistent session
(`clean_start` false, a stable client id) the broker keeps what was not yet
acknowledged across a crash, and what arrives while the ingest is away, and
delivers it; storing is idempotent, so nothing is lost and nothing doubled.

The subscriptions are plain ones, not an MQTT 5 shared subscription: Mosquitto 2.0
does not persist shared subscriptions across its own restart, and drops what devices
send until the group is back. One replica subscribes the wildcards; with
`replicas` > 1 each subscribes the explicit topics of its share of the machines
(a stable hash of "lab/machine"), re-reading the registry for new machines.

The process lives only as long as both of its threads: if the writer or paho's
network thread dies, `run` raises `IngestFailed` and the command exits non-zero, for
the supervisor to restart it; nothing keeps running half-alive.
"""

import gc
import inspect
import logging
import queue
import signal
import struct
import threading
import time
import zlib
from datetime import UTC, datetime
from typing import NamedTuple

import paho.mqtt.client as mqtt
from django.db import close_old_connections, connection
from django.utils import timezone
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from fablab_ops.machines.commands import broker_settings
from fablab_ops.machines.ingest import Incoming, MachineDirectory, connection_lost, parse_safely, printable, store
from fablab_ops.machines.models import IngestHealth, Machine

log = logging.getLogger(__name__)
KINDS = ("state", "status", "ack")
TOPICS = tuple(f"fablab/+/+/{kind}" for kind in KINDS)
SESSION_EXPIRY_S = 86400
REGISTRY_REFRESH_S = 60.0
HEALTH_EVERY_S = 30.0
CONNECTION_CHECK_S = 30.0
# An unreachable database is tried again at least this often: a connection attempt costs it little,
# and the stream should move again within seconds of it coming back.
RETRY_DELAY_MAX_S = 5.0
SUBSCRIBE_CHUNK = 300  # topics per SUBSCRIBE packet
# Up to this many messages per transaction. Each batch has a fixed price (a dozen statements
# when machines change state, locking and writing their live status, the WAL flush at commit),
# so a backlog drains faster in large batches; in light traffic a batch closes after `batch_wait` whatever its size.
# The broker must allow more unacknowledged messages in flight than this (deploy/mosquitto).
BATCH_SIZE = 2000
# A batch also closes when nothing more has arrived for this long.
BATCH_QUIET_S = 0.05


PUBACK = 0x40
# paho's private method that queues one outgoing packet; see `acknowledge`.
PACKET_QUEUE = "_packet_queue"


class IngestFailed(RuntimeError):
    """A thread of the ingest died: the process must exit for its supervisor to restart it."""


class Received(NamedTuple):
    """What the network loop hands over: a tuple, because it is built for every message."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_at: datetime
    parsed: object


def replica_of(lab: str, machine: str, replicas: int) -> int:
    """The replica that stores a machine's telemetry: stable across processes, hosts and restarts."""
    return zlib.crc32(f"{lab}/{machine}".encode()) % replicas


def bulk_queue(client: mqtt.Client):
    """paho's packet queue, if it still has the shape `acknowledge` relies on; else None (use `ack()`)."""
    method = getattr(client, PACKET_QUEUE, None)
    if method is None:
        return None
    try:
        parameters = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        return None
    return method if parameters[:4] == ["command", "packet", "mid", "qos"] else None


def acknowledge(client: mqtt.Client, mids: list[int], queue_packet=None) -> None:
    """Acknowledge a committed batch's QoS 1 messages.

    paho's `ack()` queues one PUBACK per message, each waking the network loop and
    costing a send of its own; for a batch of hundreds that is most of the loop's
    work. With `queue_packet` (see `bulk_queue`) the batch's PUBACKs are queued as one
    write instead: the same bytes on the wire (a PUBACK is fixed header + packet id;
    MQTT 5 may omit the reason code when it is success). Without it, `ack()`: slower,
    the same result. An exception here kills the writer thread, and with it the process.
    """
    if not mids:
        return
    if queue_packet is None:
        for mid in mids:
            client.ack(mid, 1)
        return
    packet = b"".join(struct.pack("!BBH", PUBACK, 2, mid) for mid in mids)
    queue_packet(PUBACK, packet, 0, 0)


class BufferedSocket:
    """The broker's socket, read in large chunks and handed to paho a few bytes at a time.

    paho reads every packet with three or four receives (its first byte, its length's one or two
    bytes, the rest), each a system call; on a backlog of small reports those calls cost the
    ingest 13-20 % of its CPU. Here one receive takes whatever the kernel holds (up to `CHUNK`),
    and paho's reads are served from it. `pending()` says what is held, as an SSL socket's does:
    paho's loop then reads on without waiting in `select()` for data already here. Anything else
    is the socket's own.
    """

    CHUNK = 65536

    def __init__(self, sock):
        self._sock = sock
        self._held = b""
        self._at = 0
        self._inner_pending = getattr(sock, "pending", None)  # an SSL socket's own buffer

    def recv(self, size: int) -> bytes:
        held, at = self._held, self._at
        if at >= len(held):
            # Raises as the socket does when nothing is there (BlockingIOError, an SSL want-read);
            # b"" when the broker closed the connection.
            held = self._sock.recv(max(size, self.CHUNK))
            if not held:
                return held
            self._held, at = held, 0
        chunk = held[at:at + size]
        self._at = at + len(chunk)
        return chunk

    def pending(self) -> int:
        held = len(self._held) - self._at
        return held + self._inner_pending() if self._inner_pending is not None else held

    def __getattr__(self, name):
        return getattr(self._sock, name)


class IngestClient(mqtt.Client):
    """paho's client, its socket read through a `BufferedSocket`, packets already received read in one go.

    `_create_socket` is paho's own (private) way to open the connection: should a release of paho
    drop it, the client reads the socket as paho does, slower, with the same result.
    """

    # At most this many packets per read: the loop must come back to send the acknowledgements
    # the writer queued, and to keep the connection alive.
    READ_BURST = 500

    def _create_socket(self):
        return BufferedSocket(super()._create_socket())

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        """paho's read, again while whole packets are already held: paho would `select()` before each."""
        rc = super().loop_read(max_packets)
        sock = self._sock
        if not isinstance(sock, BufferedSocket):
            return rc
        burst = self.READ_BURST
        while rc == mqtt.MQTT_ERR_SUCCESS and burst and sock is self._sock and sock.pending():
            rc = super().loop_read(max_packets)
            burst -= 1
        return rc


def _connect_properties(expiry: int) -> Properties:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = expiry
    return properties


class Ingest:
    def __init__(self, *, url: str, client_id: str | None = None, protocol: str = "5", batch_size: int = BATCH_SIZE,
                 batch_wait: float = 0.2, replicas: int = 1, replica: int = 0,
                 session_expiry: int = SESSION_EXPIRY_S, registry_refresh: float = REGISTRY_REFRESH_S):
        if not 0 <= replica < replicas:
            raise ValueError(f"replica must be from 0 to {replicas - 1}")
        self.broker = broker_settings(url)
        self.protocol = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        # Stable per replica, never the host name: a recreated container must find its own session.
        self.client_id = client_id or f"fablab-ingest-{replica}"
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.replicas, self.replica = replicas, replica
        self.session_expiry = session_expiry
        self.registry_refresh = registry_refresh
        # Unbounded here; bounded in fact by the broker's in-flight window (unacknowledged messages).
        self.inbox: queue.SimpleQueue[Received] = queue.SimpleQueue()
        self.stopping = threading.Event()
        self.subscribed = threading.Event()  # connected, and the broker has granted the subscriptions
        self.failure: str | None = None
        self.directory = MachineDirectory()
        self._next_connection_check = 0.0
        self._db_failed = False
        self._topics: list[str] = list(TOPICS) if replicas == 1 else []
        self._not_mine: list[str] = []  # other replicas' machine topics, from the registry
        self._topics_lock = threading.Lock()
        self._pending_subscriptions: set[int] = set()
        self._had_session = False  # a session of ours existed at the broker during this process's life
        self.received = 0
        self.stats = {"stored": 0, "duplicates": 0, "rejected": 0, "gaps": 0}
        kwargs = {"clean_session": False} if self.protocol == mqtt.MQTTv311 else {}
        self.client = IngestClient(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                   protocol=self.protocol, manual_ack=True, **kwargs)
        if self.broker["username"]:
            self.client.username_pw_set(self.broker["username"], self.broker["password"])
        if self.broker["tls"]:
            self.client.tls_set()
        # Back within a second or two of the broker: what devices send meanwhile waits in our session.
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._queue_packet = bulk_queue(self.client)
        if self._queue_packet is None:
            log.info("paho's packet queue has changed shape: acknowledging one message at a time")

    # --- what to subscribe

    def topics(self) -> list[str]:
        with self._topics_lock:
            return list(self._topics)

    def refresh_registry(self) -> list[str]:
        """Subscribe the topics of machines registered since the last look (a database read); returns the new ones."""
        if self.replicas == 1:
            return []
        mine, others = [], []
        for lab, machine in Machine.objects.values_list("lab__slug", "slug").order_by("lab__slug", "slug"):
            topics = mine if replica_of(lab, machine, self.replicas) == self.replica else others
            topics.extend(f"fablab/{lab}/{machine}/{kind}" for kind in KINDS)
        with self._topics_lock:
            known = set(self._topics)
            new = [topic for topic in mine if topic not in known]
            self._topics.extend(new)
            self._not_mine = others
        if new and self.client.is_connected():
            self._subscribe(self.client, new)
            log.info("ingest %s: subscribed %d new topics", self.client_id, len(new))
        return new

    def _subscribe(self, client, topics: list[str]) -> None:
        # MQTT 5: retained statuses only with a new subscription; a renewed one already had them.
        options = (SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
                   if self.protocol == mqtt.MQTTv5 else 1)
        for start in range(0, len(topics), SUBSCRIBE_CHUNK):
            result, mid = client.subscribe([(topic, options) for topic in topics[start:start + SUBSCRIBE_CHUNK]])
            if result == mqtt.MQTT_ERR_SUCCESS:
                self._pending_subscriptions.add(mid)

    # --- paho callbacks: network thread, never the database

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.error("broker refused the ingest: %s", reason_code)
            return
        if flags.session_present:
            log.info("ingest %s connected, its session kept by the broker", self.client_id)
        elif self._had_session:
            log.warning("the broker lost the ingest's session (%s): reports sent while it was away may be lost; "
                        "is the broker's persistence on?", self.client_id)
        else:
            log.info("ingest %s connected with a new session", self.client_id)
        self._had_session = True
        # Subscriptions are renewed on every connect, whatever the broker kept.
        topics = self.topics()
        self._pending_subscriptions.clear()
        self._subscribe(client, topics)
        if self.replicas > 1:
            # The session may hold what this client id subscribed under another --replicas (the wildcards
            # of a single replica, another share of the machines): drop it, after subscribing what is ours
            # so that nothing of ours falls between the two.
            with self._topics_lock:
                stale = [*TOPICS, *self._not_mine]
            for start in range(0, len(stale), SUBSCRIBE_CHUNK):
                client.unsubscribe(stale[start:start + SUBSCRIBE_CHUNK])
        if not topics:
            self.subscribed.set()  # nothing to subscribe yet: this replica has no machines

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.error("broker refused the ingest's subscriptions: %s", refused[:5])
            return
        self._pending_subscriptions.discard(mid)
        if not self._pending_subscriptions:
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
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the broker should have refused it; a bad topic, not a crash
            topic = "(a topic that is not UTF-8)"
        payload = message.payload
        self.received += 1
        self.inbox.put(Received(message.mid, message.qos, topic, payload, datetime.now(UTC),
                                parse_safely(topic, payload)))

    # --- writer thread

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
                # Wait for more only while more keeps coming: a quiet queue during a catch-up means the
                # broker waits for our acknowledgements, and in light traffic it is the end of a burst.
                batch.append(self.inbox.get(timeout=min(remaining, BATCH_QUIET_S)))
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[Received]) -> None:
        messages = [Incoming(item.topic, item.payload, item.received_at, item.parsed) for item in batch]
        delay = 1.0
        while True:
            try:
                # Django's connection check costs a round trip; once in a while, or after a failure, is enough.
                if self._db_failed or time.monotonic() >= self._next_connection_check:
                    close_old_connections()
                    self._next_connection_check = time.monotonic() + CONNECTION_CHECK_S
                result = store(messages, self.directory, health_id=self.client_id)
                self._db_failed = False
                break
            except Exception as error:
                if not connection_lost(error):
                    raise  # `store` quarantines what the database refuses: anything else is a bug
                # The database is unreachable: keep the batch unacknowledged and try it whole again;
                # the broker redelivers anything we never acknowledge, should we stop meanwhile.
                log.warning("the database cannot be reached (%s); retrying a batch of %d in %.0f s",
                            error, len(batch), delay)
                self._db_failed = True
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, RETRY_DELAY_MAX_S)
        self.stats["stored"] += result.stored
        self.stats["duplicates"] += result.duplicates
        self.stats["rejected"] += sum(result.rejected.values())
        self.stats["gaps"] += result.gaps
        acknowledge(self.client, [item.mid for item in batch if item.qos == 1], self._queue_packet)

    def _writer(self) -> None:
        try:
            # Connect to the database and read the registry now, while the broker connection is being made.
            try:
                close_old_connections()
                self.directory.load()
            except Exception as error:
                log.warning("could not read the machine registry yet: %s", error)
            while not (self.stopping.is_set() and (self.failure or self.inbox.empty())):
                batch = self._take_batch()
                if batch:
                    self._write(batch)
        except BaseException:
            log.critical("the ingest's writer died", exc_info=True)
            raise
        finally:
            connection.close()  # this thread's own connection

    # --- main thread

    def _write_health(self) -> None:
        """Say the process is alive, with what waits in its queue, whatever the traffic (one statement)."""
        try:
            close_old_connections()
            IngestHealth.objects.bulk_create(
                [IngestHealth(client_id=self.client_id, alive_at=timezone.now(), queued=self.inbox.qsize())],
                update_conflicts=True, unique_fields=["client_id"], update_fields=["alive_at", "queued"])
        except Exception as error:
            log.warning("could not write the ingest's health: %s", error)

    def run(self, *, install_signals: bool = True) -> None:
        """Consume until `stop()`; raises `IngestFailed` if a thread of the ingest died."""
        # Everything loaded so far (Django, the models, the URL map) lives as long as the process:
        # keep it out of the garbage collector's scans, which the per-message objects trigger often.
        gc.freeze()
        if install_signals:
            signal.signal(signal.SIGTERM, lambda *_: self.stop())
            signal.signal(signal.SIGINT, lambda *_: self.stop())
        if self.replicas > 1:
            self.refresh_registry()
        connect_kwargs = {}
        if self.protocol == mqtt.MQTTv5:
            connect_kwargs = {"clean_start": False, "properties": _connect_properties(self.session_expiry)}
        self.client.connect_async(self.broker["host"], self.broker["port"], keepalive=30, **connect_kwargs)
        before = set(threading.enumerate())
        self.client.loop_start()
        started = [thread for thread in threading.enumerate() if thread not in before]
        # paho's network thread, found with the public threading API: the one loop_start() just started.
        network = next((t for t in started if t.name.endswith(self.client_id)), started[0] if started else None)
        writer = threading.Thread(target=self._writer, name="ingest-writer", daemon=True)
        writer.start()
        now = time.monotonic()
        next_refresh, next_health, next_log = now + self.registry_refresh, now, now + 30
        try:
            while not self.stopping.wait(0.5):
                if not writer.is_alive() or network is None or not network.is_alive():
                    self.failure = "the writer thread died" if not writer.is_alive() else "paho's network thread died"
                    self.stopping.set()
                    break
                now = time.monotonic()
                if self.replicas > 1 and now >= next_refresh:
                    next_refresh = now + self.registry_refresh
                    try:
                        close_old_connections()
                        self.refresh_registry()
                    except Exception as error:
                        log.warning("could not re-read the machine registry: %s", error)
                if now >= next_health:
                    next_health = now + HEALTH_EVERY_S
                    self._write_health()
                if now >= next_log:
                    next_log = now + 30
                    log.info("ingest %s: %s, queue %d", self.client_id, self.stats, self.inbox.qsize())
        finally:
            # Drain: store and acknowledge the batch in hand before leaving (not after a failure).
            writer.join(timeout=5 if self.failure else 60)
            self.client.loop_stop()
            self.client.disconnect()
            connection.close()  # the main thread's (registry, health)
            log.info("ingest %s stopped: %s", self.client_id, self.stats)
        if self.failure:
            log.critical("ingest %s: %s; exiting for the supervisor to restart it", self.client_id, self.failure)
            raise IngestFailed(self.failure)

    def stop(self) -> None:
        self.stopping.set()


def drop_session(*, url: str, client_id: str, protocol: str = "5", timeout: float = 10.0) -> bool:
    """Delete a retired replica's session at the broker: connect with a clean start and no expiry, then leave.

    Otherwise the broker keeps queueing that replica's topics for a session nobody will
    read, until its expiry. Returns whether the broker accepted the connection.
    """
    broker = broker_settings(url)
    v5 = protocol == "5"
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311, **({} if v5 else {"clean_session": True}))
    if broker["username"]:
        client.username_pw_set(broker["username"], broker["password"])
    if broker["tls"]:
        client.tls_set()
    accepted = threading.Event()
    answered = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            accepted.set()
        else:
            log.error("broker refused %s: %s", printable(client_id, 100), reason_code)
        answered.set()

    client.on_connect = on_connect
    kwargs = {"clean_start": True, "properties": _connect_properties(0)} if v5 else {}
    client.connect(broker["host"], broker["port"], keepalive=30, **kwargs)
    client.loop_start()
    answered.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return accepted.is_set()
