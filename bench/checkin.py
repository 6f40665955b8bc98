"""The doors on a class morning: four doors scan a class's tickets while learners keep booking.

Serves the app with gunicorn (bench/_support.py, as every HTTP bench) on its own PostgreSQL database. Classes at one lab
start in ten minutes, their seats taken; four door threads, each with its own technician's token, scan
their share of the tickets (POST /api/booking/checkin) as fast as the answers come, while learner threads
book seats of next week's sessions or give up those they hold, and one thread calls the trivial endpoint
(GET /api/health) throughout, in turn over eight keep-alive connections (spread over gunicorn's workers as the
doors' are).
Each request's latency is recorded; the figure is the p95 of a scan against the p95 of the trivial endpoint
in the same run. Afterwards every ticket must have been checked in exactly once.

Last line: {"ratio", "scan_p95_s", "reference_p95_s", "scans", "checked_in", "errors", "bookings_answered",
"booking_repeats", ...}: the learners' answers by action and status; a repeat (a booking answered 200, the one
already there) changed nothing and should not happen. Target: ratio <= 3.

    python bench/checkin.py [--quick] [--classes 6] [--learners 8]
"""

import argparse
import json
import random
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import Client, load, percentile, serve, setup, signed_up, stop_server  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_checkin"
DOORS = 4
REFERENCE_CONNECTIONS = 2 * DOORS
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
    signed_up(attendees + bookers)
    return doors, ticket_tokens, later, [ApiToken.issue(user, "bench")[1] for user in bookers], [s.pk for s in seats]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer classes (about 10 s of scanning)")
    parser.add_argument("--classes", type=int, default=6, help=f"classes of {SEATS} starting soon")
    parser.add_argument("--learners", type=int, default=8, help="threads booking meanwhile")
    args = parser.parse_args()
    classes = 2 if args.quick else args.classes

    env = setup(DEFAULT_DB)
    doors, ticket_tokens, later, booker_tokens, seat_ids = prepare(classes, args.learners)
    server, port = serve(env)
    scans, reference, booked = [], [], Counter()
    done = threading.Event()
    try:
        def door(index: int):
            client = Client(port)
            for ticket in ticket_tokens[index::DOORS]:
                status, took, body = client.call("POST", "/api/booking/checkin", doors[index],
                                                 {"token": ticket, "lab": "doors"})
                outcome = json.loads(body).get("outcome", "") if status in (200, 409) else ""
                scans.append((status, took, outcome))

        def learner(index: int):
            # Each learner belongs to this thread, which knows what they hold: they book a session they hold no
            # place in, or give up the one they hold, so every call changes something. Booking at random
            # instead, the 80 learners soon held a place in most of the 4 sessions, and most calls were repeats
            # (answered 200 with the existing booking, nothing written): a lighter load than learners booking.
            client, rng = Client(port), random.Random(index)
            mine = booker_tokens[index::args.learners]
            held = {}  # (token, session id) -> the live booking's id
            while not done.is_set():
                token, session_id = rng.choice(mine), rng.choice(later)
                if (token, session_id) in held:
                    booking_id = held.pop((token, session_id))
                    booked[("cancel", client.call("POST", f"/api/courses/bookings/{booking_id}/cancel", token)[0])] += 1
                    continue
                status, _took, body = client.call("POST", f"/api/courses/sessions/{session_id}/book", token)
                booked[("book", status)] += 1
                if status in (200, 201):
                    held[(token, session_id)] = json.loads(body)["id"]

        def trivial():
            # In turn over several keep-alive connections: gunicorn's workers accept connections as they come, so
            # one connection would measure the one worker it landed on (the less busy one in about one run in
            # four, which read 3.3-4.8 times the doors' p95), while the doors' connections are spread over both.
            clients = [Client(port) for _ in range(REFERENCE_CONNECTIONS)]
            for client in clients:
                client.call("GET", "/api/health")  # connected before anything is recorded
            calls = 0
            while not done.is_set():
                status, took, _body = clients[calls % len(clients)].call("GET", "/api/health")
                calls += 1
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
        stop_server(server, env)

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
        "bookings_answered": {f"{action} {status}": n for (action, status), n in sorted(booked.items())},
        "booking_repeats": booked[("book", 200)],
        "inconsistencies": int(attended != len(seat_ids)) + int(records != len(seat_ids)),
        "load_avg_1m": load(),
    }))


if __name__ == "__main__":
    main()
