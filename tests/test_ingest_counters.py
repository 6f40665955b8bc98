"""Hours that survive lost messages, and running periods that survive a WiFi drop.

A protocol 2 device reports cumulative counters since it booted (`run_s`, `energy_wh`);
the service's usage hours are the differences between them, so a lost report costs the
moment a state changed, never hours.
"""

import json
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.machines.ingest import Incoming, apply_batch
from fablab_ops.machines.models import MachineAlert, MachineLiveStatus, MachineUsageDay, UsageSession
from tests import factories


@pytest.fixture
def laser(lab):
    return factories.MachineFactory(lab=lab, slug="laser-01")


@pytest.fixture
def printer(lab):
    return factories.MachineFactory(lab=lab, slug="printer-01")


def topic(machine, kind="state"):
    return f"fablab/{machine.lab.slug}/{machine.slug}/{kind}"


def deliver(machine, reports, *, batch=10):
    """Reports arrive in order, a few per batch, each received a second after the device made it."""
    for i in range(0, len(reports), batch):
        apply_batch([Incoming(topic(machine), json.dumps({**r, "ts": r["ts"].isoformat()}).encode(),
                              r["ts"] + timedelta(seconds=1)) for r in reports[i:i + batch]])


def status(machine, text, at=None):
    apply_batch([Incoming(topic(machine, "status"), text.encode(), at or timezone.now())])


def day_of_a_printer(start, *, boot="b1", heartbeat_s=30, seed=7):
    """A device's reports over three hours of jobs: one at each change of state and a heartbeat every 30 s.

    Returns the reports and the seconds it really ran (the ground truth).
    """
    rng = random.Random(seed)
    changes, at = [], start
    for _ in range(12):
        changes.append((at, "idle"))
        at += timedelta(seconds=rng.randint(60, 900))
        changes.append((at, "running"))
        at += timedelta(seconds=rng.randint(120, 1500))
    changes.append((at, "idle"))
    reports, run_s, energy, seq = [], 0.0, 0.0, 0
    now, state = start, "idle"
    for (change_at, new_state) in changes:
        while now < change_at:  # heartbeats until the change
            step = min(timedelta(seconds=heartbeat_s), change_at - now)
            if state == "running":
                run_s += step.total_seconds()
                energy += step.total_seconds() * 1200 / 3600
            now += step
            if now < change_at:
                seq += 1
                reports.append({"seq": seq, "boot": boot, "ts": now, "state": state, "power_w": 1200.0,
                                "run_s": run_s, "energy_wh": round(energy, 3), "desired_v": 3})
        state = new_state
        seq += 1
        reports.append({"seq": seq, "boot": boot, "ts": now, "state": state, "power_w": 1200.0,
                        "run_s": run_s, "energy_wh": round(energy, 3), "desired_v": 3})
    return reports, run_s


def hours_of(machine) -> tuple[float, float]:
    days = MachineUsageDay.objects.filter(machine=machine)
    return sum(d.running_seconds for d in days), sum(d.energy_wh for d in days)


@pytest.mark.django_db
def test_a_stream_with_30_percent_of_its_reports_lost_gives_the_same_hours_as_the_whole_stream(laser, printer):
    start = timezone.now() - timedelta(hours=8)
    reports, truth = day_of_a_printer(start)
    deliver(laser, reports)
    rng = random.Random(11)
    # Lost anywhere (state changes included), but the last one arrives: it carries the totals.
    kept = [r for r in reports[:-1] if rng.random() >= 0.3] + reports[-1:]
    assert len(kept) < 0.75 * len(reports)
    deliver(printer, kept)
    whole, dropped = hours_of(laser), hours_of(printer)
    assert whole[0] == pytest.approx(truth, abs=1e-6)
    assert dropped[0] == pytest.approx(whole[0], abs=1e-6)
    assert dropped[1] == pytest.approx(whole[1], abs=1e-3) and whole[1] > 0


@pytest.mark.django_db
def test_a_lost_running_to_idle_report_still_counts_the_right_hours(laser):
    start = timezone.now() - timedelta(hours=1)
    at = [start + timedelta(minutes=m) for m in (0, 1, 11, 21, 31)]
    reports = [
        {"seq": 1, "boot": "b1", "ts": at[0], "state": "idle", "run_s": 0},
        {"seq": 2, "boot": "b1", "ts": at[1], "state": "running", "run_s": 0},
        {"seq": 3, "boot": "b1", "ts": at[2], "state": "running", "run_s": 600},
        # seq 4, "idle" at 16 minutes with run_s 900, is lost on the way
        {"seq": 5, "boot": "b1", "ts": at[3], "state": "idle", "run_s": 900},
        {"seq": 6, "boot": "b1", "ts": at[4], "state": "idle", "run_s": 900},
    ]
    deliver(laser, reports, batch=1)
    assert hours_of(laser)[0] == pytest.approx(900)
    session = UsageSession.objects.get(machine=laser)
    assert (session.start, session.end) == (at[1], at[3])  # the moment it stopped is what was lost


@pytest.mark.django_db
def test_a_late_report_adds_nothing_and_the_first_report_of_a_boot_counts_its_whole_counter(laser):
    now = timezone.now()
    deliver(laser, [{"seq": 40, "boot": "b7", "ts": now - timedelta(minutes=1), "state": "running", "run_s": 1200,
                     "energy_wh": 400}])
    assert hours_of(laser) == (pytest.approx(1200), pytest.approx(400))
    deliver(laser, [{"seq": 39, "boot": "b7", "ts": now - timedelta(minutes=2), "state": "running", "run_s": 1140,
                     "energy_wh": 380}])
    assert hours_of(laser) == (pytest.approx(1200), pytest.approx(400))
    deliver(laser, [{"seq": 41, "boot": "b7", "ts": now, "state": "idle", "run_s": 1230, "energy_wh": 410}])
    assert hours_of(laser) == (pytest.approx(1230), pytest.approx(410))
    # The period's own length is not added on top of the counters when it closes.
    assert UsageSession.objects.get(machine=laser).energy_wh == pytest.approx(10)


@pytest.mark.django_db
def test_a_device_without_counters_keeps_the_hours_of_its_running_periods(laser):
    start = timezone.now() - timedelta(hours=1)
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": start, "state": "running"},
                    {"seq": 2, "boot": "b1", "ts": start + timedelta(minutes=20), "state": "idle"}])
    assert hours_of(laser)[0] == pytest.approx(1200)


@pytest.mark.django_db
def test_a_device_back_from_a_wifi_drop_gets_a_new_running_period_and_its_offline_alert_cleared(laser):
    """offline (the broker's last will) -> online (batch 2) -> running (batch 3)."""
    start = timezone.now() - timedelta(minutes=5)
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": start, "state": "running"}])
    status(laser, "offline")
    assert UsageSession.objects.get(machine=laser).end is not None
    assert MachineAlert.objects.filter(machine=laser, kind="offline", resolved_at__isnull=True).exists()
    status(laser, "online")
    deliver(laser, [{"seq": 2, "boot": "b1", "ts": timezone.now(), "state": "running"}])
    assert UsageSession.objects.filter(machine=laser, end__isnull=True).count() == 1
    assert UsageSession.objects.filter(machine=laser).count() == 2
    assert not MachineAlert.objects.filter(machine=laser, kind="offline", resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_an_online_alone_clears_the_offline_alert(laser):
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": timezone.now(), "state": "idle"}])
    status(laser, "offline")
    status(laser, "online")
    assert not MachineAlert.objects.filter(machine=laser, kind="offline", resolved_at__isnull=True).exists()
    assert MachineLiveStatus.objects.get(machine=laser).online


@pytest.mark.django_db
def test_offline_online_and_running_in_one_batch_leave_the_machine_running_in_an_open_period(laser):
    start = timezone.now() - timedelta(minutes=5)
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": start, "state": "running"}])
    report = {"seq": 2, "boot": "b1", "ts": timezone.now().isoformat(), "state": "running"}
    apply_batch([Incoming(topic(laser, "status"), b"offline", timezone.now()),
                 Incoming(topic(laser, "status"), b"online", timezone.now()),
                 Incoming(topic(laser), json.dumps(report).encode(), timezone.now())])
    assert UsageSession.objects.filter(machine=laser, end__isnull=True).count() == 1
    assert not MachineAlert.objects.filter(machine=laser, kind="offline", resolved_at__isnull=True).exists()


@pytest.mark.django_db
def test_an_ingest_restart_that_lost_the_open_period_opens_one_at_the_next_running_report(laser):
    """However the open period went (a heartbeat timeout, a lost `online`), `running` opens one."""
    long_ago = timezone.now() - timedelta(minutes=10)
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": long_ago, "state": "running"}])
    UsageSession.objects.filter(machine=laser).update(end=long_ago)  # closed by whatever came before
    deliver(laser, [{"seq": 2, "boot": "b1", "ts": timezone.now(), "state": "running"}])
    assert UsageSession.objects.filter(machine=laser, end__isnull=True).count() == 1


@pytest.mark.django_db
def test_the_desired_version_a_device_applied_is_recorded_from_reports_and_acks(laser):
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": timezone.now(), "state": "idle", "desired_v": 4}])
    assert MachineLiveStatus.objects.get(machine=laser).desired_applied_v == 4
    apply_batch([Incoming(topic(laser, "ack"), b'{"v": 6, "ok": true}', timezone.now()),
                 Incoming(topic(laser, "ack"), b'{"v": 9, "ok": false, "reason": "until passed"}', timezone.now()),
                 Incoming(topic(laser, "ack"), b'{"v": 5, "ok": true}', timezone.now())])
    assert MachineLiveStatus.objects.get(machine=laser).desired_applied_v == 6
    deliver(laser, [{"seq": 2, "boot": "b1", "ts": timezone.now(), "state": "idle", "desired_v": 5}])
    assert MachineLiveStatus.objects.get(machine=laser).desired_applied_v == 6


@pytest.mark.django_db
def test_a_counter_device_going_silent_adds_no_hours_beyond_its_counters(laser):
    from fablab_ops.machines import services

    start = timezone.now() - timedelta(minutes=30)
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": start, "state": "running", "run_s": 0},
                    {"seq": 2, "boot": "b1", "ts": start + timedelta(minutes=10), "state": "running", "run_s": 600}])
    assert services.mark_silent_machines_offline() == 1
    assert UsageSession.objects.get(machine=laser).end == start + timedelta(minutes=10)
    assert hours_of(laser)[0] == pytest.approx(600)


@pytest.mark.django_db
def test_the_live_board_counts_a_counter_devices_running_hours_once(laser):
    from fablab_ops.machines import services

    last = timezone.now() - timedelta(seconds=20)
    deliver(laser, [{"seq": 1, "boot": "b1", "ts": last - timedelta(minutes=30), "state": "running", "run_s": 0},
                    {"seq": 2, "boot": "b1", "ts": last, "state": "running", "run_s": 1800}])
    row = services.live_board(laser.lab)[0]
    # 30 minutes from the counters, and the 20 seconds since the last report; not the open period on top.
    today_seconds = sum(MachineUsageDay.objects.filter(machine=laser, day=timezone.localdate())
                        .values_list("running_seconds", flat=True))
    assert row["today_hours"] == pytest.approx(round(today_seconds / 3600 + 20 / 3600, 2), abs=0.011)
    assert row["today_hours"] <= 0.52


@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_for_a_hundred_reports_as_for_a_thousand(lab):
    """However many reports, state changes and counters a batch holds, it is written set-based."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    machines = [factories.MachineFactory(lab=lab, slug=f"printer-{n:02d}") for n in range(5)]
    start = timezone.now() - timedelta(hours=2)

    def batch(first_seq, per_machine):
        return [Incoming(topic(m), json.dumps({
            "seq": seq, "boot": "b1", "ts": (start + timedelta(seconds=seq)).isoformat(),
            "state": "running" if seq % 20 < 10 else "idle", "run_s": seq / 2, "energy_wh": seq / 10,
            "desired_v": 1}).encode(), start + timedelta(seconds=seq))
            for seq in range(first_seq, first_seq + per_machine) for m in machines]

    apply_batch(batch(1, 20), health_id="fablab-ingest-0")  # live status and counter rows created
    with CaptureQueriesContext(connection) as small:
        apply_batch(batch(21, 20), health_id="fablab-ingest-0")
    with CaptureQueriesContext(connection) as large:
        apply_batch(batch(41, 200), health_id="fablab-ingest-0")
    assert len(large) == len(small) <= 24  # savepoint and release, registry and staging table included
