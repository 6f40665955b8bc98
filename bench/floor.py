"""The floor under `bench/booking.py`'s ratio: the least a booking can cost through the same server.

Serves the app as every HTTP bench does (gunicorn with deploy/gunicorn.conf.py, the production settings and
middleware, its own PostgreSQL database), with one more URL (bench/floor_app.py, through
bench/floor_settings.py): a booking written by hand, with the round trips any booking needs — the token, the
locked session with its counts, the two rows with the COMMIT — and none of the rules, the ORM or the API's
schemas. Learners book sessions they hold no place in, with the same clients as `booking.py`, against the
same trivial endpoint measured just before and just after.

Last line: {"floor_ratio", "bookings_per_s", "reference_per_s", "repeats", "errors", ...}: what `booking.py`'s
ratio would be if a booking cost nothing above its round trips.

The floor only books, so its learners would run out of sessions to book: with `booking.py`'s 20 sessions and
400 learners, a full run has 8,000 bookings to make, and a booking that finds one already there (a repeat,
answered 200) changes nothing. The floor has ten times as many sessions, so no learner holds a place in all
of them before the run ends; `repeats` says whether any did, and then the figure counts what was there to
book, not what the server could do.

    python bench/floor.py [--quick] [--clients 16] [--seconds 20]
"""

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._support import Client, load, serve, setup, stop_server  # noqa: E402
from bench.booking import arguments, prepare, run_clients, trivial_endpoint  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_floor"


def main() -> None:
    args, seconds, (sessions, learners) = arguments(__doc__)
    env = setup(DEFAULT_DB)
    session_ids, tokens = prepare(sessions * 10, learners)
    server, port = serve({**env, "DJANGO_SETTINGS_MODULE": "bench.floor_settings"})
    try:
        health = trivial_endpoint(port)

        def book(index, stop):
            rng, client, booked, repeats, errors = random.Random(index), Client(port), 0, 0, 0
            mine = tokens[index::args.clients]
            held = {token: set() for token in mine}
            while time.monotonic() < stop:
                token = rng.choice(mine)
                free = [session_id for session_id in session_ids if session_id not in held[token]]
                if not free:  # this learner holds a place everywhere: they start again on fresh bookings
                    held[token].clear()
                    continue
                session_id = rng.choice(free)
                held[token].add(session_id)
                status = client.call("POST", f"/floor/sessions/{session_id}/book", token)[0]
                booked += status == 201
                repeats += status == 200
                errors += status not in (200, 201)
            return booked, repeats, errors

        run_clients(args.clients, 2.0, health)
        reference_before = sum(run_clients(args.clients, seconds, health)) / seconds
        outcomes = run_clients(args.clients, seconds, book)
        reference_after = sum(run_clients(args.clients, seconds, health)) / seconds
    finally:
        stop_server(server, env)
    booked = sum(made for made, _, _ in outcomes) / seconds
    reference = (reference_before + reference_after) / 2
    print(json.dumps({"floor_ratio": round(booked / reference, 3) if reference else 0.0,
                      "bookings_per_s": round(booked, 1), "reference_per_s": round(reference, 1),
                      "reference_before_per_s": round(reference_before, 1),
                      "reference_after_per_s": round(reference_after, 1),
                      "repeats": sum(repeats for _, repeats, _ in outcomes),
                      "errors": sum(errors for _, _, errors in outcomes), "clients": args.clients, "seconds": seconds,
                      "load_avg_1m": load()}))


if __name__ == "__main__":
    main()
