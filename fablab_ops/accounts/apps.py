from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fablab_ops.accounts"
    verbose_name = _("Người dùng")

    def ready(self):
        # Connects the login-failure counters to Django's authentication signals.
        from fablab_ops.accounts import throttle  # noqa: F401
