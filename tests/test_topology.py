"""The production topology, tested whole: what docker-compose.yml describes, started natively.

gunicorn (DEBUG=0, the production settings: ALLOWED_HOSTS, HTTPS behind the proxy), a Celery
worker, Celery beat, two ingest replicas and three simulated machines authenticated with the
credentials `mqtt_credentials` generated, against the real PostgreSQL (a database of the run's
own), a private Redis and a private Mosquitto running the generated password file and ACL, with
an SMTP sink receiving real e-mails. Readiness is judged by compose's own health checks
(/readyz through deploy/healthcheck.py, `ingest_health`, `mosquitto_sub`, `redis-cli ping`).

The walk: a learner books a seat over HTTP and the e-mail arrives; a technician checks a
reservation in over HTTP and the machine's desired state reaches the device, whose interlock
closes; its telemetry becomes usage hours in the database; last month's report task mails the
report with its XLSX. Then the faults: the Celery worker killed with SIGKILL while the SMTP
server holds its reply, and Redis stopped while an e-mail is being sent and across a booking's
commit (the worker may exit then: compose's restart policy, which the topology follows, brings it
back). No e-mail is lost; the only duplicate is the one the kill inside the SMTP exchange makes,
with the same Message-ID.
"""

import hashlib
import os
import shutil
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from devices.simulator import ICT, Fleet, load_registry
from tests.conftest import REQUIRE_SERVICES, service_missing
from tests.outbox_support import wait_for
from tests.topology_support import Topology

pytestmark = [pytest.mark.topology, pytest.mark.timeout(300)]


def counts(sink, topology, emails: list[str] | None = None) -> dict:
    """For these recipients (default: everyone): rows sent, messages received, duplicates (by Message-ID)."""
    rows = topology.sql("SELECT n.id, n.state, u.email, n.kind, n.created_at FROM accounts_notification n "
                        "JOIN accounts_user u ON u.id = n.user_id")
    if emails is None:
        emails = sorted({row[2] for row in rows})
    rows = [row for row in rows if row[2] in emails]
    received = [m["Message-ID"] for m in sink.messages if any(e in m["To"] for e in emails)]
    copies = Counter(received)
    return {"rows": len(rows), "sent": sum(1 for row in rows if row[1] == "sent"), "received": len(received),
            "distinct": len(copies), "duplicates": sum(n - 1 for n in copies.values()),
            "duplicate_ids": sorted(mid for mid, n in copies.items() if n > 1),
            "unsent": [(pk, state, kind, f"{created:%H:%M:%S.%f}") for pk, state, _, kind, created in rows
                       if state != "sent"]}


def message_id_of(topology, email: str, kind: str) -> tuple[str, str]:
    """(state, Message-ID) of a user's notification of a kind, as the row would stamp it."""
    ((pk, state, key),) = topology.sql(
        "SELECT n.id, n.state, n.dedup_key FROM accounts_notification n JOIN accounts_user u ON u.id = n.user_id "
        "WHERE u.email = %s AND n.kind = %s", (email, kind))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return state, f"<notification-{pk}-{digest}@example.vn>"


@pytest.fixture
def topology():
    for tool in ("redis-server", "mosquitto", "mosquitto_sub", "redis-cli"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            service_missing(f"{tool} is not installed (the topology test starts its own)")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        service_missing("the topology test needs PostgreSQL (set DATABASE_URL)")
    world = Topology(url)
    try:
        yield world
    finally:
        world.close()
        if not REQUIRE_SERVICES:
            shutil.rmtree(world.folder, ignore_errors=True)


def test_the_production_topology_walks_a_day_and_survives_its_faults(topology, capsys):  # noqa: C901 - one story
    started = time.monotonic()
    timings = {}

    def lap(name):
        timings[name] = round(time.monotonic() - started, 1)

    # --- up, as `docker compose up` brings it ----------------------------------------------------------
    topology.redis.start()
    topology.sink.start()
    assert topology.healthcheck("redis")[0] == 0
    topology.create_database()
    topology.run_setup()  # migrate, collectstatic, mqtt_credentials (no machine yet)
    world = topology.seed()
    # Machines were added: `setup` again writes their credentials (compose: re-run setup, then HUP Mosquitto).
    topology.run_setup()
    topology.start_mosquitto()
    assert topology.healthcheck("mosquitto")[0] == 0, "the healthcheck user reads $SYS through the ACL"
    for service in ("web", "worker", "beat", "ingest-0", "ingest-1"):
        topology.start(service)
    registry = load_registry(str(topology.auth / "devices.json"), None)
    assert {entry["username"] for entry in registry} == {"biic.laser-01", "biic.printer-01", "eiu.printer-01"}
    assert all(entry["password"] for entry in registry)
    fleet = Fleet(registry, url=f"mqtt://127.0.0.1:{topology.mqtt_port}", rate=2, speed=300, seed=12,
                  mean_uptime_h=None)
    stop_fleet = threading.Event()
    fleet_thread = threading.Thread(target=fleet.run, args=(stop_fleet,), daemon=True)
    fleet_thread.start()
    try:
        ready = topology.wait_healthy("web")
        assert '"status": "ready"' in ready
        for replica in ("ingest-0", "ingest-1"):
            topology.wait_healthy(replica)
        lap("up")
        assert topology.http("GET", "/healthz", proxied=False)[0] == 200
        status, page = topology.http("GET", "/api/health", proxied=False)
        assert status == 301, "plain HTTP to the site is sent to HTTPS; only the probes are exempt"

        # --- a learner books a seat: the e-mail arrives ---------------------------------------------
        lan, khoa, minh, thu = (world["learners"][key] for key in ("lan", "khoa", "minh", "thu"))
        status, booking = topology.http("POST", f"/api/courses/sessions/{world['session']}/book", token=lan["token"])
        assert status == 201, booking
        wait_for(lambda: topology.sink.to(lan["email"]), 30, "the booking's e-mail in the sink")
        state, message_id = message_id_of(topology, lan["email"], "seat_confirmed")
        assert topology.sink.to(lan["email"])[0]["Message-ID"] == message_id
        wait_for(lambda: message_id_of(topology, lan["email"], "seat_confirmed")[0] == "sent", 10, "the row sent")
        lap("booking e-mail")

        # --- a technician checks a reservation in: the device gets its desired state ---------------------
        start = (datetime.now(ICT) + timedelta(seconds=8)).replace(microsecond=0)
        closing = start.replace(hour=23, minute=59, second=59)  # the lab's day ends; a reservation stays within it
        if closing - start < timedelta(minutes=3):
            time.sleep((closing - start).total_seconds() + 2)
            start = (datetime.now(ICT) + timedelta(seconds=8)).replace(microsecond=0)
            closing = start.replace(hour=23, minute=59, second=59)
        end = min(start + timedelta(minutes=30), closing)
        status, reservation = topology.http("POST", "/api/booking/reservations", token=lan["token"], body={
            "lab": "biic", "machine": "laser-01", "start": start.isoformat(), "end": end.isoformat()})
        assert status == 201, reservation
        status, checked_in = topology.http("POST", "/api/booking/checkin", token=world["technician"]["token"],
                                           body={"token": reservation["ticket"], "lab": "biic"})
        assert status == 200 and checked_in["outcome"] == "checked_in", checked_in
        laser = fleet.links["biic/laser-01"]

        def stored_version() -> int:
            rows = topology.sql("SELECT d.version, d.published_version FROM booking_machinedesiredstate d "
                                "JOIN machines_machine m ON m.id = d.machine_id WHERE m.slug = 'laser-01'")
            return rows[0][0] if rows and rows[0][0] == rows[0][1] else -1

        wait_for(lambda: stored_version() > 0 and laser.machine.desired_v == stored_version(), 30,
                 "the published desired state on the device")
        wait_for(lambda: laser.machine.interlock_closed(datetime.now(ICT)), 30, "the interlock to close")
        assert laser.machine.grant(datetime.now(ICT)).reservation == reservation["id"]
        wait_for(lambda: topology.sql(
            "SELECT l.desired_applied_v FROM machines_machinelivestatus l JOIN machines_machine m "
            "ON m.id = l.machine_id WHERE m.slug = 'laser-01'")[0][0] == laser.machine.desired_v, 30,
            "the applied version reported back through the ingest")
        lap("check-in to interlock")

        # --- the device's telemetry becomes usage hours -------------------------------------------------
        def used_seconds() -> float:
            rows = topology.sql("SELECT coalesce(sum(u.running_seconds), 0) FROM machines_machineusageday u "
                                "JOIN machines_machine m ON m.id = u.machine_id WHERE m.slug = 'laser-01'")
            return float(rows[0][0])

        wait_for(lambda: used_seconds() > 0, 60, "usage hours of the laser in the database")
        truth = laser.machine.truth.seconds(laser.machine.truth.running)
        assert 0 < used_seconds() <= truth + 2
        usage = f"laser-01 ran {truth:.1f} s (device), {used_seconds():.1f} s stored"
        lap("telemetry to usage")

        # --- last month's report, by its task -------------------------------------------------------------
        from celery import Celery

        client = Celery("topology-test", broker=topology.app_env("worker")["CELERY_BROKER_URL"])
        client.send_task("fablab_ops.reports.tasks.send_last_months_report")
        coordinator = world["coordinator"]["email"]
        wait_for(lambda: topology.sink.to(coordinator), 60, "the monthly report in the sink")
        (report,) = topology.sink.to(coordinator)
        attachments = [part.get_filename() for part in report.walk() if part.get_filename()]
        assert len(attachments) == 1 and attachments[0].endswith(".xlsx")
        assert report["Message-ID"] == message_id_of(topology, coordinator, "monthly_report")[1]
        client.close()
        lap("monthly report")
        walk = counts(topology.sink, topology, [lan["email"], coordinator])
        assert walk["sent"] == walk["rows"] == walk["distinct"] and walk["duplicates"] == 0, walk

        # --- fault 1: the worker killed while the SMTP server holds its reply ---------------------------
        topology.sink.hold_replies_to.add(khoa["email"])  # the server takes the message and holds its "250"
        status, _ = topology.http("POST", f"/api/courses/sessions/{world['session']}/book", token=khoa["token"])
        assert status == 201
        wait_for(lambda: topology.sink.to(khoa["email"]), 30, "the worker to hand the message over")
        worker = topology.processes["worker"]
        worker.kill()  # SIGKILL to the whole worker, as `docker kill` does
        topology.sink.hold_replies_to.clear()
        assert message_id_of(topology, khoa["email"], "seat_confirmed")[0] == "sending"
        topology.start("worker")
        topology.wait_healthy("worker")  # compose's `celery inspect ping` of the restarted worker
        wait_for(lambda: message_id_of(topology, khoa["email"], "seat_confirmed")[0] == "sent", 90,
                 "the row sent again once its lease ran out")
        time.sleep(5)  # a few more sweeps: nothing more may come
        kill = counts(topology.sink, topology, [khoa["email"]])
        print(f"topology: worker SIGKILL in the SMTP exchange: {kill}")
        assert (kill["rows"], kill["sent"], kill["received"], kill["duplicates"]) == (1, 1, 2, 1), kill
        assert kill["duplicate_ids"] == [message_id_of(topology, khoa["email"], "seat_confirmed")[1]]
        lap("fault: worker killed")

        # --- fault 2: Redis down in the middle of an e-mail's sending, and across a booking's commit -------
        # The worker may exit here: when Redis goes while a task waits for its acknowledgement (the e-mail
        # being sent), kombu fails to close the lost channel and Celery stops ("Unrecoverable error").
        # compose's restart policy starts it again, as the topology's supervisor does; no other service may
        # need that, at any time.
        assert not any(process.exits for process in topology.processes.values()), "a service exited on its own"
        topology.sink.hold_replies_to.add(thu["email"])
        status, _ = topology.http("POST", f"/api/courses/sessions/{world['session']}/book", token=thu["token"])
        assert status == 201
        wait_for(lambda: topology.sink.to(thu["email"]), 30, "the worker in the middle of the e-mail's sending")
        topology.redis.stop()
        topology.sink.hold_replies_to.clear()  # the server's "250" reaches a worker whose broker has gone
        booked_at = time.monotonic()
        status, _ = topology.http("POST", f"/api/courses/sessions/{world['session']}/book", token=minh["token"])
        assert status == 201, "the booking stands without Redis"
        assert time.monotonic() - booked_at < 10
        assert message_id_of(topology, minh["email"], "seat_confirmed")[0] == "due"
        assert topology.healthcheck("web")[0] == 1, "/readyz names Redis while it is down"
        time.sleep(2)
        assert topology.sink.to(minh["email"]) == []
        topology.redis.start()
        wait_for(lambda: message_id_of(topology, minh["email"], "seat_confirmed")[0] == "sent", 90,
                 "the sweep to send it once Redis is back")
        time.sleep(5)
        outage = counts(topology.sink, topology, [minh["email"]])
        print(f"topology: Redis down at commit: {outage}")
        assert (outage["rows"], outage["sent"], outage["received"], outage["duplicates"]) == (1, 1, 1, 0), outage
        wait_for(lambda: message_id_of(topology, thu["email"], "seat_confirmed")[0] == "sent", 30,
                 "the e-mail whose sending Redis's loss interrupted")
        sending = counts(topology.sink, topology, [thu["email"]])
        print(f"topology: Redis down while an e-mail was being sent: {sending}")
        assert (sending["rows"], sending["sent"], sending["received"], sending["duplicates"]) == (1, 1, 1, 0), \
            sending
        lap("fault: Redis down")

        restarted = {process.name: process.exits for process in topology.processes.values() if process.exits}
        assert set(restarted) <= {"worker"}, f"restarted by their policy: {restarted}"

        # --- the operators' view after all that ---------------------------------------------------------
        topology.wait_healthy("web", timeout=60)
        for replica in ("ingest-0", "ingest-1"):
            assert topology.healthcheck(replica)[0] == 0
        status, metrics = topology.http("GET", "/metrics", proxied=False)
        assert status == 403, "a token is set: none given, none served"
        status, metrics = topology.http("GET", "/metrics", proxied=False, token=topology.secrets["METRICS_TOKEN"])
        assert status == 200
        assert 'method="POST",status="2xx",view="api:book"' in metrics, "every gunicorn worker's requests, by route"
        assert 'fablab_celery_queue_length{queue="celery"}' in metrics
        assert 'fablab_outbox_notifications{state="failed"} 0.0' in metrics
        # The learners, the coordinator, the technician's notices. The simulated machines run until the end and
        # may raise a notice at any moment: the outbox settles (each row sent at once, or by the next sweep).
        stop_fleet.set()
        fleet_thread.join(timeout=15)
        settled = time.monotonic() + 30
        while counts(topology.sink, topology)["unsent"] and time.monotonic() < settled:
            time.sleep(0.5)
        total = counts(topology.sink, topology)
        assert total["sent"] == total["rows"] == total["distinct"], f"an e-mail lost: {total}"
        lap("metrics")
    finally:
        stop_fleet.set()
        fleet_thread.join(timeout=15)
        for process in topology.processes.values():
            if process.starts and not process.running() and process.name != "worker":
                print(f"topology: {process.name} exited:\n{process.tail()}")
            if process.exits:
                print(f"topology: {process.name} started again by its restart policy after exiting with "
                      f"{process.exits}")
    with capsys.disabled():  # shown in every run, for the operators' notes
        print(f"\ntopology: walk: {walk}; {usage}\n"
              f"topology: worker SIGKILL inside the SMTP exchange: rows {kill['rows']}, sent {kill['sent']}, "
              f"received {kill['received']}, duplicates {kill['duplicates']} {kill['duplicate_ids']}\n"
              f"topology: Redis down across a booking's commit: rows {outage['rows']}, sent {outage['sent']}, "
              f"received {outage['received']}, duplicates {outage['duplicates']}\n"
              f"topology: Redis down while an e-mail was being sent: rows {sending['rows']}, sent {sending['sent']}, "
              f"received {sending['received']}, duplicates {sending['duplicates']}\n"
              f"topology: all e-mails: rows {total['rows']}, sent {total['sent']}, received {total['received']}, "
              f"duplicates {total['duplicates']}; seconds since start {timings}")
