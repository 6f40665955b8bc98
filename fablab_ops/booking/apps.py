from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingConfig(AppConfig):
    name = "fablab_ops.booking"
    verbose_name = _("Đặt máy và check-in")

    def ready(self):
        from fablab_ops.booking import interlock, signals  # noqa: F401 - connects the receivers
        from fablab_ops.machines import entitlements

        # The ingest asks who was entitled to run a machine; the interlock's module answers.
        entitlements.register(interlock.entitlements_for)
