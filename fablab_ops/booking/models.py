from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from fablab_ops.booking.tickets import new_ticket_code


class ReservationStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("Đã xác nhận")
    CHECKED_IN = "checked_in", _("Đã check-in")
    COMPLETED = "completed", _("Đã hoàn thành")
    CANCELLED = "cancelled", _("Đã hủy")
    NO_SHOW = "no_show", _("Vắng mặt")


# Statuses that occupy the machine's time; only these may not overlap.
RESERVATION_BLOCKING = (ReservationStatus.CONFIRMED, ReservationStatus.CHECKED_IN, ReservationStatus.COMPLETED)


class Reservation(models.Model):
    """A learner's booked time on one machine (đặt máy)."""

    machine = models.ForeignKey("machines.Machine", on_delete=models.PROTECT, related_name="reservations")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations")
    start = models.DateTimeField(_("bắt đầu"))
    end = models.DateTimeField(_("kết thúc"))
    status = models.CharField(
        _("trạng thái"), max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.CONFIRMED
    )
    purpose = models.CharField(_("mục đích"), max_length=300, blank=True)
    ticket_code = models.CharField(max_length=32, unique=True, default=new_ticket_code, editable=False)
    # Set when a maintenance window is put over this reservation; its holder is told.
    maintenance_conflict = models.BooleanField(_("trùng lịch bảo trì"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    checked_in_at = models.DateTimeField(_("check-in lúc"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("đặt máy")
        verbose_name_plural = _("đặt máy")
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="reservation_end_after_start"),
        ]
        indexes = [
            models.Index(fields=["machine", "start"]),
            models.Index(fields=["user", "start"]),
            models.Index(fields=["status", "start"]),
        ]

    def __str__(self):
        from django.utils import timezone

        return f"{self.machine} — {timezone.localtime(self.start):%d/%m/%Y %H:%M} ({self.user})"


class CertificationMethod(models.TextChoices):
    INDUCTION = "induction", _("Tham gia buổi hướng dẫn")
    MANUAL = "manual", _("Kỹ thuật viên cấp")
    IMPORTED = "imported", _("Nhập từ hệ thống cũ")


class Certification(models.Model):
    """Permission to use one machine type in every lab of the network."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="certifications")
    machine_type = models.ForeignKey(
        "machines.MachineType", on_delete=models.PROTECT, related_name="certifications"
    )
    method = models.CharField(_("cách cấp"), max_length=16, choices=CertificationMethod.choices)
    granted_at = models.DateTimeField(_("cấp lúc"))
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The induction seat that earned it, when granted by attendance.
    seat_booking = models.ForeignKey(
        "courses.SeatBooking", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.CharField(_("ghi chú"), max_length=300, blank=True)
    revoked_at = models.DateTimeField(_("thu hồi lúc"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoke_reason = models.CharField(_("lý do thu hồi"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("chứng nhận sử dụng máy")
        verbose_name_plural = _("chứng nhận sử dụng máy")
        ordering = ["-granted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "machine_type"], condition=Q(revoked_at__isnull=True),
                name="certification_one_active_per_type",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | ~Q(revoke_reason=""),
                name="certification_revocation_has_reason",
            ),
        ]

    def __str__(self):
        return f"{self.user} — {self.machine_type}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class CertificationAction(models.TextChoices):
    GRANTED = "granted", _("Cấp")
    REVOKED = "revoked", _("Thu hồi")
    LAPSED = "lapsed", _("Hết hiệu lực do không sử dụng")


class CertificationEvent(models.Model):
    """The audit trail of certifications: who granted or revoked what, when and why."""

    certification = models.ForeignKey(Certification, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(_("thao tác"), max_length=16, choices=CertificationAction.choices)
    at = models.DateTimeField(_("lúc"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+", verbose_name=_("người thực hiện"))
    reason = models.CharField(_("lý do"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("lịch sử chứng nhận")
        verbose_name_plural = _("lịch sử chứng nhận")
        ordering = ["-at"]

    def __str__(self):
        return f"{self.get_action_display()} {self.certification} {self.at:%d/%m/%Y}"


class CheckInOutcome(models.TextChoices):
    CHECKED_IN = "checked_in", _("Đã check-in")
    ALREADY = "already_checked_in", _("Đã check-in trước đó")
    REFUSED = "refused", _("Bị từ chối")


class CheckInRecord(models.Model):
    """Every scan or manual check-in at a door, accepted or not (what happened at the door).

    A booking counts as attended once, however often it is scanned; the records
    are the audit trail, refused scans included with their reason.
    """

    at = models.DateTimeField(_("lúc"), db_index=True)
    lab = models.ForeignKey("machines.Lab", on_delete=models.PROTECT, related_name="check_ins")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                           verbose_name=_("người check-in"))
    outcome = models.CharField(_("kết quả"), max_length=24, choices=CheckInOutcome.choices)
    reason = models.CharField(_("lý do"), max_length=40, blank=True)
    method = models.CharField(_("cách"), max_length=10, choices=[("qr", "QR"), ("manual", _("Thủ công"))])
    seat_booking = models.ForeignKey("courses.SeatBooking", on_delete=models.SET_NULL, null=True, blank=True,
                                     related_name="check_in_records")
    reservation = models.ForeignKey(Reservation, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="check_in_records")
    # A short hash of the scanned text, so a refused code can be recognised without storing it.
    token_fingerprint = models.CharField(max_length=12, blank=True)
    undone_at = models.DateTimeField(_("hoàn tác lúc"), null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="+")

    class Meta:
        verbose_name = _("lượt check-in")
        verbose_name_plural = _("lượt check-in")
        ordering = ["-at"]
        indexes = [models.Index(fields=["lab", "-at"]), models.Index(fields=["outcome", "reason"])]

    def __str__(self):
        return f"{self.get_outcome_display()} {self.reason} {self.at:%d/%m/%Y %H:%M}"


class MachineDesiredState(models.Model):
    """What a machine should do now, as `booking.interlock` decided it: the device's desired state.

    One row per machine, and the outbox of its publication too: `published_version` below
    `version` means the broker does not hold the latest yet. `version` only grows (the
    device applies a version only if it is newer than the one it holds). `holder_name`
    None means nobody may use the machine: its interlock stays open.
    """

    machine = models.OneToOneField("machines.Machine", on_delete=models.CASCADE, related_name="desired_state")
    version = models.PositiveBigIntegerField(_("phiên bản"), default=0)
    holder_name = models.CharField(_("người dùng máy"), max_length=150, null=True, blank=True)
    holder_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+")
    reservation = models.ForeignKey(Reservation, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    valid_from = models.DateTimeField(_("từ"), null=True, blank=True)
    until = models.DateTimeField(_("đến"), null=True, blank=True)
    # The state that follows, already known: {"holder", "reservation", "from", "until"} as the device gets it.
    next = models.JSONField(_("tiếp theo"), null=True, blank=True)
    # The first moment this state no longer holds by itself (`until` or `next.from`): recomputed then.
    boundary_at = models.DateTimeField(null=True, blank=True, db_index=True)
    computed_at = models.DateTimeField(_("tính lúc"), null=True, blank=True)
    published_version = models.PositiveBigIntegerField(_("phiên bản đã gửi"), default=0)
    published_at = models.DateTimeField(_("đã gửi lúc"), null=True, blank=True)
    last_error = models.CharField(_("lỗi gần nhất"), max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("trạng thái mong muốn của máy")
        verbose_name_plural = _("trạng thái mong muốn của máy")
        indexes = [models.Index(fields=["published_version", "version"], name="desired_state_outbox")]

    def __str__(self):
        return f"{self.machine_id} v{self.version}"

    @property
    def is_due(self) -> bool:
        return self.published_version < self.version


class OverrideKind(models.TextChoices):
    OFF = "off", _("Tắt máy")
    MAINTENANCE = "maintenance", _("Bật để bảo trì")


class MachineOverride(models.Model):
    """A technician's word over the reservations: switch the machine off now, or enable it for maintenance.

    In force from `start` until `end` (none for a switch-off: until a technician ends it)
    or until ended early (`ended_at`).
    """

    machine = models.ForeignKey("machines.Machine", on_delete=models.CASCADE, related_name="overrides")
    kind = models.CharField(_("loại"), max_length=16, choices=OverrideKind.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+",
                           verbose_name=_("người thực hiện"))
    # Who may use the machine during a maintenance override (the technician doing it).
    holder = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    reason = models.CharField(_("lý do"), max_length=300, blank=True)
    start = models.DateTimeField(_("bắt đầu"))
    end = models.DateTimeField(_("kết thúc"), null=True, blank=True)
    ended_at = models.DateTimeField(_("kết thúc sớm lúc"), null=True, blank=True)
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lệnh của kỹ thuật viên")
        verbose_name_plural = _("lệnh của kỹ thuật viên")
        ordering = ["-start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__isnull=True) | Q(end__gt=F("start")),
                                   name="override_end_after_start"),
            models.CheckConstraint(condition=~Q(kind="maintenance") | Q(end__isnull=False),
                                   name="override_maintenance_has_end"),
        ]
        indexes = [models.Index(fields=["machine", "ended_at"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.machine_id} {self.start:%d/%m/%Y %H:%M}"

    def in_force(self, now) -> bool:
        return self.ended_at is None and self.start <= now and (self.end is None or now < self.end)
