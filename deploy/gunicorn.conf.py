"""gunicorn's settings for `web` (docker-compose.yml): `gunicorn -c deploy/gunicorn.conf.py fablab_ops.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its metrics in files there and /metrics adds them up
(fablab_ops/metrics.py); the directory must start empty (compose mounts a fresh tmpfs).

Pool: one worker process per core, 3 threads each (gthread). A request's work is mostly CPU in Python with
short waits on PostgreSQL (a session's row lock, the commit's flush): a few threads keep the cores busy while
others wait, keep connections alive between requests and tolerate slow clients; more threads only make them
queue for the interpreter's lock. Measured on the 2-core machine with the benches (bench/_support.py serves
this file), two runs each of `booking.py --quick`: 2 × 3 threads gave 0.085 and 0.088 of the trivial endpoint,
2 × 2 gave 0.087 and 0.096, 3 × 4 gave 0.074 and 0.069, 4 single-threaded workers 0.075 and 0.072; the flash
crowd's p95 was 0.85 s with 2 × 3 and 0.78 s with 2 × 2 (0.79–0.85 s with 3 × 4), the door's scans 1.45× and
1.17× the trivial endpoint's p95. WEB_WORKERS and WEB_THREADS override it; each worker
thread keeps one PostgreSQL connection open (CONN_MAX_AGE), so workers × threads stays well below
PostgreSQL's max_connections minus the Celery worker's and the ingest's.
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", str(multiprocessing.cpu_count())))
threads = int(os.environ.get("WEB_THREADS", "3"))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
