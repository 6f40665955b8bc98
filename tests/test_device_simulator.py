"""The simulated machines behave like the reference firmware and speak docs/mqtt.md.

Plain pytest without Django or a database. The broker test talks to a real MQTT
broker (TEST_MQTT_URL, MQTT_URL or 127.0.0.1:1883): it is skipped when none answers,
and fails instead with FABLAB_REQUIRE_SERVICES=1.
"""

import json
import math
import os
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.simulator import (
    HEARTBEAT_S,
    ICT,
    LABS,
    PROFILES,
    BrokerAddress,
    Change,
    DeviceLink,
    Fleet,
    GroundTruth,
    ReportSchedule,
    SimulatedMachine,
    encode,
    synthetic_registry,
    utc,
)

T0 = datetime(2026, 10, 14, 8, 0, tzinfo=ICT)
STATE_FIELDS = {"seq", "boot", "ts", "state", "power_w", "job", "run_s", "energy_wh", "desired_v"}


def laser(*, interlock=True, seed=7, **kwargs) -> SimulatedMachine:
    return SimulatedMachine("biic", "laser-01", "laser-cutter", interlock=interlock, rng=random.Random(seed),
                            now=T0, boot=41, **kwargs)


def desired(v: int, holder: str | None = "Nguyễn Thị Lan", start: datetime = T0, until: datetime | None = None,
            *, reservation: int | None = 345, following: dict | None = None) -> bytes:
    return json.dumps({"v": v, "holder": holder, "reservation": reservation if holder else None,
                       "from": start.isoformat(), "until": until.isoformat() if until else None,
                       "next": following}, ensure_ascii=False).encode()


def grant(holder: str, start: datetime, until: datetime, reservation: int) -> dict:
    return {"holder": holder, "reservation": reservation, "from": start.isoformat(), "until": until.isoformat()}


def timeline(start: datetime, seconds: float, step: float = 10.0):
    return (start + timedelta(seconds=offset * step) for offset in range(1, int(seconds / step) + 1))


def check_state_message(message: dict) -> None:
    """The field types of docs/mqtt.md, read independently of the simulator's code."""
    assert {"seq", "boot", "ts", "state"} <= set(message) <= STATE_FIELDS, message
    assert type(message["seq"]) is int and message["seq"] >= 1
    boot = message["boot"]
    assert (type(boot) is int) or (type(boot) is str and 0 < len(boot) <= 64)
    ts = message["ts"]
    if type(ts) is int:
        assert ts > 1_600_000_000_000, "Unix milliseconds"
    else:
        assert datetime.fromisoformat(ts).tzinfo is not None, "RFC 3339 with an offset"
    assert message["state"] in {"off", "idle", "running", "error"}
    if "power_w" in message:
        power = message["power_w"]
        assert type(power) in (int, float) and math.isfinite(power) and power >= 0
    if "job" in message:
        assert type(message["job"]) is str and message["job"]
    for counter in ("run_s", "energy_wh"):
        if counter in message:
            value = message[counter]
            assert type(value) in (int, float) and math.isfinite(value) and 0 <= value <= 2**53
    if "desired_v" in message:
        assert type(message["desired_v"]) is int and 0 <= message["desired_v"] <= 2**53
    assert json.loads(encode(message)) == message


# --- seq and boot ---------------------------------------------------------------------------------

def test_each_message_takes_the_next_seq_starting_at_one():
    device = laser(interlock=False)
    seqs = []
    for now in timeline(T0, 4 * 3600, step=60):
        device.advance(now)
        seqs.append(device.report(now)["seq"])
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_restart_gives_a_new_boot_and_starts_seq_again():
    device = laser(interlock=False)
    for _ in range(3):
        device.report(T0)
    device.restart(T0)
    first = device.report(T0)
    assert (first["boot"], first["seq"]) == (42, 1)
    assert device.report(T0)["seq"] == 2


def test_machines_lose_power_now_and_then_and_each_time_seq_starts_again():
    device = laser(interlock=False)
    boots = []
    for now in timeline(T0, 10 * 24 * 3600, step=60):
        if device.advance(now) is Change.RESTART:
            assert (device.powered, device.state) == (False, "off")
            device.power_up(now)
            message = device.report(now)
            assert message["seq"] == 1 and message["state"] == "idle" and "job" not in message
            boots.append(message["boot"])
    # Twelve simulated hours between losses on average: about twenty in ten days.
    assert 5 <= len(boots) <= 50
    assert boots == list(range(42, 42 + len(boots)))


# --- interlock and desired state -----------------------------------------------------------------

def test_an_interlocked_machine_stays_off_without_a_desired_state():
    device = laser()
    for now in timeline(T0, 3 * 24 * 3600, step=30):
        device.advance(now)
        message = device.report(now)
        assert (message["state"], message["power_w"], message["desired_v"]) == ("off", 0.0, 0), now


def test_a_granted_machine_runs_jobs_and_stops_at_until():
    device = laser()
    device.next_crash_in = math.inf
    until = T0 + timedelta(hours=3)
    assert device.handle_desired(desired(1, until=until), T0) == {"v": 1, "ok": True}
    assert device.state == "idle"  # the contactor closed: the laser is powered, waiting for a job
    seen = set()
    for now in timeline(T0, 3 * 3600 - 10):
        device.advance(now)
        seen.add(device.state)
    assert "running" in seen
    assert device.advance(until) is Change.STATE
    assert (device.state, device.job, device.report(until)["power_w"]) == ("off", "", 0.0)
    for now in timeline(until, 6 * 3600, step=30):
        device.advance(now)
        assert device.state == "off"
    assert device.report(until + timedelta(hours=7))["desired_v"] == 1


def test_the_interlock_closes_only_from_from_on_the_devices_own_clock():
    device = laser()
    start = T0 + timedelta(minutes=20)
    device.handle_desired(desired(1, start=start, until=start + timedelta(hours=1)), T0)
    assert device.state == "off"
    device.advance(start - timedelta(seconds=1))
    assert device.state == "off"
    assert device.advance(start) is Change.STATE and device.state == "idle"


def test_the_next_holder_takes_over_at_the_boundary_without_any_message():
    device = laser(mean_uptime_h=None)
    eleven, noon = T0 + timedelta(hours=3), T0 + timedelta(hours=4)
    device.handle_desired(desired(1, start=T0 + timedelta(hours=2), until=eleven, reservation=345,
                                  following=grant("Trần Minh Khoa", eleven, noon, 346)), T0 + timedelta(hours=2))
    for now in timeline(T0 + timedelta(hours=2), 2 * 3600, step=5):
        device.advance(now)
        assert device.interlock_closed(now) == (now < noon), now
        assert device.state != "off" or now >= noon, now
    closed = device.truth.closed
    assert [(start, end, reservation) for start, end, reservation in closed] == [
        (utc(T0 + timedelta(hours=2)), utc(eleven), 345), (utc(eleven), utc(noon), 346)]


def test_an_old_or_redelivered_version_changes_nothing():
    device = laser()
    off = desired(7, holder=None, start=T0)
    on = desired(8, start=T0, until=T0 + timedelta(hours=1))
    assert device.handle_desired(on, T0)["ok"] is True
    assert device.state == "idle"
    ack = device.handle_desired(off, T0 + timedelta(minutes=1))  # reordered: the older switch-off arrives late
    assert ack["v"] == 7 and device.desired_v == 8 and device.state == "idle"
    device.handle_desired(on, T0 + timedelta(minutes=2))  # redelivered
    assert device.desired_v == 8 and device.state == "idle"
    assert device.handle_desired(desired(9, holder=None, start=T0), T0 + timedelta(minutes=3)) == {"v": 9, "ok": True}
    assert device.state == "off"


def test_a_switch_off_cuts_the_power_of_a_running_machine_at_once():
    device = laser()
    device.handle_desired(desired(1, until=T0 + timedelta(hours=8)), T0)
    now = next(now for now in timeline(T0, 8 * 3600) if device.advance(now) is Change.STATE
               and device.state == "running")
    assert device.handle_desired(desired(2, holder=None, start=now), now) == {"v": 2, "ok": True}
    assert (device.state, device.job) == ("off", "")
    device.advance(now + timedelta(hours=1))
    assert device.state == "off"
    assert device.truth.running[-1][1] == utc(now)


def test_the_desired_state_survives_a_power_loss_as_the_firmware_keeps_it_in_flash():
    device = laser()
    device.handle_desired(desired(3, until=T0 + timedelta(hours=2)), T0)
    device.lose_power(T0 + timedelta(minutes=5))
    assert device.state == "off" and device.truth.powered_off == [[utc(T0 + timedelta(minutes=5)), None]]
    device.power_up(T0 + timedelta(minutes=6))
    assert device.state == "idle" and device.desired_v == 3
    first = device.report(T0 + timedelta(minutes=6))
    assert (first["seq"], first["run_s"], first["energy_wh"], first["desired_v"]) == (1, 0.0, 0.0, 3)
    device.advance(T0 + timedelta(hours=2))
    assert device.state == "off"


def test_counters_add_up_the_running_time_and_energy_since_boot():
    device = laser(mean_uptime_h=None)
    device.handle_desired(desired(1, until=T0 + timedelta(hours=6)), T0)
    last = {"run_s": 0.0, "energy_wh": 0.0}
    for now in timeline(T0, 6 * 3600, step=7):
        device.advance(now)
        message = device.report(now)
        assert message["run_s"] >= last["run_s"] and message["energy_wh"] >= last["energy_wh"]
        last = message
    ran = GroundTruth.seconds(device.truth.running, now)
    assert ran > 600
    assert abs(last["run_s"] - ran) < 0.01
    assert last["energy_wh"] > last["run_s"] * 900 / 3600  # a laser draws at least a kilowatt when cutting


def test_a_machine_without_interlock_runs_on_its_own_and_still_acks():
    device = SimulatedMachine("eiu", "printer-01", "printer-3d", rng=random.Random(3), now=T0)
    states = set()
    for now in timeline(T0, 24 * 3600, step=30):
        device.advance(now)
        states.add(device.state)
    assert {"idle", "running"} <= states
    ack = device.handle_desired(desired(1, until=T0 + timedelta(days=2)), T0 + timedelta(days=1))
    assert ack["v"] == 1 and ack["ok"] is True and ack["reason"]
    assert device.truth.closed == []


def test_users_who_keep_to_the_bookings_run_a_machine_without_interlock_only_inside_the_grant():
    """The laptop demo's printers and benches: nobody prints at dawn with nobody booked."""
    device = SimulatedMachine("eiu", "printer-01", "printer-3d", rng=random.Random(3), now=T0,
                              mean_uptime_h=None, keeps_to_bookings=True)
    start, until = T0 + timedelta(hours=6), T0 + timedelta(hours=9)
    device.handle_desired(desired(1, start=start, until=until), T0)
    running = []
    for now in timeline(T0, 24 * 3600, step=30):
        device.advance(now)
        if device.state == "running":
            running.append(now)
    assert running, "the holder uses the printer during the reservation"
    assert all(start <= moment < until for moment in running), (running[0], running[-1])
    assert all(start <= utc(a) and (b is None or b <= until)
               for a, b in device.truth.running), device.truth.running


@pytest.mark.parametrize(("payload", "answered_v"), [
    (b"not json", None),
    (b"\xff\xfe{", None),
    (b'["v", 1]', None),
    (b'{"holder": "Lan", "from": "2026-10-14T08:00:00+07:00", "until": null}', None),
    (b'{"v": "4", "holder": "Lan", "from": "2026-10-14T08:00:00+07:00"}', None),
    (b'{"v": true, "holder": "Lan", "from": "2026-10-14T08:00:00+07:00"}', None),
    (b'{"v": 4, "holder": "Lan"}', 4),
    (b'{"v": 4, "holder": "Lan", "from": "2026-10-14T08:00:00"}', 4),
    (b'{"v": 4, "holder": "Lan", "from": "at eight"}', 4),
    (b'{"v": 4, "holder": 5, "from": "2026-10-14T08:00:00+07:00"}', 4),
    (b'{"v": 4, "holder": "Lan", "from": "2026-10-14T08:00:00+07:00", "next": []}', 4),
    (b'{"v": 4, "holder": "Lan", "from": "2026-10-14T08:00:00+07:00", "next": {"holder": "K"}}', 4),
])
def test_a_malformed_desired_state_is_answered_not_ok_and_changes_nothing(payload, answered_v):
    device = laser()
    ack = device.handle_desired(payload, T0)
    assert ack["ok"] is False and isinstance(ack["reason"], str) and ack["reason"]
    assert ack["v"] == answered_v
    assert device.desired_v == 0 and device.state == "off"


# --- what the messages say ------------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(PROFILES))
def test_messages_follow_the_protocol_with_the_power_draw_of_the_machine_type(kind):
    profile = PROFILES[kind]
    device = SimulatedMachine("vsvc", f"{profile.slug}-01", kind, interlock=profile.interlocked,
                              rng=random.Random(kind), now=T0, unix_ms_ts=kind == "pcb-mill")
    device.handle_desired(desired(1, until=T0 + timedelta(days=3)), T0)
    seen = set()
    for now in timeline(T0, 2 * 24 * 3600, step=60):
        device.advance(now)
        message = device.report(now)
        check_state_message(message)
        power, state = message["power_w"], message["state"]
        if state == "running":
            low, high = profile.running_w
            assert low * 0.93 - 0.05 <= power <= high * 1.07 + 0.05 and message["job"]
        elif state == "off":
            assert power == 0
        else:
            assert profile.idle_w[0] <= power <= profile.idle_w[1]
        seen.add(state)
    assert {"idle", "running"} <= seen


STEP = 0.05  # how often the fleet's loop looks at a machine, at most


def one_hour_of_messages(rate: float, seed: int) -> tuple[int, float]:
    """Messages sent in an hour with a state change a minute on average, and the longest silence."""
    rng = random.Random(seed)
    schedule = ReportSchedule(rate, start=0.0, phase=rng.random())
    sent, last, longest = 0, 0.0, 0.0
    for step in range(1, int(3600 / STEP) + 1):
        now = step * STEP
        if rng.random() < 0.05 / 60 or schedule.due(now):
            schedule.sent(now)
            sent, longest, last = sent + 1, max(longest, now - last), now
    return sent, longest


@pytest.mark.parametrize("rate", [2.0, 0.5, 0.1])
def test_the_rate_is_kept_on_average_with_change_messages_counted(rate):
    sent, longest = one_hour_of_messages(rate, seed=int(rate * 100))
    assert abs(sent - 3600 * rate) <= 0.02 * 3600 * rate
    assert longest <= HEARTBEAT_S


def test_a_machine_below_the_heartbeat_rate_still_reports_every_30s():
    sent, longest = one_hour_of_messages(0.001, seed=1)
    assert longest <= HEARTBEAT_S + STEP + 1e-9  # seen at the loop's next look
    assert sent >= 3600 / HEARTBEAT_S


def test_a_synthetic_fleet_spreads_over_the_four_labs_with_unique_slugs():
    registry = synthetic_registry(20)
    assert {entry["lab"] for entry in registry} == set(LABS)
    assert len({(entry["lab"], entry["machine"]) for entry in registry}) == 20
    for entry in registry:
        assert entry["interlock"] == PROFILES[entry["type"]].interlocked
        assert entry["machine"].startswith(PROFILES[entry["type"]].slug + "-")


def test_broker_urls_carry_the_login_and_tls():
    assert BrokerAddress.from_url("mqtts://biic.laser-01:p%40ss@mqtt.fablab.vn") == BrokerAddress(
        "mqtt.fablab.vn", 8883, "biic.laser-01", "p@ss", True)
    assert BrokerAddress.from_url("mqtt://10.0.0.5:1884") == BrokerAddress("10.0.0.5", 1884, None, None, False)
    with pytest.raises(ValueError, match="mqtt://"):
        BrokerAddress.from_url("http://10.0.0.5")


class RecordingClient:
    """Stands in for paho's client: keeps what the device publishes."""

    def __init__(self):
        self.published: list[tuple[str, bytes, int, bool]] = []

    def publish(self, topic, payload, qos=0, retain=False):
        self.published.append((topic, payload, qos, retain))
        return SimpleNamespace(mid=len(self.published), rc=mqtt.MQTT_ERR_SUCCESS)


def test_a_desired_state_is_acked_by_version_and_a_contactor_change_reported_at_once():
    device = laser()
    link = DeviceLink(device, BrokerAddress.from_url("mqtt://127.0.0.1"), username=None, password=None,
                      protocol=mqtt.MQTTv311, schedule=ReportSchedule(0.05, time.monotonic()), rng=random.Random(1))
    client = link.client = RecordingClient()
    link.connected.set()
    now = datetime.now(ICT)
    link._on_message(client, None, SimpleNamespace(topic="fablab/biic/laser-01/desired",
                                                   payload=desired(5, start=now, until=now + timedelta(hours=1))))
    (ack_topic, ack, ack_qos, _), (state_topic, state, state_qos, _) = client.published
    assert (ack_topic, json.loads(ack), ack_qos) == ("fablab/biic/laser-01/ack", {"v": 5, "ok": True}, 1)
    assert (state_topic, state_qos) == ("fablab/biic/laser-01/state", 1)
    assert (json.loads(state)["state"], json.loads(state)["desired_v"]) == ("idle", 5)
    link._on_message(client, None, SimpleNamespace(topic="fablab/biic/laser-01/desired",
                                                   payload=desired(5, start=now, until=now + timedelta(hours=1))))
    assert len(client.published) == 3  # the same version again: the ack alone


# --- on a real broker -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broker_url() -> str:
    # Not conftest's mqtt_url: this file also runs without Django (`-p no:django --noconftest`).
    url = os.environ.get("TEST_MQTT_URL") or os.environ.get("MQTT_URL") or "mqtt://127.0.0.1:1883"
    address = BrokerAddress.from_url(url)
    try:
        socket.create_connection((address.host, address.port), timeout=2).close()
    except OSError:
        if os.environ.get("FABLAB_REQUIRE_SERVICES") == "1":
            pytest.fail(f"required service missing: no MQTT broker at {url}", pytrace=False)
        pytest.skip(f"no MQTT broker at {url}")
    return url


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds}s for {what}")
        time.sleep(0.05)


class Watcher:
    """A subscriber that keeps every message it gets as (topic, payload, retain)."""

    def __init__(self, broker: BrokerAddress, topic_filter: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:10]}")
        if broker.username:
            self.client.username_pw_set(broker.username, broker.password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, bool(m.retain)))
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic_filter, qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for t, payload, _ in list(self.messages) if t == topic]

    def states(self, topic: str) -> list[dict]:
        return [json.loads(payload) for payload in self.payloads(topic)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.mqtt
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_the_fleet_speaks_the_protocol_on_a_real_broker(broker_url, protocol):
    lab = f"test-{uuid.uuid4().hex[:8]}"  # topics of this test alone; its retained messages are removed after
    laser, printer = f"fablab/{lab}/laser-01", f"fablab/{lab}/printer-01"
    registry = [{"lab": lab, "machine": "laser-01", "type": "laser-cutter", "interlock": True},
                {"lab": lab, "machine": "printer-01", "type": "printer-3d", "interlock": False}]
    broker = BrokerAddress.from_url(broker_url)
    watcher = Watcher(broker, f"fablab/{lab}/#")
    fleet = Fleet(registry, url=broker_url, protocol=protocol, rate=5, seed=11)
    printer_link = fleet.links[f"{lab}/printer-01"]
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    runner.start()
    try:
        for prefix in (laser, printer):
            wait_until(lambda p=prefix: b"online" in watcher.payloads(f"{p}/status"), 10, f"{prefix} online")
        newcomer = Watcher(broker, f"fablab/{lab}/+/status")
        wait_until(lambda: len(newcomer.messages) >= 2, 10, "the retained statuses")
        newcomer.close()
        assert sorted(newcomer.messages) == [(f"{laser}/status", b"online", True),
                                             (f"{printer}/status", b"online", True)]

        now = datetime.now(ICT)
        watcher.client.publish(f"{laser}/desired", desired(3, start=now, until=now + timedelta(minutes=5)),
                               qos=1, retain=True)
        wait_until(lambda: watcher.payloads(f"{laser}/ack"), 10, "the ack")
        assert json.loads(watcher.payloads(f"{laser}/ack")[0]) == {"v": 3, "ok": True}
        wait_until(lambda: [(m["state"], m["desired_v"]) for m in watcher.states(f"{laser}/state")][-1:]
                   == [("idle", 3)], 5, "the laser powered through its interlock")
        watcher.client.publish(f"{laser}/desired", b"{not json", qos=1)
        wait_until(lambda: len(watcher.payloads(f"{laser}/ack")) == 2, 10, "the second ack")
        assert json.loads(watcher.payloads(f"{laser}/ack")[1])["ok"] is False

        wait_until(lambda: len(watcher.payloads(f"{printer}/state")) >= 5, 10, "five printer reports")
        first_boot = watcher.states(f"{printer}/state")[0]["boot"]
        printer_link.power_loss(1.0)
        wait_until(lambda: watcher.payloads(f"{printer}/status")[-2:] == [b"offline", b"online"], 15,
                   "the last will, then the printer back online")
        wait_until(lambda: any(m["boot"] == first_boot + 1 and m["seq"] >= 3
                               for m in watcher.states(f"{printer}/state")), 10, "the printer's new boot reporting")
    finally:
        stop.set()
        runner.join(15)
        try:
            for prefix in (laser, printer):
                wait_until(lambda p=prefix: watcher.payloads(f"{p}/status")[-1:] == [b"offline"], 10,
                           f"{prefix} saying goodbye")
        finally:
            for prefix in (laser, printer):
                watcher.client.publish(f"{prefix}/status", b"", qos=1, retain=True).wait_for_publish(5)
            watcher.client.publish(f"{laser}/desired", b"", qos=1, retain=True).wait_for_publish(5)
            watcher.close()
    assert not runner.is_alive()
    for prefix in (laser, printer):
        messages = watcher.states(f"{prefix}/state")
        for message in messages:
            check_state_message(message)
        for boot in dict.fromkeys(m["boot"] for m in messages):
            seqs = [m["seq"] for m in messages if m["boot"] == boot]
            assert seqs == list(range(1, len(seqs) + 1)), (prefix, boot)
    assert list(dict.fromkeys(m["boot"] for m in watcher.states(f"{printer}/state"))) == [first_boot, first_boot + 1]


def run_fleet(registry, url, **options):
    fleet = Fleet(registry, url=url, rate=options.pop("rate", 5), seed=options.pop("seed", 5), mean_uptime_h=None,
                  **options)
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, args=(stop,), daemon=True)
    runner.start()
    return fleet, stop, runner


@pytest.mark.mqtt
def test_a_wifi_drop_fires_the_will_keeps_the_machine_running_and_delivers_every_report(broker_url):
    lab = f"test-{uuid.uuid4().hex[:8]}"
    prefix = f"fablab/{lab}/laser-01"
    broker = BrokerAddress.from_url(broker_url)
    watcher = Watcher(broker, f"fablab/{lab}/#")
    now = datetime.now(ICT)
    watcher.client.publish(f"{prefix}/desired", desired(1, start=now - timedelta(minutes=1),
                                                        until=now + timedelta(minutes=10)),
                           qos=1, retain=True).wait_for_publish(5)
    fleet, stop, runner = run_fleet([{"lab": lab, "machine": "laser-01", "type": "laser-cutter", "interlock": True}],
                                    broker_url)
    link = fleet.links[f"{lab}/laser-01"]
    try:
        wait_until(lambda: any(m["desired_v"] == 1 and m["state"] != "off" for m in watcher.states(f"{prefix}/state")),
                   10, "the laser powered by the retained desired state")
        with link.lock:
            link.machine._start_job(datetime.now(ICT))
            link.machine._left = math.inf  # a long job under way
        wait_until(lambda: watcher.states(f"{prefix}/state")[-1]["state"] == "running", 5, "running reported")
        link.wifi_drop(2.0)
        wait_until(lambda: watcher.payloads(f"{prefix}/status")[-1:] == [b"offline"], 5, "the broker's last will")
        with link.lock:
            assert link.machine.state == "running"  # the machine does not care about WiFi
            made_offline = len(link._outbox)
        wait_until(lambda: watcher.payloads(f"{prefix}/status")[-1:] == [b"online"], 10, "the link back")
        with link.lock:
            boot, last_seq = str(link.machine.boot), link.machine.seq
        assert made_offline >= 5  # five reports a second, two seconds without a link
        wait_until(lambda: {(boot, seq) for seq in range(1, last_seq + 1)} <= link.acked, 10,
                   "every report acknowledged by the broker")
        seqs = sorted({m["seq"] for m in watcher.states(f"{prefix}/state")})
        assert seqs[:last_seq] == list(range(1, last_seq + 1))
        assert link.machine.truth.running[-1][1] is None  # still running, without a break
    finally:
        stop.set()
        runner.join(15)
        watcher.client.publish(f"{prefix}/status", b"", qos=1, retain=True).wait_for_publish(5)
        watcher.client.publish(f"{prefix}/desired", b"", qos=1, retain=True).wait_for_publish(5)
        watcher.close()


@pytest.mark.mqtt
def test_a_device_coming_back_from_a_power_loss_applies_the_retained_desired_state(broker_url):
    lab = f"test-{uuid.uuid4().hex[:8]}"
    prefix = f"fablab/{lab}/cnc-01"
    broker = BrokerAddress.from_url(broker_url)
    watcher = Watcher(broker, f"fablab/{lab}/#")
    fleet, stop, runner = run_fleet([{"lab": lab, "machine": "cnc-01", "type": "cnc-router", "interlock": True}],
                                    broker_url)
    link = fleet.links[f"{lab}/cnc-01"]
    try:
        wait_until(lambda: b"online" in watcher.payloads(f"{prefix}/status"), 10, "online")
        link.power_loss(1.5)
        now = datetime.now(ICT)
        # Published while the device is dark: only the retained message can reach it.
        watcher.client.publish(f"{prefix}/desired", desired(4, start=now, until=now + timedelta(minutes=5)),
                               qos=1, retain=True).wait_for_publish(5)
        wait_until(lambda: any(m["desired_v"] == 4 for m in watcher.states(f"{prefix}/state")), 15,
                   "the new boot reporting the retained version")
        boots = list(dict.fromkeys(m["boot"] for m in watcher.states(f"{prefix}/state")))
        assert len(boots) == 2
        with link.lock:
            assert link.machine.interlock_closed(datetime.now(ICT))
            assert len(link.machine.truth.powered_off) == 1 and link.machine.truth.powered_off[0][1] is not None
    finally:
        stop.set()
        runner.join(15)
        watcher.client.publish(f"{prefix}/status", b"", qos=1, retain=True).wait_for_publish(5)
        watcher.client.publish(f"{prefix}/desired", b"", qos=1, retain=True).wait_for_publish(5)
        watcher.close()
