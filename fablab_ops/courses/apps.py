from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoursesConfig(AppConfig):
    name = "fablab_ops.courses"
    verbose_name = _("Khóa học")
