"""gunicorn's settings for `web` (docker-compose.yml): `gunicorn -c deploy/gunicorn.conf.py fablab_ops.wsgi`.

With PROMETHEUS_MULTIPROC_DIR set, each worker keeps its metrics in files there and /metrics adds them up
(fablab_ops/metrics.py); the directory must start empty (compose mounts a fresh tmpfs).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_WORKERS", "3"))
threads = int(os.environ.get("WEB_THREADS", "4"))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
