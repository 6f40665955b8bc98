from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MachinesConfig(AppConfig):
    name = "fablab_ops.machines"
    verbose_name = _("Phòng lab và thiết bị")
