from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from fablab_ops.booking.tickets import new_ticket_code


class CourseKind(models.TextChoices):
    ARDUINO = "arduino", _("Lập trình Arduino ứng dụng")
    INDUCTION = "induction", _("Hướng dẫn sử dụng thiết bị")
    SUMMER = "summer", _("Chương trình sáng tạo mùa hè")
    OTHER = "other", _("Khác")


class Course(models.Model):
    """What is taught; its sittings are `Session`s."""

    kind = models.CharField(_("loại khóa học"), max_length=16, choices=CourseKind.choices)
    slug = models.SlugField(unique=True, max_length=80)
    title_vi = models.CharField(_("tên khóa học (tiếng Việt)"), max_length=200)
    title_en = models.CharField(_("tên khóa học (tiếng Anh)"), max_length=200, blank=True)
    description = models.TextField(_("mô tả (tiếng Việt)"), blank=True)
    description_en = models.TextField(_("mô tả (tiếng Anh)"), blank=True)
    prerequisites = models.TextField(_("yêu cầu đầu vào (tiếng Việt)"), blank=True)
    prerequisites_en = models.TextField(_("yêu cầu đầu vào (tiếng Anh)"), blank=True)
    what_to_bring = models.TextField(_("cần mang theo (tiếng Việt)"), blank=True)
    what_to_bring_en = models.TextField(_("cần mang theo (tiếng Anh)"), blank=True)
    instructor = models.CharField(_("giảng viên"), max_length=150, blank=True)
    # Empty lab: the course is held online (e.g. the summer programme during an epidemic).
    lab = models.ForeignKey(
        "machines.Lab", on_delete=models.PROTECT, null=True, blank=True, related_name="courses",
        verbose_name=_("phòng lab"),
    )
    # Passing an induction (marked by its trainer after the session) certifies for this machine type.
    certifies = models.ForeignKey(
        "machines.MachineType", on_delete=models.PROTECT, null=True, blank=True, related_name="inductions",
        verbose_name=_("cấp quyền sử dụng loại máy"),
    )
    default_capacity = models.PositiveIntegerField(_("số chỗ mặc định"), default=20)
    min_capacity = models.PositiveIntegerField(_("số chỗ tối thiểu"), default=1)
    max_capacity = models.PositiveIntegerField(_("số chỗ tối đa"), default=20)
    # Below this many confirmed learners at the decision time, a session is cancelled.
    min_learners = models.PositiveIntegerField(_("số học viên tối thiểu để mở lớp"), default=0)
    decision_hours_before = models.PositiveIntegerField(_("quyết định mở lớp trước (giờ)"), default=48)
    is_published = models.BooleanField(_("công khai"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("khóa học")
        verbose_name_plural = _("khóa học")
        ordering = ["title_vi"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_capacity__gte=1)
                & Q(min_capacity__lte=F("default_capacity"))
                & Q(default_capacity__lte=F("max_capacity")),
                name="course_capacity_within_range",
            ),
            models.CheckConstraint(
                condition=Q(certifies__isnull=True) | Q(kind="induction"),
                name="course_only_inductions_certify",
            ),
        ]

    def __str__(self):
        return self.title_vi

    def _in_language(self, vietnamese: str, english: str) -> str:
        from django.utils.translation import get_language

        if (get_language() or "vi").startswith("en") and english:
            return english
        return vietnamese

    @property
    def title(self) -> str:
        return self._in_language(self.title_vi, self.title_en)

    @property
    def localized_description(self) -> str:
        return self._in_language(self.description, self.description_en)

    @property
    def localized_prerequisites(self) -> str:
        return self._in_language(self.prerequisites, self.prerequisites_en)

    @property
    def localized_what_to_bring(self) -> str:
        return self._in_language(self.what_to_bring, self.what_to_bring_en)


class SessionSeries(models.Model):
    """Sessions scheduled together from an RFC 5545 recurrence rule.

    The rule is expanded with dateutil in local time (Asia/Ho_Chi_Minh has no
    daylight saving, so a local wall-clock time is unambiguous). Sessions keep a
    link to their series so the rest of a series can be changed from a date on.
    """

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="series")
    rule = models.CharField(_("quy tắc lặp (RRULE)"), max_length=300)
    first_date = models.DateField(_("ngày bắt đầu"))
    start_time = models.TimeField(_("giờ bắt đầu"))
    end_time = models.TimeField(_("giờ kết thúc"))
    exception_dates = models.JSONField(_("ngày nghỉ"), default=list, blank=True)
    capacity = models.PositiveIntegerField(_("số chỗ"))
    lab = models.ForeignKey("machines.Lab", on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                            verbose_name=_("phòng lab"))
    place = models.CharField(_("địa điểm / đường dẫn"), max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("chuỗi buổi học")
        verbose_name_plural = _("chuỗi buổi học")
        ordering = ["-first_date"]
        constraints = [
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")), name="series_end_after_start"),
        ]

    def __str__(self):
        return f"{self.course} — {self.rule}"


class SessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Đã lên lịch")
    CANCELLED = "cancelled", _("Đã hủy")


class Session(models.Model):
    """One sitting of a course (buổi học)."""

    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="sessions")
    series = models.ForeignKey(SessionSeries, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="sessions")
    # Edited on its own: later changes to the series leave it alone.
    detached = models.BooleanField(_("tách khỏi chuỗi"), default=False)
    start = models.DateTimeField(_("bắt đầu"))
    end = models.DateTimeField(_("kết thúc"))
    capacity = models.PositiveIntegerField(_("số chỗ"))
    # Where it happens: a lab, or online when `lab` is empty.
    lab = models.ForeignKey(
        "machines.Lab", on_delete=models.PROTECT, null=True, blank=True, related_name="sessions",
        verbose_name=_("phòng lab"),
    )
    place = models.CharField(_("địa điểm / đường dẫn"), max_length=300, blank=True)
    status = models.CharField(
        _("trạng thái"), max_length=16, choices=SessionStatus.choices, default=SessionStatus.SCHEDULED
    )
    cancel_reason = models.CharField(_("lý do hủy"), max_length=300, blank=True)
    # The longest the waiting list has been: demand the reports show.
    peak_waitlist = models.PositiveIntegerField(_("danh sách chờ dài nhất"), default=0)
    cancelled_at = models.DateTimeField(_("hủy lúc"), null=True, blank=True)
    # When the course's minimum number of learners was checked; checked once.
    minimum_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("buổi học")
        verbose_name_plural = _("buổi học")
        ordering = ["start"]
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="session_end_after_start"),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="session_capacity_positive"),
        ]
        indexes = [models.Index(fields=["start"]), models.Index(fields=["lab", "start"])]

    def __str__(self):
        from django.utils import timezone

        return f"{self.course} — {timezone.localtime(self.start):%d/%m/%Y %H:%M}"

    @property
    def is_online(self) -> bool:
        return self.lab_id is None

    def clean(self):
        from django.core.exceptions import ValidationError

        if not self.course_id:
            return
        course = self.course
        if self.capacity is not None and not course.min_capacity <= self.capacity <= course.max_capacity:
            raise ValidationError(
                {"capacity": _("Số chỗ phải từ %(low)d đến %(high)d.")
                 % {"low": course.min_capacity, "high": course.max_capacity}}
            )


class SeatStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("Đã xác nhận")
    WAITLISTED = "waitlisted", _("Trong danh sách chờ")
    CANCELLED = "cancelled", _("Đã hủy")
    ATTENDED = "attended", _("Đã tham gia")
    NO_SHOW = "no_show", _("Vắng mặt")


class InductionResult(models.TextChoices):
    PASSED = "passed", _("Đạt")
    NOT_PASSED = "not_passed", _("Chưa đạt")


# Statuses that hold a seat in the session.
SEAT_HOLDING = (SeatStatus.CONFIRMED, SeatStatus.ATTENDED, SeatStatus.NO_SHOW)


class SeatBooking(models.Model):
    # Neither key has an index of its own: the (session, status) and (learner, status) indexes below serve every
    # lookup by either, and each index more is written at every booking and every change of its status.
    session = models.ForeignKey(Session, on_delete=models.PROTECT, related_name="bookings", db_index=False)
    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="seat_bookings",
                                db_index=False)
    status = models.CharField(_("trạng thái"), max_length=16, choices=SeatStatus.choices)
    # The booking's number in its waiting list's order while waitlisted (smaller is ahead; nobody is renumbered
    # when someone leaves: the place shown is counted, see courses.services.waiting_place); empty otherwise.
    waitlist_position = models.PositiveIntegerField(_("vị trí chờ"), null=True, blank=True)
    # A freed seat offered to a waitlisted learner is held for them until this time.
    offer_expires_at = models.DateTimeField(_("giữ chỗ đến"), null=True, blank=True)
    # The random part of the QR ticket; rotating it invalidates a leaked ticket. Unique by a constraint (below)
    # rather than `unique=True`, which on PostgreSQL adds a second index for LIKE that no lookup uses.
    ticket_code = models.CharField(max_length=32, default=new_ticket_code, editable=False)
    created_at = models.DateTimeField(_("đăng ký lúc"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    confirmed_at = models.DateTimeField(_("xác nhận lúc"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("hủy lúc"), null=True, blank=True)
    checked_in_at = models.DateTimeField(_("check-in lúc"), null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # An induction's outcome for this attendee, marked by its trainer after the session; passing certifies.
    induction_result = models.CharField(_("kết quả hướng dẫn"), max_length=16, choices=InductionResult.choices,
                                        blank=True)
    induction_marked_at = models.DateTimeField(_("đánh giá lúc"), null=True, blank=True)
    induction_marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("người đánh giá"),
    )
    induction_note = models.CharField(_("nhận xét"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("đăng ký chỗ")
        verbose_name_plural = _("đăng ký chỗ")
        ordering = ["session", "created_at"]
        constraints = [
            # One live booking per learner per session; cancelled ones stay as history.
            models.UniqueConstraint(
                fields=["session", "learner"], condition=~Q(status="cancelled"),
                name="seat_booking_one_per_learner",
            ),
            models.UniqueConstraint(
                fields=["session", "waitlist_position"], condition=Q(status="waitlisted"),
                name="seat_booking_unique_waitlist_position",
            ),
            models.UniqueConstraint(fields=["ticket_code"], name="seat_booking_ticket_code_unique"),
            models.CheckConstraint(
                condition=(Q(status="waitlisted") & Q(waitlist_position__gte=1))
                | (~Q(status="waitlisted") & Q(waitlist_position__isnull=True)),
                name="seat_booking_position_only_when_waitlisted",
            ),
        ]
        indexes = [models.Index(fields=["session", "status"]), models.Index(fields=["learner", "status"])]

    def __str__(self):
        return f"{self.learner} — {self.session} ({self.get_status_display()})"


class SessionMessage(models.Model):
    """A message a coordinator sent to the learners of a session; each learner gets it once."""

    # The form's own key: a double click or a resubmitted form sends the message once.
    key = models.UUIDField(unique=True)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="messages")
    subject = models.CharField(_("tiêu đề"), max_length=150)
    body = models.TextField(_("nội dung"))
    include_waitlist = models.BooleanField(_("gửi cả danh sách chờ"), default=False)
    recipients = models.PositiveIntegerField(_("số người nhận"), default=0)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+",
                                verbose_name=_("người gửi"))
    sent_at = models.DateTimeField(_("gửi lúc"))

    class Meta:
        verbose_name = _("tin nhắn cho học viên")
        verbose_name_plural = _("tin nhắn cho học viên")
        ordering = ["-sent_at"]

    def __str__(self):
        return f"{self.session} — {self.subject}"
