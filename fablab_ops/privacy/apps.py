from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PrivacyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "fablab_ops.privacy"
    verbose_name = _("Dữ liệu cá nhân")

    def ready(self):
        # What sign-up, booking, login, the profile and the admin also do about personal data: accounts is the
        # lower layer and imports nothing of this app, so this app registers it there.
        from fablab_ops import notifications
        from fablab_ops.privacy import hooks, services

        hooks.register()
        # The outbox asks, when a message is written and again when it is sent, whether the person consented.
        notifications.register_consent_check(services.may_send)
