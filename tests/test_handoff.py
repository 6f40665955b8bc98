"""Committed work handed to the broker from a thread of the web process: e-mails of a busy minute share
tasks, and a machine's desired state never waits for the e-mails lingering beside it."""

import threading

from fablab_ops import handoff


class Recorder:
    """A queue that records each call it gets, as Celery would receive one task per call."""

    def __init__(self):
        self.calls: list[list] = []
        self.called = threading.Event()

    def __call__(self, items):
        self.calls.append(list(items))
        self.called.set()


def test_e_mails_committed_together_travel_in_one_task():
    send = Recorder()
    for notification_id in range(1, 21):
        handoff.put([notification_id], send, linger=1.0)
    assert send.called.wait(10)
    assert send.calls == [list(range(1, 21))]


def test_a_machine_switched_on_does_not_wait_for_the_e_mails_lingering_before_it():
    send, publish = Recorder(), Recorder()
    handoff.put([7], send, linger=60)  # an e-mail that may wait a minute
    handoff.put([3], publish, linger=0.05)  # the machine the learner stands at
    # Well before the e-mail's minute: the machine's state goes, and the e-mail with it, as it was gathered.
    assert publish.called.wait(10)
    assert publish.calls == [[3]]
    assert send.called.wait(10)
    assert send.calls == [[7]]


def test_a_queue_that_fails_does_not_stop_the_others():
    def broken(items):
        raise ConnectionError("Redis is down")

    publish = Recorder()
    handoff.put([1], broken, linger=0)
    handoff.put([2], publish, linger=0)
    assert publish.called.wait(10)
    later = Recorder()
    handoff.put([3], later, linger=0)
    assert later.called.wait(10) and later.calls == [[3]]


def test_a_web_process_starts_while_the_broker_is_down():
    """Loading the broker's transport before serving anyone opens no connection: a web process starts, and the
    e-mails it commits meanwhile wait for their sweep."""
    from fablab_ops.celery import app, warm_up
    from tests.outbox_support import free_port, use_broker

    use_broker(app, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    try:
        warm_up()
        assert app.amqp._producer_pool is not None  # loaded, so the first commit does not pay for it
    finally:
        use_broker(app, None)
