import os

from celery import Celery
from celery.schedules import crontab
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab_ops.settings")

app = Celery("fablab_ops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def beat_schedule(entries: dict) -> dict:
    """CELERY_BEAT_SCHEDULE as Celery beat takes it: each {"crontab": {...}} made into Celery's crontab."""
    return {name: {**entry, "schedule": crontab(**entry["schedule"]["crontab"])}
            if isinstance(entry["schedule"], dict) else entry for name, entry in entries.items()}


app.conf.beat_schedule = beat_schedule(settings.CELERY_BEAT_SCHEDULE)


def warm_up() -> None:
    """Load what queuing a task needs (the broker's transport, the producer pool) in a process that will queue
    tasks, before it serves anyone: otherwise the first e-mail a fresh web process commits costs it about 0.2 s
    of CPU among its requests. Nothing is sent and no connection is opened (a broker that is down is met later,
    where the sweep covers it). Without a broker, tasks run in place and there is nothing to load."""
    if not app.conf.task_always_eager:
        with app.producer_or_acquire():
            pass
