"""Last month's report, generated on the 1st and mailed to the coordinators once."""

from datetime import date

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from fablab_ops.accounts.models import Role, User
from fablab_ops.reports import services
from fablab_ops.reports.exporters import EXPORTERS
from fablab_ops.reports.models import GeneratedReport


def send_monthly_report(month: date) -> bool:
    """True when sent now; False when this month's report had already gone out."""
    month = month.replace(day=1)
    with transaction.atomic():
        record, created = GeneratedReport.objects.select_for_update().get_or_create(month=month)
        if not created:
            return False
        coordinators = list(User.objects.filter(role__in=[Role.COORDINATOR, Role.ADMIN], is_active=True)
                            .order_by("email"))
        report = services.monthly_report(month)
        for coordinator in coordinators:
            language = coordinator.language or "vi"
            name, media_type, content = EXPORTERS["xlsx"].render(report, language)
            with translation.override(language):
                subject = _("Báo cáo tháng %(month)s — Mạng lưới Fablab Bình Dương") % {"month": f"{month:%m/%Y}"}
                body = _("Báo cáo lớp học và sử dụng máy tháng %(month)s được đính kèm.") % {"month": f"{month:%m/%Y}"}
            message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [coordinator.email])
            message.attach(name, content, media_type)
            message.send()
        record.sent_to = ", ".join(c.email for c in coordinators)
        record.save(update_fields=["sent_to"])
    return True
