"""The doors on a class morning: four doors scan a class's tickets while learners keep booking.

Serves the app with gunicorn (as bench/booking.py does) on its own PostgreSQL database. Classes at one lab
start in ten minutes, their seats taken; four door threads, each with its own technician's token, scan
their share of the tickets (POST /api/booking/checkin) as fast as the answers come, while learner threads
book and cancel seats of next week's sessions and one thread calls the trivial endpoint (GET /api/health)
throughout. Each request's latency is recorded; the figure is the p95 of a scan against the p95 of the
trivial endpoint in the same run. Afterwards every ticket must have been checked in exactly once.

Last line: {"ratio", "scan_p95_s", "reference_p95_s", "scans", "checked_in", "errors", ...}. Target: ratio <= 3.

    python bench/checkin.py [--quick] [--classes 6] [--learners 8]
"""

import argparse
import http.client
import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.booking import ensure_database, free_port, purge_queue, serve  # noqa: E402
from bench.flash import percentile  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_checkin"
DOORS = 4
SEATS = 40


def prepare(classes: int, learners: int):
    """A lab with four technicians (tokens), `classes` full classes starting in ten minutes, and next
    week's sessions with learners (tokens) to book them."""
    from django.utils import timezone

    from fablab_ops.accounts.models import ApiToken, Role, User
    from fablab_ops.booking import tickets
    from fablab_ops.courses.models import Course, SeatBooking, SeatStatus, Session
    from fablab_ops.machines.models import Lab

    lab = Lab.objects.create(slug="doors", short_name="Doors", name_vi="Phòng lab thử tải", host="-", field="-",
                             address="-")
    course = Course.objects.create(kind="arduino", slug="doors-arduino", title_vi="Arduino", lab=lab,
                                   default_capacity=SEATS, min_capacity=1, max_capacity=SEATS)
    now = timezone.now()
    doors = []
    for n in range(DOORS):
        technician = User.objects.create(email=f"door{n}@fablab.test", full_name=f"Kỹ thuật viên {n}",
                                         role=Role.TECHNICIAN, is_staff=True, email_verified_at=now)
        lab.technicians.add(technician)
        doors.append(ApiToken.issue(technician, "door")[1])
    attendees = User.objects.bulk_create([
        User(email=f"attendee{n}@example.vn", full_name=f"Học viên {n}", email_verified_at=now)
        for n in range(classes * SEATS)])
    today = [Session.objects.create(course=course, lab=lab, start=now + timedelta(minutes=10),
                                    end=now + timedelta(hours=3), capacity=SEATS) for _ in range(classes)]
    seats = SeatBooking.objects.bulk_create([
        SeatBooking(session=today[i // SEATS], learner=user, status=SeatStatus.CONFIRMED, confirmed_at=now)
        for i, user in enumerate(attendees)])
    ticket_tokens = [tickets.sign(tickets.SEAT, seat.ticket_code) for seat in seats]
    later = [Session.objects.create(course=course, lab=lab, start=now + timedelta(days=7, hours=4 * i),
                                    end=now + timedelta(days=7, hours=4 * i + 3), capacity=SEATS).pk
             for i in range(4)]
    bookers = User.objects.bulk_create([
        User(email=f"booker{n}@example.vn", full_name=f"Người đặt {n}", email_verified_at=now)
        for n in range(learners * 10)])
    return doors, ticket_tokens, later, [ApiToken.issue(user, "bench")[1] for user in bookers], [s.pk for s in seats]


class Timed:
    """One keep-alive connection; every request's status and latency."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, token: str | None = None, body: dict | None = None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
            return response.status, time.perf_counter() - started, data
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return 0, time.perf_counter() - started, b""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer classes (about 10 s of scanning)")
    parser.add_argument("--classes", type=int, default=6, help=f"classes of {SEATS} starting soon")
    parser.add_argument("--learners", type=int, default=8, help="threads booking meanwhile")
    args = parser.parse_args()
    classes = 2 if args.quick else args.classes

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64),
           "SECURE_SSL_REDIRECT": "0", "ALLOWED_HOSTS": "127.0.0.1", "DJANGO_SETTINGS_MODULE": "fablab_ops.settings",
           "CELERY_BROKER_URL": os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
           "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend", "LOG_LEVEL": "WARNING"}
    os.environ.update(env)
    ensure_database(database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)

    import django

    django.setup()
    doors, ticket_tokens, later, booker_tokens, seat_ids = prepare(classes, args.learners)
    port = free_port()
    server = serve(port, env)
    scans, reference, booked = [], [], Counter()
    done = threading.Event()
    try:
        def door(index: int):
            client = Timed(port)
            for ticket in ticket_tokens[index::DOORS]:
                status, took, body = client.call("POST", "/api/booking/checkin", doors[index],
                                                 {"token": ticket, "lab": "doors"})
                outcome = json.loads(body).get("outcome", "") if status in (200, 409) else ""
                scans.append((status, took, outcome))

        def learner(index: int):
            client, rng = Timed(port), random.Random(index)
            mine = booker_tokens[index::args.learners]
            while not done.is_set():
                token = rng.choice(mine)
                status, _took, body = client.call("POST", f"/api/courses/sessions/{rng.choice(later)}/book", token)
                booked[status] += 1
                if status in (200, 201) and rng.random() < 0.3:
                    booking = json.loads(body)["id"]
                    booked[client.call("POST", f"/api/courses/bookings/{booking}/cancel", token)[0]] += 1

        def trivial():
            client = Timed(port)
            while not done.is_set():
                status, took, _body = client.call("GET", "/api/health")
                reference.append((status, took))
                time.sleep(0.005)

        others = [threading.Thread(target=learner, args=(i,)) for i in range(args.learners)]
        others.append(threading.Thread(target=trivial))
        for thread in others:
            thread.start()
        time.sleep(1.0)  # the booking is under way when the doors open
        started = time.monotonic()
        door_threads = [threading.Thread(target=door, args=(i,)) for i in range(DOORS)]
        for thread in door_threads:
            thread.start()
        for thread in door_threads:
            thread.join()
        elapsed = time.monotonic() - started
        done.set()
        for thread in others:
            thread.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
        purge_queue(env["CELERY_BROKER_URL"])

    from fablab_ops.booking.models import CheckInRecord
    from fablab_ops.courses.models import SeatBooking, SeatStatus

    attended = SeatBooking.objects.filter(pk__in=seat_ids, status=SeatStatus.ATTENDED).count()
    records = CheckInRecord.objects.filter(outcome="checked_in").count()
    scan_p95 = percentile([took for _s, took, _o in scans], 0.95)
    reference_p95 = percentile([took for _s, took in reference], 0.95)
    print(json.dumps({
        "ratio": round(scan_p95 / reference_p95, 2) if reference_p95 else 0.0,
        "scan_p95_s": round(scan_p95, 4), "scan_p50_s": round(percentile([t for _s, t, _o in scans], 0.5), 4),
        "reference_p95_s": round(reference_p95, 4),
        "reference_p50_s": round(percentile([t for _s, t in reference], 0.5), 4),
        "scans": len(scans), "scans_per_s": round(len(scans) / elapsed, 1),
        "checked_in": sum(1 for _s, _t, outcome in scans if outcome == "checked_in"),
        "errors": sum(1 for status, _t, outcome in scans if outcome != "checked_in")
        + sum(1 for status, _t in reference if status != 200),
        "bookings_answered": {str(k): v for k, v in sorted(booked.items())},
        "inconsistencies": int(attended != len(seat_ids)) + int(records != len(seat_ids)),
        "load_avg_1m": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
