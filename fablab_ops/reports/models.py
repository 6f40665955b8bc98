from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class YearTarget(models.Model):
    """What a lab (or, with no lab, the network as a whole) aims for in a year."""

    year = models.PositiveIntegerField(_("năm"))
    lab = models.ForeignKey("machines.Lab", on_delete=models.CASCADE, null=True, blank=True,
                            related_name="targets", verbose_name=_("phòng lab"))
    classes = models.PositiveIntegerField(_("số lớp học"), default=0)
    participant_turns = models.PositiveIntegerField(_("lượt tham gia"), default=0)
    machine_hours = models.PositiveIntegerField(_("giờ sử dụng máy"), default=0)

    class Meta:
        verbose_name = _("chỉ tiêu năm")
        verbose_name_plural = _("chỉ tiêu năm")
        ordering = ["-year", "lab"]
        constraints = [
            models.UniqueConstraint(fields=["year", "lab"], name="year_target_once_per_lab"),
            models.UniqueConstraint(fields=["year"], condition=Q(lab__isnull=True), name="year_target_once_network"),
        ]

    def __str__(self):
        return f"{self.year} — {self.lab or _('Toàn mạng lưới')}"


class GeneratedReport(models.Model):
    """A monthly report sent to the coordinators; one per month, so the job can run twice."""

    month = models.DateField(_("tháng"), unique=True)
    generated_at = models.DateTimeField(auto_now_add=True)
    sent_to = models.TextField(_("gửi đến"), blank=True)

    class Meta:
        verbose_name = _("báo cáo đã gửi")
        verbose_name_plural = _("báo cáo đã gửi")
        ordering = ["-month"]

    def __str__(self):
        return f"{self.month:%m/%Y}"
