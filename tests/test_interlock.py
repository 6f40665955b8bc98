"""The interlock: one place decides who may use a machine now, and the device follows its desired state.

The stories run on real PostgreSQL and a real broker: the service publishes what
`booking.interlock` decided (retained, on `fablab/{lab}/{machine}/desired`), a
subscriber takes it off the broker as a device would, and the simulator's machine
(devices/simulator.py) applies it on its own clock.
"""

import json
import random
import threading
import uuid
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from django.utils import timezone

from devices.simulator import ICT, SimulatedMachine
from fablab_ops.booking import interlock, services
from fablab_ops.booking.interlock import Desired, Facts, Grant, OverrideFact, ReservationFact, decide
from fablab_ops.booking.models import MachineDesiredState, MachineOverride, ReservationStatus
from fablab_ops.booking.tasks import finish_reservations, sync_desired_states
from fablab_ops.door import services as door
from fablab_ops.machines.commands import broker_settings
from fablab_ops.machines.models import MachineStatus
from tests import factories
from tests.conftest import client_for
from tests.mqtt_support import wait_for

TEN = datetime(2026, 10, 14, 10, 0, tzinfo=ICT)


def at(hours: float = 0, minutes: float = 0) -> datetime:
    return TEN + timedelta(hours=hours, minutes=minutes)


def booked(pk: int, start: datetime, end: datetime, *, certified: bool = True, name: str = "") -> ReservationFact:
    return ReservationFact(pk, pk * 10, name or f"Học viên {pk}", start, end, certified)


def facts(*reservations, available=True, maintenance=(), overrides=()) -> Facts:
    return Facts(available, tuple(maintenance), tuple(overrides), tuple(reservations))


# --- the rule, as a pure function ----------------------------------------------------------------------

def test_the_holder_is_the_checked_in_reservation_covering_now_until_its_end():
    desired = decide(facts(booked(1, at(0), at(1))), at(0, 20))
    assert desired == Desired(Grant("Học viên 1", 10, 1, at(0), at(1)), None)


def test_a_reservation_back_to_back_or_checked_in_early_is_next():
    a, b = booked(1, at(0), at(1)), booked(2, at(1), at(2))
    assert decide(facts(a, b), at(0, 40)) == Desired(Grant("Học viên 1", 10, 1, at(0), at(1)),
                                                     Grant("Học viên 2", 20, 2, at(1), at(2)))
    # Nobody on the machine yet: the early one is next, from its own start.
    assert decide(facts(b), at(0, 40)) == Desired(None, Grant("Học viên 2", 20, 2, at(1), at(2)))
    assert decide(facts(b), at(1, 1)).current.reservation_id == 2


def test_no_valid_certification_no_machine():
    assert decide(facts(booked(1, at(0), at(1), certified=False)), at(0, 5)) == Desired(None)


def test_an_unavailable_machine_or_a_maintenance_window_opens_the_interlock():
    assert decide(facts(booked(1, at(0), at(1)), available=False), at(0, 5)) == Desired(None)
    window = (at(0), at(0, 30))
    assert decide(facts(booked(1, at(0), at(1)), maintenance=[window]), at(0, 5)) == \
        Desired(None, Grant("Học viên 1", 10, 1, at(0, 30), at(1)))
    # A window starting inside a reservation cuts its grant short.
    cut = decide(facts(booked(1, at(0), at(1)), maintenance=[(at(0, 30), at(2))]), at(0, 5))
    assert cut.current.until == at(0, 30)
    # One inside it gives the learner the machine back at its end, and the device knows it in advance.
    split = decide(facts(booked(1, at(0), at(1)), maintenance=[(at(0, 20), at(0, 40))]), at(0, 25))
    assert split == Desired(None, Grant("Học viên 1", 10, 1, at(0, 40), at(1)))
    assert split.boundary() == at(0, 40)


def test_a_technicians_override_wins():
    reservation = booked(1, at(0), at(1))
    off = OverrideFact("off", 99, "Trần Văn Kỹ", at(0, 10), None, at(0, 10))
    assert decide(facts(reservation, overrides=[off]), at(0, 20)) == Desired(None)
    maintenance = OverrideFact("maintenance", 99, "Trần Văn Kỹ", at(0, 10), at(3), at(0, 10))
    assert decide(facts(available=False, maintenance=[(at(0), at(5))], overrides=[maintenance]), at(0, 20)) == \
        Desired(Grant("Trần Văn Kỹ", 99, None, at(0, 10), at(3)))
    later_off = OverrideFact("off", 98, "Lê Văn Hai", at(0, 15), None, at(0, 15))
    assert decide(facts(overrides=[maintenance, later_off]), at(0, 20)) == Desired(None)


# --- stored, versioned, published -------------------------------------------------------------------

@pytest.fixture
def laser(lab):
    return factories.MachineFactory(lab=lab, slug=f"laser-{uuid.uuid4().hex[:6]}", has_interlock=True,
                                    machine_type=factories.MachineTypeFactory(slug="laser-cutter"))


def certified_learner(machine, name: str):
    learner = factories.LearnerFactory(full_name=name)
    factories.CertificationFactory(user=learner, machine_type=machine.machine_type)
    return learner


def reservation(machine, learner, start, end):
    return factories.ReservationFactory(machine=machine, user=learner, start=start, end=end)


@pytest.mark.django_db
def test_the_version_grows_only_when_the_decision_changes(laser, technician):
    start = timezone.now() - timedelta(minutes=5)
    a = reservation(laser, certified_learner(laser, "Nguyễn Thị Lan"), start, start + timedelta(hours=1))
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    state = MachineDesiredState.objects.get(machine=laser)
    assert (state.version, state.holder_name, state.reservation_id) == (1, "Nguyễn Thị Lan", a.pk)
    assert interlock.refresh([laser.pk]) == []
    assert MachineDesiredState.objects.get(machine=laser).version == 1
    services.switch_off(a.pk, by=technician)
    state = MachineDesiredState.objects.get(machine=laser)
    assert (state.version, state.holder_name, state.published_version) == (2, None, 0)
    assert state.valid_from is not None and interlock.payload(state)["from"].endswith("+07:00")


class DesiredListener:
    """Takes a machine's desired states off the broker as its device would (retained one included)."""

    def __init__(self, url: str, topic: str):
        self.messages: list[bytes] = []
        broker = broker_settings(url)
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"device-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self.messages.append(m.payload)
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(broker["host"], broker["port"])
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert subscribed.wait(10), "no SUBACK"

    def versions(self) -> list[int]:
        return [json.loads(m)["v"] for m in list(self.messages) if m]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def clear_retained(url: str, topic: str) -> None:
    broker = broker_settings(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"clear-{uuid.uuid4().hex[:8]}")
    client.connect(broker["host"], broker["port"])
    client.loop_start()
    client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def desired_topic(mqtt_url, settings, laser):
    settings.MQTT_URL = mqtt_url
    topic = f"{laser.topic_prefix}/desired"
    yield topic
    clear_retained(mqtt_url, topic)


def frozen(monkeypatch, moment: datetime) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_reservation_ending_never_switches_off_the_next_learner(mqtt_url, desired_topic, laser, technician,
                                                                  monkeypatch):
    """A 10:00–11:00 checked in, B 11:00–12:00 checked in at 10:40: B's machine stays on from 11:00 to 12:00."""
    ten = timezone.now().replace(microsecond=0) - timedelta(minutes=50)  # A's start, 50 minutes ago
    lan, khoa = certified_learner(laser, "Nguyễn Thị Lan"), certified_learner(laser, "Trần Minh Khoa")
    a = reservation(laser, lan, ten, ten + timedelta(hours=1))
    b = reservation(laser, khoa, ten + timedelta(hours=1), ten + timedelta(hours=2))
    device = SimulatedMachine(laser.lab.slug, laser.slug, "laser-cutter", interlock=True, rng=random.Random(4),
                              now=ten, mean_uptime_h=None)
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician, now=ten)
    door.check_in_manually("reservation", b.pk, lab=laser.lab, by=technician, now=ten + timedelta(minutes=40))
    listener = DesiredListener(mqtt_url, desired_topic)
    try:
        wait_for(lambda: listener.versions()[-1:] == [2], 10, "the retained desired state v2")
        v2 = listener.messages[-1]
        assert json.loads(v2)["holder"] == "Nguyễn Thị Lan"
        assert json.loads(v2)["next"]["holder"] == "Trần Minh Khoa"
        assert json.loads(v2)["until"].endswith("+07:00")
        device.handle_desired(v2, ten + timedelta(minutes=40))
        # Beat runs half a minute after A's end: A completed, the machine decided again for B.
        frozen(monkeypatch, ten + timedelta(hours=1, seconds=30))
        assert finish_reservations() == 1
        sync_desired_states()
        wait_for(lambda: listener.versions()[-1:] == [3], 10, "v3 for B")
        v3 = listener.messages[-1]
        assert (json.loads(v3)["holder"], json.loads(v3)["reservation"]) == ("Trần Minh Khoa", b.pk)
        for minute in range(40, 120):
            now = ten + timedelta(minutes=minute)
            device.advance(now)
            if minute == 60:
                device.handle_desired(v3, now)
                device.handle_desired(v2, now)  # redelivered, or reordered after v3: changes nothing
                assert device.desired_v == 3
            assert device.interlock_closed(now), f"switched off at {minute} minutes, inside A's or B's time"
        device.advance(ten + timedelta(hours=2))
        assert not device.interlock_closed(ten + timedelta(hours=2))
        closed = [(start, end, holder) for start, end, holder in device.truth.closed]
        assert closed[-1][1:] == (ten + timedelta(hours=2), b.pk) and closed[-1][0] == ten + timedelta(hours=1)
    finally:
        listener.close()
    # A device (re)connecting now gets the current state, from the retained message alone.
    newcomer = DesiredListener(mqtt_url, desired_topic)
    try:
        wait_for(lambda: newcomer.versions() == [3], 10, "the retained v3")
    finally:
        newcomer.close()
    assert MachineDesiredState.objects.get(machine=laser).published_version == 3


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_technicians_switch_off_is_honoured_and_ending_it_gives_the_machine_back(
        mqtt_url, desired_topic, laser, technician):
    start = timezone.now() - timedelta(minutes=10)
    a = reservation(laser, certified_learner(laser, "Nguyễn Thị Lan"), start, start + timedelta(hours=1))
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    device = SimulatedMachine(laser.lab.slug, laser.slug, "laser-cutter", interlock=True, rng=random.Random(2),
                              now=datetime.now(ICT), mean_uptime_h=None)
    listener = DesiredListener(mqtt_url, desired_topic)
    try:
        wait_for(lambda: listener.versions()[-1:] == [1], 10, "v1")
        device.handle_desired(listener.messages[-1], datetime.now(ICT))
        assert device.state == "idle"
        response = client_for(technician).post(f"/api/booking/machines/{laser.lab.slug}/{laser.slug}/switch-off",
                                               {"reason": "Khói bất thường"}, content_type="application/json")
        assert response.status_code == 201, response.content
        wait_for(lambda: listener.versions()[-1:] == [2], 10, "v2")
        off = json.loads(listener.messages[-1])
        assert (off["holder"], off["until"], off["next"]) == (None, None, None)
        device.handle_desired(listener.messages[-1], datetime.now(ICT))
        assert device.state == "off" and not device.interlock_closed(datetime.now(ICT) + timedelta(minutes=5))
        ended = client_for(technician).post(f"/api/booking/overrides/{response.json()['id']}/end")
        assert ended.status_code == 200 and ended.json()["ended_at"]
        wait_for(lambda: listener.versions()[-1:] == [3], 10, "v3")
        assert json.loads(listener.messages[-1])["holder"] == "Nguyễn Thị Lan"
    finally:
        listener.close()


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_certification_revoked_mid_reservation_opens_the_interlock(mqtt_url, desired_topic, laser, technician):
    lan = certified_learner(laser, "Nguyễn Thị Lan")
    start = timezone.now() - timedelta(minutes=10)
    a = reservation(laser, lan, start, start + timedelta(hours=1))
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    device = SimulatedMachine(laser.lab.slug, laser.slug, "laser-cutter", interlock=True, rng=random.Random(2),
                              now=datetime.now(ICT), mean_uptime_h=None)
    listener = DesiredListener(mqtt_url, desired_topic)
    try:
        wait_for(lambda: listener.versions()[-1:] == [1], 10, "v1")
        device.handle_desired(listener.messages[-1], datetime.now(ICT))
        assert device.interlock_closed(datetime.now(ICT))
        services.revoke_certification(lan.certifications.get().pk, by=technician, reason="Vi phạm an toàn")
        wait_for(lambda: listener.versions()[-1:] == [2], 10, "v2")
        device.handle_desired(listener.messages[-1], datetime.now(ICT))
        assert not device.interlock_closed(datetime.now(ICT)) and device.state == "off"
    finally:
        listener.close()


@pytest.mark.django_db
def test_enable_for_maintenance_powers_the_machine_for_the_technician_until_the_given_end(laser, technician,
                                                                                          settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:9"
    laser.status = MachineStatus.MAINTENANCE
    laser.save()
    until = timezone.now() + timedelta(hours=2)
    response = client_for(technician).post(f"/api/booking/machines/{laser.lab.slug}/{laser.slug}/maintenance-enable",
                                           {"until": until.isoformat(), "reason": "Căn chỉnh gương"},
                                           content_type="application/json")
    assert response.status_code == 201, response.content
    state = MachineDesiredState.objects.get(machine=laser)
    payload = interlock.payload(state)
    assert (payload["holder"], payload["reservation"]) == ("Trần Văn Kỹ", None)
    assert datetime.fromisoformat(payload["until"]) == until
    assert MachineOverride.objects.get(machine=laser).kind == "maintenance"


@pytest.mark.django_db
def test_only_the_labs_staff_may_override_its_machines(laser, other_lab, learner):
    outsider = factories.TechnicianFactory(labs=[other_lab])
    for user in (outsider, learner):
        response = client_for(user).post(f"/api/booking/machines/{laser.lab.slug}/{laser.slug}/switch-off", {},
                                         content_type="application/json")
        assert response.status_code == 403
    assert not MachineOverride.objects.exists()


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_failed_publication_is_recorded_and_sent_by_the_next_sync(mqtt_url, desired_topic, laser, technician,
                                                                   settings, monkeypatch):
    settings.MQTT_URL = "mqtt://127.0.0.1:9"  # the broker is away
    start = timezone.now() - timedelta(minutes=10)
    a = reservation(laser, certified_learner(laser, "Nguyễn Thị Lan"), start, start + timedelta(hours=1))
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    state = MachineDesiredState.objects.get(machine=laser)
    assert (state.version, state.published_version, state.attempts) == (1, 0, 1) and state.last_error
    sync_desired_states()  # backing off: not tried again yet
    assert MachineDesiredState.objects.get(machine=laser).attempts == 1
    settings.MQTT_URL = mqtt_url
    frozen(monkeypatch, state.retry_at + timedelta(seconds=1))
    assert sync_desired_states()["published"] == 1
    state = MachineDesiredState.objects.get(machine=laser)
    assert (state.published_version, state.last_error, state.attempts) == (1, "", 0)
    listener = DesiredListener(mqtt_url, desired_topic)
    try:
        wait_for(lambda: listener.versions() == [1], 10, "the retained v1")
    finally:
        listener.close()


@pytest.mark.django_db
def test_every_edge_only_asks_the_interlock(laser, technician, settings, monkeypatch):
    """Undo of a check-in, no-show release and maintenance scheduling all end in `interlock.refresh`."""
    settings.MQTT_URL = "mqtt://127.0.0.1:9"
    asked = []
    real = interlock.refresh
    monkeypatch.setattr(interlock, "refresh", lambda ids, now=None: asked.append(list(ids)) or real(ids, now))
    start = timezone.now() - timedelta(minutes=5)
    a = reservation(laser, certified_learner(laser, "Nguyễn Thị Lan"), start, start + timedelta(hours=1))
    result = door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    assert MachineDesiredState.objects.get(machine=laser).holder_name == "Nguyễn Thị Lan"
    door.undo_check_in(result.record_id, by=technician)
    assert MachineDesiredState.objects.get(machine=laser).holder_name is None
    late = reservation(laser, certified_learner(laser, "Lê Văn Ba"), start + timedelta(hours=2),
                       start + timedelta(hours=3))
    services.release_no_shows(now=late.start + timedelta(minutes=30))
    services.schedule_maintenance(laser, start + timedelta(hours=4), start + timedelta(hours=5), reason="Vệ sinh",
                                  by=technician)
    assert [laser.pk] in asked and len(asked) >= 4
    assert a.__class__.objects.get(pk=late.pk).status == ReservationStatus.NO_SHOW


@pytest.mark.django_db
def test_a_machine_taken_out_of_service_in_the_admin_opens_its_interlock(laser, technician, admin_user):
    start = timezone.now() - timedelta(minutes=5)
    a = reservation(laser, certified_learner(laser, "Nguyễn Thị Lan"), start, start + timedelta(hours=1))
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    assert MachineDesiredState.objects.get(machine=laser).holder_name == "Nguyễn Thị Lan"
    laser.status = MachineStatus.OUT_OF_ORDER
    laser.save()
    state = MachineDesiredState.objects.get(machine=laser)
    assert (state.version, state.holder_name) == (2, None)
    laser.status = MachineStatus.AVAILABLE
    laser.save()
    assert MachineDesiredState.objects.get(machine=laser).holder_name == "Nguyễn Thị Lan"
    window = factories.MaintenanceWindowFactory(machine=laser, start=start, end=start + timedelta(hours=2))
    assert MachineDesiredState.objects.get(machine=laser).holder_name is None
    window.delete()
    assert MachineDesiredState.objects.get(machine=laser).version == 5


@pytest.mark.django_db
def test_the_labs_day_page_has_the_technicians_buttons(laser, technician, settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:9"
    client = client_for(technician)
    page = client.get(f"/booking/labs/{laser.lab.slug}/day/")
    assert "Tắt máy ngay" in page.content.decode() and "Bật để bảo trì đến" in page.content.decode()
    client.post(f"/booking/labs/{laser.lab.slug}/day/", {"machine": laser.slug, "action": "off", "reason": "Kẹt"})
    override = MachineOverride.objects.get(machine=laser, kind="off")
    assert MachineDesiredState.objects.get(machine=laser).version == 0  # nobody held it: nothing new to say
    client.post(f"/booking/labs/{laser.lab.slug}/day/", {"end_override": override.pk})
    assert MachineOverride.objects.get(pk=override.pk).ended_at is not None
    in_an_hour = timezone.localtime() + timedelta(hours=1)
    client.post(f"/booking/labs/{laser.lab.slug}/day/", {"machine": laser.slug, "action": "maintenance",
                                                        "until": in_an_hour.strftime("%H:%M")})
    if in_an_hour.date() == timezone.localdate():  # the form gives a time of today
        assert MachineDesiredState.objects.get(machine=laser).holder_name == "Trần Văn Kỹ"
    english = client_for(technician)
    english.cookies["django_language"] = "en"
    assert "Switch off now" in english.get(f"/booking/labs/{laser.lab.slug}/day/",
                                           HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.mqtt
@pytest.mark.django_db(transaction=True)
def test_a_version_stored_while_publishing_is_published_too_so_the_broker_keeps_the_latest(
        mqtt_url, desired_topic, laser, technician, monkeypatch):
    from fablab_ops.booking import tasks
    from fablab_ops.machines import commands

    start = timezone.now() - timedelta(minutes=10)
    a = reservation(laser, certified_learner(laser, "Nguyễn Thị Lan"), start, start + timedelta(hours=1))
    sent = []
    real_publish = commands.RetainedPublisher.publish

    def slow_publish(self, topic, payload):
        real_publish(self, topic, payload)
        sent.append(payload["v"])
        if payload["v"] == 1:  # a technician switches the machine off while v1 is on its way
            services.switch_machine_off(laser, by=technician)

    monkeypatch.setattr(commands.RetainedPublisher, "publish", slow_publish)
    monkeypatch.setattr(tasks.publish_desired_states, "delay", lambda ids: None)  # only the beat publishes here
    door.check_in_manually("reservation", a.pk, lab=laser.lab, by=technician)
    assert tasks.sync_desired_states()["published"] == 2
    assert sent == [1, 2]
    listener = DesiredListener(mqtt_url, desired_topic)
    try:
        wait_for(lambda: listener.versions() == [2], 10, "the retained v2")
    finally:
        listener.close()
    assert MachineDesiredState.objects.get(machine=laser).published_version == 2
