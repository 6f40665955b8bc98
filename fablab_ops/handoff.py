"""Handing committed work to the broker from a thread of the process, so no request waits for Redis.

The outbox's e-mails and the interlock's desired states are written in the business transaction; once it
commits, a Celery task is asked to send or publish them. Publishing to Redis costs more than the request's
own statements, and a hung Redis would hold the person's answer: here one thread per process makes those
calls, and items committed while it was busy, or while the first of them lingers, travel in one call per queue.
Each item says how long it may linger: an e-mail half a second (nobody notices, and a busy web worker's
bookings then cost one task per half second), a machine's desired state 50 ms (someone stands at the machine).

What reaches this thread is already committed, so a process that dies with items in hand loses nothing:
each has its sweep (the outbox's `send_due_notifications`, the interlock's `sync_desired_states`).
"""

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from django.db import connections

logger = logging.getLogger(__name__)

# Publishing one Celery task costs a process about 1.5 ms of CPU on the benches' 2-core machine (more than a
# booking's own statements): what was committed while the first item lingered travels in one task.
LINGER = 0.05

_lock = threading.Lock()
_pid: int | None = None
_pending: queue.SimpleQueue = queue.SimpleQueue()


def celery_has_broker() -> bool:
    """Whether Celery sends tasks to a broker (else it runs them in place, in the caller: the laptop demo). Asked
    when there is something to queue, so that Celery is loaded then and not when Django starts."""
    from fablab_ops.celery import app

    return not app.conf.task_always_eager


def put(items: list, enqueue: Callable[[list], object], *, linger: float = LINGER) -> None:
    """Call `enqueue(items)` within about `linger` seconds, from this process's handoff thread (with other items
    for the same queue)."""
    global _pid, _pending
    with _lock:
        if _pid != os.getpid():  # first use, or a forked worker: its parent's thread is not here
            _pid, _pending = os.getpid(), queue.SimpleQueue()
            threading.Thread(target=_run, args=(_pending,), name="handoff", daemon=True).start()
    _pending.put((items, enqueue, time.monotonic() + linger))


def _run(pending: queue.SimpleQueue) -> None:
    while True:
        batches = [pending.get()]
        # Gather until the most pressing item's time is up. The queue is looked at every LINGER, not woken by
        # each item (a busy worker's every commit would then cost a thread switch): an item more pressing than
        # those lingering waits at most LINGER longer than it asked.
        due = batches[0][2]
        while True:
            while True:
                try:
                    batches.append(pending.get_nowait())
                except queue.Empty:
                    break
                due = min(due, batches[-1][2])
            if (left := due - time.monotonic()) <= 0:
                break
            time.sleep(min(left, LINGER))
        by_queue: dict = {}
        for items, enqueue, _due in batches:
            by_queue.setdefault(enqueue, []).extend(items)
        for enqueue, items in by_queue.items():
            try:
                enqueue(items)
            except Exception:  # the broker is down or slow: the items wait for their sweep
                logger.warning("could not queue %d item(s); their sweep will take them", len(items), exc_info=True)
        # A queue that runs its task in place (Celery without a broker) used the database from this thread: its
        # connection is this thread's own and would otherwise stay open, idle, for the process's life.
        connections.close_all()
