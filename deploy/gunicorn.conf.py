"""gunicorn's settings for `web` (docker-compose.yml): `gunicorn -c deploy/gunicorn.conf.py fablab_ops.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its metrics in files there and /metrics adds them up
(fablab_ops/metrics.py); the directory must start empty (compose mounts a fresh tmpfs).

Pool: 2 × cores + 1 single-threaded (sync) worker processes. A request's work is CPU in Python and waits
on PostgreSQL (a session's row lock, the commit's flush); threads in one process would share one interpreter
lock and add nothing to a queue that is serialised on the row lock anyway, while separate processes use
every core (bench/flash.py: p95 1.3 s with 5 sync workers, 2.5 s with 5 × 2 threads, 7.6 s with 3 × 4
threads, on the same busy 2-core machine). Sync workers answer one connection at a time, so they belong
behind a proxy that buffers requests and answers (the TLS proxy in front of `web`, with its buffering on).
WEB_WORKERS and WEB_THREADS override it; each worker thread keeps one PostgreSQL connection open
(CONN_MAX_AGE), so workers × threads stays well below PostgreSQL's max_connections minus the Celery
worker's and the ingest's.
"""

import multiprocessing
import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", str(2 * multiprocessing.cpu_count() + 1)))
threads = int(os.environ.get("WEB_THREADS", "1"))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
