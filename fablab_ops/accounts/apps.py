from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fablab_ops.accounts"
    verbose_name = _("Người dùng")

    def ready(self):
        # Connects the login-failure counters to Django's authentication signals.
        from fablab_ops import notifications
        from fablab_ops.accounts import tasks, throttle  # noqa: F401

        # A notification written in a transaction is queued for a worker once it commits.
        notifications.register_queue(lambda notification_id: tasks.send_notification.delay(notification_id))
