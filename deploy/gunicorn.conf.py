"""gunicorn's settings for `web` (docker-compose.yml): `gunicorn -c deploy/gunicorn.conf.py fablab_ops.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its metrics in files there and /metrics adds them up
(fablab_ops/metrics.py); the directory must start empty (compose mounts a fresh tmpfs).

Pool: cores + 1 worker processes of 4 threads (gthread). A request's work is CPU in Python and waits on
PostgreSQL (a session's row lock, the commit's flush): threads keep the cores busy while others wait, keep
connections alive between requests and tolerate slow clients. Measured on the busy 2-core machine with the
benches (bench/_support.py serves this file): 3 × 4 threads and 5 single-threaded workers gave the same
flash-crowd p95 within the noise (1.3–2.5 s against 1.4–3.4 s) and the same booking ratio (0.052 against
0.053), but twice the requests per second with threads (149 changes/s against 71), since a single-threaded
worker closes the connection after every answer. WEB_WORKERS and WEB_THREADS override it; each worker
thread keeps one PostgreSQL connection open (CONN_MAX_AGE), so workers × threads stays well below
PostgreSQL's max_connections minus the Celery worker's and the ingest's.
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", str(multiprocessing.cpu_count() + 1)))
threads = int(os.environ.get("WEB_THREADS", "4"))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
