from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fablab_ops.privacy"
    verbose_name = _("Dữ liệu cá nhân")

    def ready(self):
        from fablab_ops import notifications
        from fablab_ops.privacy import services

        # The outbox asks, when a message is written and again when it is sent, whether the person consented.
        notifications.register_consent_check(services.may_send)
