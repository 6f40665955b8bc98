"""`make run` on a newcomer's laptop: SQLite, the embedded MQTT broker, tasks in-process.

The demo starts without an ERROR or a traceback on its console and stops completely within
five seconds of Ctrl-C or SIGTERM sent to its process group, as a terminal or a process
manager sends them. Each story runs `make run` itself, on free ports, in a temporary folder.
"""

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 240  # migrate and seed a fresh SQLite database on a busy two-core machine
SETTLE_S = 8  # the machines connect, the first periodic jobs run, the first reports are stored


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def members_of_group(pgid: int) -> dict[int, str]:
    """The live (not zombie) processes of a process group: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def processes_in_group(pgid: int) -> list[str]:
    """The live processes of a process group, by their command lines."""
    return list(members_of_group(pgid).values())


def serving(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def as_a_terminal_starts_it() -> None:
    """In the demo's process: Ctrl-C and Ctrl-\\ at their defaults, as for a command typed in a terminal, whatever
    this test run inherited (a run started in the background of a script ignores both, and so would the demo's
    web server: it would never see the Ctrl-C this test sends); and no core file when a process is aborted."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def where_they_are(pgid: int, console: Path) -> str:
    """The Python processes of the group that are still running, made to print every thread's stack on the
    console before they end (faulthandler, on SIGABRT): what they were waiting for; the console's end."""
    for pid, command in members_of_group(pgid).items():
        if "python" in command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGABRT)
    time.sleep(2)
    return console.read_text()[-6000:]


def start_demo(tmp_path: Path) -> tuple[subprocess.Popen, str, Path]:
    port, mqtt_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "EMAIL_BACKEND", "MQTT_URL"}}
    env.update({"SQLITE_PATH": str(tmp_path / "db.sqlite3"), "EMAIL_FILE_PATH": str(tmp_path / "mail"),
                "MQTT_URL": f"mqtt://127.0.0.1:{mqtt_port}", "PYTHONUNBUFFERED": "1",
                # A process that does not stop can be asked where it is (see `where_they_are`).
                "PYTHONFAULTHANDLER": "1"})
    console = tmp_path / "console.log"
    venv = sys.prefix
    # The virtualenv running these tests is the demo's; `-o` keeps make from reinstalling it.
    command = ["make", "-s", "-o", f"{venv}/bin/.installed", "run", f"VENV={venv}", f"PORT={port}"]
    with open(console, "wb") as out:
        demo = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True, preexec_fn=as_a_terminal_starts_it)
    return demo, f"http://127.0.0.1:{port}/", console


def wait_until_running(demo: subprocess.Popen, url: str, console: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if demo.poll() is not None:
            pytest.fail(f"make run ended with {demo.returncode}:\n{console.read_text()[-3000:]}")
        if serving(url) and "simulated machines reporting" in console.read_text():
            return
        time.sleep(0.5)
    pytest.fail(f"the demo did not serve within {STARTUP_S}s:\n{console.read_text()[-3000:]}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_the_demo_starts_calmly_and_stops_within_five_seconds(tmp_path, signum):
    demo, url, console = start_demo(tmp_path)
    pgid = demo.pid
    try:
        wait_until_running(demo, url, console)
        time.sleep(SETTLE_S)
        assert serving(url + "favicon.ico")
        os.killpg(pgid, signum)
        sent = time.monotonic()
        while processes_in_group(pgid) and time.monotonic() - sent < 10:
            demo.poll()  # reap make, our child
            time.sleep(0.1)
        stopped_after = time.monotonic() - sent
        left = processes_in_group(pgid)
        assert not left and stopped_after < 5, (f"still running {stopped_after:.1f}s after the signal: {left}\n"
                                                f"{where_they_are(pgid, console) if left else ''}")
    finally:
        if processes_in_group(pgid):
            os.killpg(pgid, signal.SIGKILL)
        demo.wait(timeout=10)
    output = console.read_text()
    assert "Traceback" not in output, output[-5000:]
    assert "ERROR" not in output, [line for line in output.splitlines() if "ERROR" in line]
