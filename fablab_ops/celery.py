import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab_ops.settings")

app = Celery("fablab_ops")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
