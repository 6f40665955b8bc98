from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "fablab_ops.courses"
    verbose_name = _("Khóa học")

    def ready(self):
        # Booking refuses someone not certified by pointing at the next induction; courses knows which.
        from fablab_ops.booking import services as booking_services

        booking_services.next_induction_finder = _next_induction


def _next_induction(machine_type, now):
    # The services are loaded when first asked, not when Django starts: a process that books nothing (the MQTT
    # ingest, most management commands) starts without them and the calendar libraries they bring.
    from fablab_ops.courses import services

    return services.next_induction(machine_type, now)
