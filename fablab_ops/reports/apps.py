from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "fablab_ops.reports"
    verbose_name = _("Báo cáo")
