from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingConfig(AppConfig):
    name = "fablab_ops.booking"
    verbose_name = _("Đặt máy và check-in")

    def ready(self):
        from fablab_ops.booking import signals  # noqa: F401 - connects the receivers
