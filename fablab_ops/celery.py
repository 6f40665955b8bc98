import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab_ops.settings")

app = Celery("fablab_ops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def warm_up() -> None:
    """Load what queuing a task needs (the broker's transport, the producer pool) in a process that will queue
    tasks, before it serves anyone: otherwise the first e-mail a fresh web process commits costs it about 0.2 s
    of CPU among its requests. Nothing is sent and no connection is opened (a broker that is down is met later,
    where the sweep covers it). Without a broker, tasks run in place and there is nothing to load."""
    if not app.conf.task_always_eager:
        with app.producer_or_acquire():
            pass
