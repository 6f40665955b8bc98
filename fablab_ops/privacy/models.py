"""What the service records about personal data itself: consents, children's guardians, staff access.

Law 91/2025/QH15 and Decree 356/2025/NĐ-CP ask for consent per purpose, kept with
the text it answered; a child's data (under 16) needs a parent's or guardian's
consent, and the child's own from age 7; and the controller must be able to show
who looked at a person's data.
"""

import os
import secrets

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.utils.translation import gettext_lazy as _


class Purpose(models.TextChoices):
    # Required: without it there is no service to give.
    BOOKINGS = "bookings", _("Đăng ký lớp, đặt máy, check-in và chứng nhận sử dụng máy")
    # Optional: e-mails beyond the essential (reminders before a class, a certification about to lapse).
    REMINDERS = "reminders", _("Email nhắc lịch và nhắc chứng nhận sắp hết hạn")


REQUIRED_PURPOSES = (Purpose.BOOKINGS,)


class Channel(models.TextChoices):
    SIGNUP = "signup", _("Đăng ký trên web")
    PROFILE = "profile", _("Trang hồ sơ")
    SCHOOL = "school", _("Trường đăng ký")
    GUARDIAN = "guardian", _("Phụ huynh hoặc người giám hộ")
    ERASURE = "erasure", _("Xóa dữ liệu")
    LOGIN = "login", _("Khi đăng nhập")
    RETENTION = "retention", _("Hết thời hạn lưu trữ")


class Consent(models.Model):
    """One decision about one purpose: given or withdrawn, with the notice version it answered.

    The rows are the history; the latest row per purpose is the person's current choice.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="consents")
    purpose = models.CharField(_("mục đích"), max_length=20, choices=Purpose.choices)
    granted = models.BooleanField(_("đồng ý"))
    notice_version = models.CharField(_("phiên bản thông báo"), max_length=20)
    at = models.DateTimeField(_("lúc"))
    channel = models.CharField(_("kênh"), max_length=12, choices=Channel.choices)
    # Given by a parent or guardian for a child (the child's own agreement is on PersonalData).
    by_guardian = models.BooleanField(_("do người giám hộ"), default=False)

    class Meta:
        verbose_name = _("sự đồng ý")
        verbose_name_plural = _("sự đồng ý")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["user", "purpose", "-at"])]

    def __str__(self):
        return f"{self.get_purpose_display()}: {'+' if self.granted else '−'} ({self.notice_version})"


class PrivateFiles(FileSystemStorage):
    """Where scanned consent documents are kept: PRIVATE_MEDIA_ROOT, outside MEDIA_ROOT, with no URL at all
    (a coordinator reads a scan through a view that asks the policy)."""

    @property
    def base_location(self):
        return str(settings.PRIVATE_MEDIA_ROOT)

    @property
    def location(self):
        return os.path.abspath(self.base_location)

    @property
    def base_url(self):
        return None


def private_files():
    return PrivateFiles()


class SchoolConsent(models.Model):
    """A school's written consent for a class of its pupils: the document, who signed it, for which purposes."""

    school = models.CharField(_("trường"), max_length=200)
    reference = models.CharField(_("số văn bản"), max_length=100)
    document_date = models.DateField(_("ngày văn bản"))
    signatory = models.CharField(_("người ký"), max_length=150)
    purposes = models.JSONField(_("mục đích"), default=list)
    scan = models.FileField(_("bản scan"), storage=private_files, upload_to="school-consents/%Y/%m/", blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                    related_name="+", verbose_name=_("người ghi nhận"))
    recorded_at = models.DateTimeField(_("ghi nhận lúc"))

    class Meta:
        verbose_name = _("văn bản đồng ý của trường")
        verbose_name_plural = _("văn bản đồng ý của trường")
        ordering = ["-recorded_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["school", "reference"], name="school_consent_once")]

    def __str__(self):
        return f"{self.school} — {self.reference} ({self.document_date:%d/%m/%Y})"


def new_guardian_key() -> str:
    return secrets.token_urlsafe(16)


class PersonalData(models.Model):
    """What the law asks us to know about a learner beyond the account: age, guardian, erasure."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personal_data")
    date_of_birth = models.DateField(_("ngày sinh"), null=True, blank=True)
    # The child's own agreement (from age 7), ticked at sign-up.
    child_agreed_at = models.DateTimeField(_("trẻ đồng ý lúc"), null=True, blank=True)
    guardian_name = models.CharField(_("họ tên người giám hộ"), max_length=150, blank=True)
    guardian_email = models.EmailField(_("email người giám hộ"), blank=True)
    guardian_relation = models.CharField(_("quan hệ"), max_length=40, blank=True)
    # The secret in the guardian's link; rotated (voiding the link) when the data is erased.
    guardian_key = models.CharField(max_length=32, default=new_guardian_key, editable=False)
    guardian_asked_at = models.DateTimeField(_("đã gửi cho người giám hộ lúc"), null=True, blank=True)
    guardian_confirmed_at = models.DateTimeField(_("người giám hộ xác nhận lúc"), null=True, blank=True)
    guardian_withdrawn_at = models.DateTimeField(_("người giám hộ rút lại lúc"), null=True, blank=True)
    erased_at = models.DateTimeField(_("đã xóa dữ liệu lúc"), null=True, blank=True)
    # A pupil registered by their school: the school's written consent, and the pupil's class.
    school_consent = models.ForeignKey(SchoolConsent, on_delete=models.PROTECT, null=True, blank=True,
                                       related_name="pupils", verbose_name=_("văn bản đồng ý của trường"))
    school_class = models.CharField(_("lớp"), max_length=40, blank=True)
    # The retention job told the person their inactive account will be anonymised (cleared on activity).
    inactivity_warned_at = models.DateTimeField(_("đã báo sắp ẩn danh lúc"), null=True, blank=True)

    class Meta:
        verbose_name = _("dữ liệu cá nhân")
        verbose_name_plural = _("dữ liệu cá nhân")

    def __str__(self):
        return f"#{self.user_id}"


class AccessKind(models.TextChoices):
    ROSTER_CONTACTS = "roster_contacts", _("Danh sách lớp kèm email và số điện thoại")
    EXPORT = "export", _("Bản xuất toàn bộ dữ liệu")
    PROFILE = "profile", _("Hồ sơ cá nhân")
    ERASURE = "erasure", _("Xóa dữ liệu theo yêu cầu")


class AccessLogEntry(models.Model):
    """A member of staff saw a learner's personal data: who, whom, when, what."""

    at = models.DateTimeField(_("lúc"), db_index=True)
    viewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               related_name="+", verbose_name=_("người xem"))
    subject = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="access_log", verbose_name=_("người được xem"))
    what = models.CharField(_("dữ liệu"), max_length=20, choices=AccessKind.choices)
    # Where: the page or object (e.g. "session 42"), never the data itself.
    context = models.CharField(_("ở đâu"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("lượt xem dữ liệu cá nhân")
        verbose_name_plural = _("nhật ký xem dữ liệu cá nhân")
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["subject", "-at"])]

    def __str__(self):
        return f"{self.viewer_id} → {self.subject_id} ({self.what})"
