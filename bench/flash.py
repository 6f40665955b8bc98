"""A flash crowd: registration opens and 200 learners book one 20-seat session in the same instant.

Serves the app with gunicorn (bench/_support.py, as every HTTP bench) on its own PostgreSQL database. Every learner has
their own account and API token and their own thread with an open connection; all wait at a barrier and
then send POST /api/courses/sessions/{id}/book at once. Each latency is measured from the barrier's release
to the last byte of that learner's answer. Afterwards the database is checked: 20 seats held, everyone
else waiting in places 1..n, one booking per learner.

Last line: {"p50_s", "p95_s", "max_s", "confirmed", "waitlisted", "errors", "inconsistencies", ...}.
Targets: p95 <= 1 s, 20 confirmed, 180 waitlisted, 0 errors.

    python bench/flash.py [--quick] [--learners 200] [--rounds 3]
"""

import argparse
import http.client
import json
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import load, percentile, serve, setup, signed_up, stop_server  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_flash"
SEATS = 20
WARM_UP = 24  # requests before the crowd, by learners of their own and on a session of its own


def prepare(rounds: int, learners: int):
    """One 20-seat session per round, a week ahead, and `learners` verified learners with API tokens; then a
    session for warming up and its own learners."""
    from django.utils import timezone

    from fablab_ops.accounts.models import ApiToken, User
    from fablab_ops.courses.models import Course, Session
    from fablab_ops.machines.models import Lab

    lab = Lab.objects.create(slug="flash", short_name="Flash", name_vi="Phòng lab thử tải", host="-", field="-",
                             address="-")
    course = Course.objects.create(kind="arduino", slug="flash-arduino", title_vi="Arduino", lab=lab,
                                   default_capacity=SEATS, min_capacity=1, max_capacity=SEATS)
    start = timezone.now() + timedelta(days=7)
    sessions = [Session.objects.create(course=course, lab=lab, start=start + timedelta(hours=4 * i),
                                       end=start + timedelta(hours=4 * i + 3), capacity=SEATS).pk
                for i in range(rounds + 1)]
    users = User.objects.bulk_create([
        User(email=f"flash{n}@example.vn", full_name=f"Học viên {n}", email_verified_at=timezone.now())
        for n in range(learners + WARM_UP)])
    signed_up(users)
    tokens = [ApiToken.issue(user, "flash")[1] for user in users]
    return sessions[:rounds], tokens[:learners], sessions[rounds], tokens[learners:]


def crowd(port: int, session_id: int, tokens: list[str]) -> list[tuple[int, float, dict]]:
    """Everyone books at once; (status, seconds from the release, answer) per learner."""
    released = [0.0]
    # The clock starts when the last learner (or the main thread) reaches the barrier: the release itself.
    barrier = threading.Barrier(len(tokens) + 1, action=lambda: released.__setitem__(0, time.perf_counter()))
    results = [None] * len(tokens)

    def learner(index: int, token: str):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.connect()
            barrier.wait()
            conn.request("POST", f"/api/courses/sessions/{session_id}/book",
                         headers={"Authorization": f"Bearer {token}"})
            response = conn.getresponse()
            body = response.read()
            took = time.perf_counter() - released[0]
            answer = json.loads(body) if response.status in (200, 201) else {}
            results[index] = (response.status, took, answer)
        except (OSError, http.client.HTTPException, ValueError):
            results[index] = (0, time.perf_counter() - released[0], {})
        finally:
            conn.close()

    threads = [threading.Thread(target=learner, args=(i, token)) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # every connection open and waiting
    barrier.wait()
    for thread in threads:
        thread.join(timeout=120)
    return results


def warm_up(port: int, session_id: int, tokens: list[str]) -> None:
    """A running server, as on the morning registration opens: every worker has answered requests, bookings
    among them (by other learners, on another session)."""
    for token in tokens:
        for method, path, headers in (("GET", f"/api/courses/sessions/{session_id}", {}),
                                      ("POST", f"/api/courses/sessions/{session_id}/book",
                                       {"Authorization": f"Bearer {token}"})):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(method, path, headers=headers)
            conn.getresponse().read()
            conn.close()


def check(session_id: int, learners: int) -> int:
    from fablab_ops.courses import services
    from fablab_ops.courses.models import SeatStatus, Session

    session = Session.objects.get(pk=session_id)
    live = session.bookings.exclude(status=SeatStatus.CANCELLED)
    problems = int(services.seats_taken(session) != min(SEATS, learners))
    problems += sum(1 for n in Counter(live.values_list("learner_id", flat=True)).values() if n > 1)
    # Everyone waiting has a place of their own, 1..n, in the order they booked.
    places = list(live.filter(status=SeatStatus.WAITLISTED).annotate(place=services.waiting_place())
                  .order_by("waitlist_position").values_list("place", flat=True))
    problems += places != list(range(1, max(learners - SEATS, 0) + 1))
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one crowd instead of three")
    parser.add_argument("--learners", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="crowds, each on a fresh session (the worst counts)")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds

    env = setup(DEFAULT_DB)
    sessions, tokens, warm_session, warm_tokens = prepare(rounds, args.learners)
    server, port = serve(env)
    try:
        warm_up(port, warm_session, warm_tokens)
        crowds = [crowd(port, session_id, tokens) for session_id in sessions]
    finally:
        stop_server(server, env)

    per_round = []
    for session_id, results in zip(sessions, crowds, strict=True):
        latencies = [took for _status, took, _answer in results]
        outcomes = Counter(answer.get("status", "error") for _status, _took, answer in results)
        per_round.append({
            "p50_s": round(percentile(latencies, 0.50), 3), "p95_s": round(percentile(latencies, 0.95), 3),
            "max_s": round(max(latencies), 3), "confirmed": outcomes.get("confirmed", 0),
            "waitlisted": outcomes.get("waitlisted", 0),
            "errors": sum(1 for status, _took, _answer in results if status not in (200, 201)),
            "inconsistencies": check(session_id, args.learners),
        })
    worst = max(per_round, key=lambda r: r["p95_s"])
    print(json.dumps({**worst, "learners": args.learners, "rounds": per_round, "load_avg_1m": load()}))


if __name__ == "__main__":
    main()
