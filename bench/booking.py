"""Seat booking under load, over HTTP, against the served app and PostgreSQL.

Serves the app with gunicorn on a free localhost port, then with the same number
of concurrent clients measures:
  reference: GET /api/health (a trivial django-ninja endpoint, no database), for the
             same time just before and just after the project's run; their mean is
             the reference, so a machine busier at one end cannot flatter the ratio;
  project:   learners booking seats in classes they hold no place in, giving up some
             of those they hold, and looking at their waiting places to take the seats
             offered to them (POST book / cancel / confirm; GET a booking, not counted).
Only operations that changed something count: a new booking (201), a cancellation
of a live booking, an offer taken. A repeated booking (200, the learner's existing
one) changes nothing and is reported apart, as `repeats_per_s`.
Afterwards the database is checked: no session over capacity, one live seat per
learner, places on the waiting lists 1..n, and every answer a learner got matches
what is stored. Last line: {"ratio", "changes_per_s", "reference_per_s", "repeats_per_s",
"inconsistencies", ...}. Target: ratio >= 0.2.

    python bench/booking.py [--quick] [--clients 16] [--seconds 20]
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

from bench._support import Client, load, serve, setup, signed_up, stop_server  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_booking"


def prepare(sessions: int, learners: int):
    """Courses, sessions a week ahead (so cancelling is allowed) and learners with API tokens."""
    from django.utils import timezone

    from fablab_ops.accounts.models import ApiToken, User
    from fablab_ops.courses.models import Course, Session
    from fablab_ops.machines.models import Lab

    lab = Lab.objects.create(slug="bench", short_name="Bench", name_vi="Phòng lab thử tải", host="-", field="-",
                             address="-")
    course = Course.objects.create(kind="arduino", slug="bench-arduino", title_vi="Arduino", lab=lab,
                                   default_capacity=20, min_capacity=15, max_capacity=20)
    start = timezone.now() + timedelta(days=7)
    session_ids = [Session.objects.create(course=course, lab=lab, start=start + timedelta(hours=4 * i),
                                          end=start + timedelta(hours=4 * i + 3), capacity=20).pk
                   for i in range(sessions)]
    tokens = []
    for n in range(learners):
        user = User.objects.create(email=f"bench{n}@example.vn", full_name=f"Học viên {n}",
                                   email_verified_at=timezone.now())
        signed_up([user])
        tokens.append(ApiToken.issue(user, "bench")[1])
    return session_ids, tokens


def run_clients(count: int, seconds: float, work) -> list:
    stop = time.monotonic() + seconds
    results = [None] * count

    def loop(index):
        results[index] = work(index, stop)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def arguments(description: str) -> tuple[argparse.Namespace, float, tuple[int, int]]:
    """The command line shared with bench/floor.py: (arguments, seconds of load, (sessions, learners))."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run (about 10 s of load)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    return args, (5.0 if args.quick else args.seconds), ((8, 160) if args.quick else (20, 400))


def trivial_endpoint(port: int):
    """A client's loop on the reference, GET /api/health: how many answered 200 before `stop`."""
    def health(index, stop):
        client, done = Client(port), 0
        while time.monotonic() < stop:
            status, _took, _body = client.call("GET", "/api/health")
            done += status == 200
        return done
    return health


def main() -> None:
    args, seconds, (sessions, learners) = arguments(__doc__)
    env = setup(DEFAULT_DB)
    session_ids, tokens = prepare(sessions, learners)
    server, port = serve(env)
    try:
        health = trivial_endpoint(port)

        # Every worker thread answers before anything is measured: a cold pool would lower the reference.
        run_clients(args.clients, 2.0, health)
        reference_before = sum(run_clients(args.clients, seconds, health)) / seconds

        # Each learner belongs to one client thread, so the last answer it got about a booking is the state the
        # database must hold at the end. Like real learners, each books a class they hold no place in, or gives
        # up one they hold; an answer that changed nothing (the learner's existing booking) is a repeat.
        def book_and_cancel(index, stop):
            rng = random.Random(index)
            mine = tokens[index::args.clients]
            held = {token: {} for token in mine}  # the learner's live bookings: session id -> booking id
            client, done, errors, last = Client(port), Counter(), Counter(), {}

            def change(token, booking_id, action, counted, happened):
                """POST a change to one of the learner's bookings; count it when the answer says it happened.
                The booking was live when last answered and only this thread acts for this learner, so such an
                answer is a change that happened."""
                status, _took, body = client.call("POST", f"/api/courses/bookings/{booking_id}/{action}", token)
                if status != 200:
                    errors[status] += 1
                    return
                answer = json.loads(body)["status"]
                done[counted] += answer == happened
                last[booking_id] = answer

            while time.monotonic() < stop:
                token = rng.choice(mine)
                places = held[token]
                waiting = [booking_id for booking_id in places.values() if last.get(booking_id) == "waitlisted"]
                if waiting and rng.random() < 0.1:
                    # A learner on a waiting list looks at their place (as after the e-mail saying a seat is
                    # held for them) and takes the seat when it is offered.
                    booking_id = rng.choice(waiting)
                    status, _took, body = client.call("GET", f"/api/courses/bookings/{booking_id}", token)
                    done["looked"] += 1
                    if status != 200:
                        errors[status] += 1
                    elif json.loads(body)["offer_expires_at"]:
                        change(token, booking_id, "confirm", "offers_taken", "confirmed")
                    continue
                if places and rng.random() < 0.3:
                    session_id = rng.choice(list(places))
                    change(token, places.pop(session_id), "cancel", "cancelled", "cancelled")
                    continue
                free = [session_id for session_id in session_ids if session_id not in places]
                if not free:
                    continue
                session_id = rng.choice(free)
                status, _took, body = client.call("POST", f"/api/courses/sessions/{session_id}/book", token)
                if status not in (200, 201):
                    errors[status] += 1
                    continue
                done["booked" if status == 201 else "repeated"] += 1
                booking = json.loads(body)
                last[booking["id"]] = booking["status"]
                places[session_id] = booking["id"]
                if booking["status"] == "waitlisted" and booking["offer_expires_at"]:
                    change(token, booking["id"], "confirm", "offers_taken", "confirmed")
            return done, errors, last

        outcomes = run_clients(args.clients, seconds, book_and_cancel)
        reference_after = sum(run_clients(args.clients, seconds, health)) / seconds
    finally:
        stop_server(server, env)

    done = sum((counts for counts, _, _ in outcomes), Counter())
    changes = (done["booked"] + done["cancelled"] + done["offers_taken"]) / seconds
    reference = (reference_before + reference_after) / 2
    errors = sum((errs for _, errs, _ in outcomes), Counter())
    answers = {}
    for _, _, last in outcomes:
        answers.update(last)
    inconsistencies = check(session_ids, answers)
    figures = {
        "ratio": round(changes / reference, 3) if reference else 0.0,
        "changes_per_s": round(changes, 1),
        "reference_per_s": round(reference, 1),
        "reference_before_per_s": round(reference_before, 1),
        "reference_after_per_s": round(reference_after, 1),
        "repeats_per_s": round(done["repeated"] / seconds, 1),
        "booked": done["booked"], "cancelled": done["cancelled"], "offers_taken": done["offers_taken"],
        "repeated": done["repeated"], "looked": done["looked"],
        "inconsistencies": inconsistencies,
        "errors_5xx": sum(n for status, n in errors.items() if status >= 500 or status == 0),
        "errors_4xx": sum(n for status, n in errors.items() if 400 <= status < 500),
        "clients": args.clients,
        "seconds": seconds,
        "load_avg_1m": load(),
    }
    print(json.dumps(figures))


def check(session_ids: list[int], answers: dict[int, str]) -> int:
    from django.utils import timezone

    from fablab_ops.courses import services
    from fablab_ops.courses.models import SeatBooking, SeatStatus, Session

    problems = 0
    for session in Session.objects.filter(pk__in=session_ids):
        problems += services.seats_taken(session) > session.capacity
        live = session.bookings.exclude(status=SeatStatus.CANCELLED)
        per_learner = Counter(live.values_list("learner_id", flat=True))
        problems += sum(1 for n in per_learner.values() if n > 1)
        # Those waiting without an offer have places 1..n in the list's order, each their own.
        places = list(live.filter(status=SeatStatus.WAITLISTED).exclude(offer_expires_at__gt=timezone.now())
                      .annotate(place=services.waiting_place()).order_by("waitlist_position")
                      .values_list("place", flat=True))
        problems += places != list(range(1, len(places) + 1))
        # A free seat while someone waits without an offer would be a lost booking.
        free = session.capacity - services.seats_taken(session)
        problems += free > 0 and services.waiting_count(session) > 0
    stored = dict(SeatBooking.objects.filter(pk__in=answers).values_list("pk", "status"))
    problems += sum(1 for pk, status in answers.items() if stored.get(pk) != status)
    return problems


if __name__ == "__main__":
    main()
