from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fablab_ops.accounts"
    verbose_name = _("Người dùng")

    def ready(self):
        # Connects the login-failure counters to Django's authentication signals.
        from fablab_ops import handoff, notifications
        from fablab_ops.accounts import throttle  # noqa: F401

        # A notification written in a transaction is queued for a worker once it commits; with a broker, from
        # a thread of the process (without one, Celery runs the task at once, in the request: the laptop demo).
        notifications.register_queue(_queue_notifications, in_background=handoff.celery_has_broker)


# Celery is loaded when the first task is queued, not when Django starts: a process that queues none (the MQTT
# ingest, a management command) starts about 70 ms sooner. The tasks module brings the project's Celery app.
def _queue_notifications(notification_ids):
    from fablab_ops.accounts import tasks

    tasks.send_notifications.delay(notification_ids)
