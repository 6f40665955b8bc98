"""Last month's report, generated on the 1st and mailed to the coordinators once.

The report is generated and recorded in one transaction, with one outbox row per
coordinator holding their e-mail and its XLSX attachment; the e-mails go out after
the commit, outside any transaction. A run killed halfway leaves the unsent rows
due (the outbox sweep sends them) and the sent ones sent: nobody gets it twice.
"""

from datetime import date

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from fablab_ops import notifications
from fablab_ops.accounts.models import Notification, Role, User
from fablab_ops.reports import services
from fablab_ops.reports.exporters import EXPORTERS
from fablab_ops.reports.models import GeneratedReport


def dedup_prefix(month: date) -> str:
    return f"monthly-report-{month:%Y-%m}-"


def send_monthly_report(month: date) -> bool:
    """True when generated now; False when this month's report had already been generated.

    Either way, what is still due of this month's e-mails is sent now (a task that runs twice sends once).
    """
    month = month.replace(day=1)
    with transaction.atomic():
        record, created = GeneratedReport.objects.select_for_update().get_or_create(month=month)
        if created:
            coordinators = list(User.objects.filter(role__in=[Role.COORDINATOR, Role.ADMIN], is_active=True)
                                .order_by("email"))
            report = services.monthly_report(month)
            for coordinator in coordinators:
                language = coordinator.language or "vi"
                attachment = EXPORTERS["xlsx"].render(report, language)
                with translation.override(language):
                    subject = (_("Báo cáo tháng %(month)s — Mạng lưới Fablab Bình Dương")
                               % {"month": f"{month:%m/%Y}"})
                    body = _("Báo cáo lớp học và sử dụng máy tháng %(month)s được đính kèm.") % {
                        "month": f"{month:%m/%Y}"}
                notifications.enqueue(coordinator, "monthly_report",
                                      dedup_key=f"{dedup_prefix(month)}{coordinator.pk}", subject=subject,
                                      body=body, attachment=attachment, queue=False)
            record.sent_to = ", ".join(c.email for c in coordinators)
            record.save(update_fields=["sent_to"])
    rows = list(Notification.objects.filter(kind="monthly_report", dedup_key__startswith=dedup_prefix(month))
                .values_list("pk", flat=True))
    if rows:
        notifications.send_due(ids=rows, limit=len(rows))
    return created
