from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fablab_ops.accounts"
    verbose_name = _("Người dùng")

    def ready(self):
        # Connects the login-failure counters to Django's authentication signals.
        from fablab_ops import notifications
        from fablab_ops.accounts import tasks, throttle  # noqa: F401

        # A notification written in a transaction is queued for a worker once it commits; with a broker, from
        # a thread of the process (without one, Celery runs the task at once, in the request: the laptop demo).
        notifications.register_queue(lambda notification_ids: tasks.send_notifications.delay(notification_ids),
                                     in_background=lambda: not tasks.send_notifications.app.conf.task_always_eager)
