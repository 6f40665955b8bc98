from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "fablab_ops.accounts"
    verbose_name = _("Người dùng")
