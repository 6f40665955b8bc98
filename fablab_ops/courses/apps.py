from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "fablab_ops.courses"
    verbose_name = _("Khóa học")

    def ready(self):
        # Booking refuses someone not certified by pointing at the next induction; courses knows which.
        from fablab_ops.booking import services as booking_services
        from fablab_ops.courses import services

        booking_services.next_induction_finder = services.next_induction
