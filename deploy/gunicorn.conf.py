"""gunicorn's settings for `web` (docker-compose.yml): `gunicorn -c deploy/gunicorn.conf.py fablab_ops.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its metrics in files there and /metrics adds them up
(fablab_ops/metrics.py); the directory must start empty (compose mounts a fresh tmpfs).

Pool: one worker process per core, 3 threads each (gthread). A request's work is mostly CPU in Python with
short waits on PostgreSQL (a session's row lock, the commit's flush): a few threads keep the cores busy while
others wait, keep connections alive between requests and tolerate slow clients; more threads only make them
queue for the interpreter's lock. Measured on the 2-core machine with bench/booking.py --quick
(bench/_support.py serves this file), three rounds, each pool in turn: 2 × 3 threads gave 0.157, 0.171 and 0.157
of the trivial endpoint, 2 × 1 0.158, 0.140 and 0.170, 3 × 1 0.145, 0.166 and 0.145: no pool stands out from the
machine's noise. Measured again once a booking cost three round trips, in full runs, two rounds: 2 × 3 gave 0.225
and 0.231, 4 × 1 0.194 and 0.196, 3 × 2 0.181 and 0.193, 3 × 1 0.202 and 0.221.

Python's switch interval is left at its 5 ms. A thread holding a session's row lock may wait that long for the
interpreter while its worker's other threads run, so a shorter interval was tried against the flash crowd
(bench/flash.py, worst p95 of three rounds, two runs each): 5 ms read 0.691 and 0.673 s, 1 ms 0.724 and 0.721 s,
0.5 ms 0.764 and 0.813 s.

The worker class is named: left to itself, gunicorn runs its sync worker when there is one thread per worker,
which closes the connection after each answer. With the sync worker, 2 × 1 read 0.172–0.191, higher only
because every request then opened a connection, which slowed the trivial endpoint (3,076–3,297 answers a
second, against 3,539–4,055) more than a booking.

WEB_WORKERS and WEB_THREADS override the pool; each worker thread keeps one PostgreSQL connection open
(CONN_MAX_AGE), so workers × threads stays well below PostgreSQL's max_connections minus the Celery worker's
and the ingest's.
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", str(multiprocessing.cpu_count())))
threads = int(os.environ.get("WEB_THREADS", "3"))
worker_class = "gthread"


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
