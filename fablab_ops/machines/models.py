from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Thứ Hai")
    TUESDAY = 1, _("Thứ Ba")
    WEDNESDAY = 2, _("Thứ Tư")
    THURSDAY = 3, _("Thứ Năm")
    FRIDAY = 4, _("Thứ Sáu")
    SATURDAY = 5, _("Thứ Bảy")
    SUNDAY = 6, _("Chủ Nhật")


class MachineState(models.TextChoices):
    """What a machine says it is doing, in its telemetry (`state`)."""

    OFF = "off", _("Đã tắt")
    IDLE = "idle", _("Đang chờ")
    RUNNING = "running", _("Đang chạy")
    ERROR = "error", _("Lỗi")


def machine_state_label(state: str) -> str:
    """The state a machine reported, in the reader's words; an unknown one as it came."""
    try:
        return str(MachineState(state).label)
    except ValueError:
        return state


class BilingualName(models.Model):
    name_vi = models.CharField(_("tên (tiếng Việt)"), max_length=200)
    name_en = models.CharField(_("tên (tiếng Anh)"), max_length=200, blank=True)

    class Meta:
        abstract = True

    @property
    def name(self) -> str:
        if (get_language() or "vi").startswith("en") and self.name_en:
            return self.name_en
        return self.name_vi

    def __str__(self):
        return self.name_vi


class Lab(BilingualName):
    """One Fablab of the network; each has its own opening hours and technicians."""

    slug = models.SlugField(unique=True, max_length=40)
    short_name = models.CharField(_("tên ngắn"), max_length=40)
    host = models.CharField(_("đơn vị chủ quản"), max_length=200)
    field = models.CharField(_("lĩnh vực"), max_length=200)
    address = models.CharField(_("địa chỉ"), max_length=300)
    is_active = models.BooleanField(_("đang hoạt động"), default=True)
    technicians = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="staffed_labs", verbose_name=_("kỹ thuật viên")
    )

    class Meta:
        verbose_name = _("phòng lab")
        verbose_name_plural = _("phòng lab")
        ordering = ["short_name"]

    def opening_intervals(self, day) -> list[tuple[datetime, datetime]]:
        """The lab's open intervals on a local calendar date, as aware datetimes."""
        tz = timezone.get_default_timezone()
        return [
            (datetime.combine(day, hours.opens, tz), datetime.combine(day, hours.closes, tz))
            for hours in self.opening_hours.all()
            if hours.weekday == day.weekday()
        ]


class OpeningHours(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("thứ"), choices=Weekday.choices)
    opens = models.TimeField(_("mở cửa"))
    closes = models.TimeField(_("đóng cửa"))

    class Meta:
        verbose_name = _("giờ mở cửa")
        verbose_name_plural = _("giờ mở cửa")
        ordering = ["lab", "weekday", "opens"]
        constraints = [
            models.CheckConstraint(condition=Q(closes__gt=F("opens")), name="opening_hours_close_after_open"),
            models.UniqueConstraint(fields=["lab", "weekday", "opens"], name="opening_hours_unique_start"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class MachineType(BilingualName):
    """A kind of machine; the reservation rules and the induction requirement live here."""

    slug = models.SlugField(unique=True, max_length=40)
    requires_induction = models.BooleanField(_("cần hướng dẫn sử dụng"), default=True)
    min_reservation_minutes = models.PositiveIntegerField(_("thời lượng tối thiểu (phút)"), default=30)
    max_reservation_minutes = models.PositiveIntegerField(_("thời lượng tối đa (phút)"), default=240)
    booking_horizon_days = models.PositiveIntegerField(_("đặt trước tối đa (ngày)"), default=14)
    weekly_hours_limit = models.PositiveIntegerField(_("giới hạn giờ mỗi tuần"), default=8)
    # A certification lapses after this many days without using such a machine; empty: never.
    certification_lapse_days = models.PositiveIntegerField(
        _("hiệu lực chứng nhận khi không sử dụng (ngày)"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("loại máy")
        verbose_name_plural = _("loại máy")
        ordering = ["name_vi"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_reservation_minutes__gte=F("min_reservation_minutes"))
                & Q(min_reservation_minutes__gt=0),
                name="machine_type_reservation_length_range",
            ),
        ]


class MachineStatus(models.TextChoices):
    AVAILABLE = "available", _("Sẵn sàng")
    MAINTENANCE = "maintenance", _("Đang bảo trì")
    OUT_OF_ORDER = "out_of_order", _("Hỏng")
    RETIRED = "retired", _("Ngừng sử dụng")


class Machine(models.Model):
    lab = models.ForeignKey(Lab, on_delete=models.PROTECT, related_name="machines", verbose_name=_("phòng lab"))
    machine_type = models.ForeignKey(
        MachineType, on_delete=models.PROTECT, related_name="machines", verbose_name=_("loại máy")
    )
    slug = models.SlugField(max_length=40)
    name = models.CharField(_("tên máy"), max_length=200)
    model_name = models.CharField(_("model"), max_length=200, blank=True)
    status = models.CharField(
        _("trạng thái"), max_length=16, choices=MachineStatus.choices, default=MachineStatus.AVAILABLE
    )
    maintenance_interval_hours = models.PositiveIntegerField(_("chu kỳ bảo trì (giờ chạy)"), default=200)
    # Whether the machine's supply is switched by the service (enable/disable over MQTT).
    has_interlock = models.BooleanField(_("có khóa liên động"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("máy")
        verbose_name_plural = _("máy")
        ordering = ["lab__short_name", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["lab", "slug"], name="machine_unique_slug_per_lab"),
            models.CheckConstraint(
                condition=Q(maintenance_interval_hours__gt=0), name="machine_maintenance_interval_positive"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.lab.short_name})"

    @property
    def topic_prefix(self) -> str:
        return f"fablab/{self.lab.slug}/{self.slug}"


class MaintenanceWindow(models.Model):
    """A period in which a machine cannot be reserved."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="maintenance_windows")
    start = models.DateTimeField(_("bắt đầu"))
    end = models.DateTimeField(_("kết thúc"))
    reason = models.CharField(_("lý do"), max_length=300)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("lịch bảo trì")
        verbose_name_plural = _("lịch bảo trì")
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="maintenance_window_end_after_start"),
        ]
        indexes = [models.Index(fields=["machine", "start", "end"])]

    def __str__(self):
        return f"{self.machine} {self.start:%d/%m/%Y %H:%M}"



class UsageSession(models.Model):
    """A period in which a machine was running, as its telemetry showed.

    Opened by the first `running` state and closed by the next non-running one (or
    a heartbeat timeout). Attributed to the holder of the checked-in reservation that
    covers it, if any: that is what "hours actually used" means in the reports.
    """

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="usage_sessions")
    start = models.DateTimeField(_("bắt đầu"))
    end = models.DateTimeField(_("kết thúc"), null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_sessions"
    )
    reservation = models.ForeignKey(
        "booking.Reservation", on_delete=models.SET_NULL, null=True, blank=True, related_name="usage_sessions"
    )
    job = models.CharField(_("công việc"), max_length=200, blank=True)
    energy_wh = models.FloatField(_("điện năng (Wh)"), default=0)

    class Meta:
        verbose_name = _("phiên sử dụng máy")
        verbose_name_plural = _("phiên sử dụng máy")
        ordering = ["-start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__isnull=True) | Q(end__gte=F("start")),
                                   name="usage_session_end_after_start"),
            # At most one open (running) period per machine.
            models.UniqueConstraint(fields=["machine"], condition=Q(end__isnull=True),
                                    name="usage_session_one_open_per_machine"),
        ]
        indexes = [models.Index(fields=["machine", "start"]), models.Index(fields=["start"])]

    def __str__(self):
        return f"{self.machine} {self.start:%Y-%m-%d %H:%M}"

    @property
    def hours(self) -> float:
        end = self.end or timezone.now()
        return (end - self.start).total_seconds() / 3600


class MachineCommand(models.Model):
    """An enable/disable command sent to a machine over MQTT, and the device's answer."""

    class Action(models.TextChoices):
        ENABLE = "enable", _("Bật")
        DISABLE = "disable", _("Tắt")

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="commands")
    reservation = models.ForeignKey("booking.Reservation", on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="machine_commands")
    command_id = models.CharField(max_length=40, unique=True)
    action = models.CharField(_("lệnh"), max_length=10, choices=Action.choices)
    user_display = models.CharField(_("người dùng"), max_length=150, blank=True)
    until = models.DateTimeField(_("đến"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(_("đã gửi lúc"), null=True, blank=True)
    acked_at = models.DateTimeField(_("thiết bị xác nhận lúc"), null=True, blank=True)
    ack_ok = models.BooleanField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("lệnh điều khiển máy")
        verbose_name_plural = _("lệnh điều khiển máy")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.action} {self.machine} ({self.command_id})"


class MachineCredential(models.Model):
    """A machine's own MQTT login. Only the hash is kept, in Mosquitto's password-file format."""

    machine = models.OneToOneField(Machine, on_delete=models.CASCADE, related_name="credential")
    username = models.CharField(max_length=100, unique=True)
    password_hash = models.CharField(max_length=200)
    rotated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("tài khoản MQTT của máy")
        verbose_name_plural = _("tài khoản MQTT của máy")

    def __str__(self):
        return self.username


class TelemetryMessage(models.Model):
    """One state report of a machine, stored once whatever the redeliveries (machine, boot, seq)."""

    # The biggest, append-only table, written only by the ingest with machine ids it has just read from
    # the registry. A database-checked foreign key cost a third of every insert (a lookup per row at
    # commit) and wedged the ingest on a batch for a machine deleted meanwhile; deleting a machine still
    # deletes its telemetry (Django's cascade). Indexed by (machine, at) and (machine, boot, seq).
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="telemetry", db_index=False,
                                db_constraint=False)
    boot = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    # The time the message is placed at: the device's own clock, unless that is far off.
    at = models.DateTimeField()
    device_ts = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    clock_skewed = models.BooleanField(default=False)
    state = models.CharField(max_length=10)
    power_w = models.FloatField(null=True, blank=True)
    job = models.CharField(max_length=200, blank=True)
    # Protocol 2 counters since the device booted (null: a protocol 1 report, or not measured).
    run_s = models.FloatField(null=True, blank=True)
    energy_wh = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("bản tin trạng thái")
        verbose_name_plural = _("bản tin trạng thái")
        ordering = ["-at"]
        constraints = [
            models.UniqueConstraint(fields=["machine", "boot", "seq"], name="telemetry_once_per_boot_seq"),
        ]
        indexes = [models.Index(fields=["machine", "at"])]

    def __str__(self):
        return f"{self.machine_id} {self.boot}/{self.seq} {self.state}"


class MachineLiveStatus(models.Model):
    """What a machine is doing now, as its telemetry and retained status say."""

    machine = models.OneToOneField(Machine, on_delete=models.CASCADE, related_name="live")
    online = models.BooleanField(_("trực tuyến"), default=False)
    state = models.CharField(_("trạng thái máy"), max_length=10, blank=True)
    power_w = models.FloatField(null=True, blank=True)
    job = models.CharField(max_length=200, blank=True)
    last_seen_at = models.DateTimeField(_("lần cuối"), null=True, blank=True)
    last_state_at = models.DateTimeField(null=True, blank=True)
    boot = models.CharField(max_length=64, blank=True)
    last_seq = models.BigIntegerField(default=0)
    messages = models.PositiveBigIntegerField(default=0)
    # Messages lost in earlier boots; in the current one it is last_seq - boot_messages. Both are
    # order-free (a maximum and a count), so ingest processes sharing the stream agree.
    gaps = models.PositiveBigIntegerField(_("bản tin bị mất"), default=0)
    boot_messages = models.PositiveBigIntegerField(default=0)
    clock_skews = models.PositiveBigIntegerField(_("lệch đồng hồ"), default=0)
    restarts = models.PositiveIntegerField(default=0)
    maintenance_due = models.BooleanField(_("đến hạn bảo trì"), default=False)
    # The highest desired-state version the device says it applied (its `desired_v`, or an ack `ok`).
    desired_applied_v = models.BigIntegerField(_("phiên bản trạng thái mong muốn đã áp dụng"), default=0)

    class Meta:
        verbose_name = _("trạng thái trực tiếp")
        verbose_name_plural = _("trạng thái trực tiếp")

    def __str__(self):
        return f"{self.machine} {'online' if self.online else 'offline'} {self.state}"

    @property
    def lost_messages(self) -> int:
        return min(self.gaps + max(self.last_seq - self.boot_messages, 0), MAX_COUNT)


# Every count derived from reports is capped here: seq is at most 2^53 (the protocol's bound), and
# sums over many boots must still fit a bigint whatever a device sends.
MAX_COUNT = 2**53


class UsageCounter(models.Model):
    """A counter device's latest counters in one boot: the report with the highest `seq` seen so far.

    Usage hours of a protocol 2 device are the differences between its cumulative
    counters, so a report lost in between loses no hours: the next one carries them.
    """

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="usage_counters")
    boot = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    at = models.DateTimeField()
    run_s = models.FloatField()
    energy_wh = models.FloatField(null=True, blank=True)

    class Meta:
        verbose_name = _("bộ đếm sử dụng")
        verbose_name_plural = _("bộ đếm sử dụng")
        constraints = [models.UniqueConstraint(fields=["machine", "boot"], name="usage_counter_once_per_boot")]

    def __str__(self):
        return f"{self.machine_id} {self.boot}/{self.seq} {self.run_s:.0f} s"


class IngestHealth(models.Model):
    """One ingest replica's figures, written in the same transaction as each batch it commits."""

    client_id = models.CharField(max_length=100, unique=True)
    stored = models.PositiveBigIntegerField(default=0)
    duplicates = models.PositiveBigIntegerField(default=0)
    quarantined = models.JSONField(default=dict)  # {reason: count}
    last_commit_at = models.DateTimeField(null=True, blank=True)
    # The receive time of the newest report this replica stored: lag = now - it.
    newest_received_at = models.DateTimeField(null=True, blank=True)
    # Written by the process every half minute whatever the traffic: a replica that stopped
    # (or cannot reach the database) shows an old one.
    alive_at = models.DateTimeField(null=True, blank=True)
    queued = models.PositiveIntegerField(default=0)  # received, not yet committed, at alive_at

    class Meta:
        verbose_name = _("tình trạng tiến trình nhận dữ liệu")
        verbose_name_plural = _("tình trạng tiến trình nhận dữ liệu")
        ordering = ["client_id"]

    def __str__(self):
        return self.client_id


class MachineUsageDay(models.Model):
    """Running time of a machine on one local day: the roll-up reports read instead of raw telemetry."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="usage_days")
    day = models.DateField()
    running_seconds = models.FloatField(default=0)
    energy_wh = models.FloatField(default=0)

    class Meta:
        verbose_name = _("giờ sử dụng theo ngày")
        verbose_name_plural = _("giờ sử dụng theo ngày")
        constraints = [models.UniqueConstraint(fields=["machine", "day"], name="usage_day_unique")]
        indexes = [models.Index(fields=["day"])]

    def __str__(self):
        return f"{self.machine_id} {self.day} {self.running_seconds / 3600:.2f} h"


class QuarantinedMessage(models.Model):
    """An MQTT message the ingest refused, kept for a technician to inspect."""

    received_at = models.DateTimeField(db_index=True)
    topic = models.CharField(max_length=300)
    payload = models.TextField(blank=True)
    payload_size = models.PositiveIntegerField()
    reason = models.CharField(max_length=40, db_index=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("bản tin bị từ chối")
        verbose_name_plural = _("bản tin bị từ chối")
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.reason} {self.topic}"


class MaintenanceLog(models.Model):
    """Maintenance done on a machine; it resets the running-hours counter."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="maintenance_logs")
    done_at = models.DateTimeField(_("thực hiện lúc"))
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                           related_name="+")
    note = models.CharField(_("ghi chú"), max_length=300)
    running_hours = models.FloatField(_("giờ chạy trước bảo trì"), default=0)

    class Meta:
        verbose_name = _("nhật ký bảo trì")
        verbose_name_plural = _("nhật ký bảo trì")
        ordering = ["-done_at"]

    def __str__(self):
        return f"{self.machine} {self.done_at:%d/%m/%Y}"


class AlertKind(models.TextChoices):
    UNAUTHORISED_USE = "unauthorised_use", _("Máy chạy khi không có người check-in")
    ERROR = "error", _("Máy báo lỗi")
    OFFLINE = "offline", _("Máy mất kết nối")
    MAINTENANCE_DUE = "maintenance_due", _("Đến hạn bảo trì")


class MachineAlert(models.Model):
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(_("loại cảnh báo"), max_length=20, choices=AlertKind.choices)
    raised_at = models.DateTimeField(_("lúc"))
    detail = models.CharField(_("chi tiết"), max_length=300, blank=True)
    resolved_at = models.DateTimeField(_("đã xử lý lúc"), null=True, blank=True)
    # A technician saw it and says what is being done; the alert stays open until resolved.
    acknowledged_at = models.DateTimeField(_("đã tiếp nhận lúc"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="+", verbose_name=_("người tiếp nhận"))
    acknowledgement_note = models.CharField(_("ghi chú tiếp nhận"), max_length=300, blank=True)
    # Who resolved it by hand (empty when the telemetry cleared it) and how.
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+", verbose_name=_("người xử lý"))
    resolution_note = models.CharField(_("ghi chú xử lý"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("cảnh báo máy")
        verbose_name_plural = _("cảnh báo máy")
        ordering = ["-raised_at"]
        constraints = [
            # One open alert of a kind per machine: repeated reports do not pile up.
            models.UniqueConstraint(fields=["machine", "kind"], condition=Q(resolved_at__isnull=True),
                                    name="machine_alert_one_open_per_kind"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} — {self.machine}"
