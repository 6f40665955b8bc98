"""The web process as production runs it: gunicorn with deploy/gunicorn.conf.py.

An operator may size the pool with WEB_WORKERS and WEB_THREADS; whatever they choose, connections stay open
between requests (a browser's page and its API calls, a door's scanner).
"""

import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.outbox_support import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def one_thread_per_worker(tmp_path):
    """gunicorn with the production configuration, one worker with one thread; its port."""
    port = free_port()
    env = {**os.environ, "WEB_WORKERS": "1", "WEB_THREADS": "1", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
           "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "0", "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
           "PYTHONWARNINGS": "ignore::UserWarning", "DJANGO_SETTINGS_MODULE": "fablab_ops.settings"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                               "fablab_ops.wsgi:application", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
                              cwd=ROOT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "gunicorn exited"
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not listen within 30 s")
        yield port
    finally:
        server.terminate()  # the master stops its workers gracefully
        try:
            server.wait(timeout=30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)  # whatever the master left behind


def test_one_thread_per_worker_still_keeps_the_connection_open_between_requests(one_thread_per_worker):
    conn = http.client.HTTPConnection("127.0.0.1", one_thread_per_worker, timeout=10)
    conn.request("GET", "/healthz")
    first = conn.getresponse()
    first.read()
    assert first.status == 200
    assert first.getheader("Connection", "").lower() != "close"
    kept = conn.sock
    assert kept is not None, "the server closed the connection after one answer"
    conn.request("GET", "/healthz")
    second = conn.getresponse()
    second.read()
    assert second.status == 200
    assert conn.sock is kept
    conn.close()
