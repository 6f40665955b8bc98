import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    LEARNER = "learner", _("Học viên")
    TECHNICIAN = "technician", _("Kỹ thuật viên")
    COORDINATOR = "coordinator", _("Điều phối viên")
    ADMIN = "admin", _("Quản trị viên")


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("role", Role.LEARNER)
        return self._create(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields.update(role=Role.ADMIN, is_staff=True, is_superuser=True)
        # Whoever runs createsuperuser owns the address they type.
        fields.setdefault("email_verified_at", timezone.now())
        return self._create(email, password, **fields)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


def new_feed_secret() -> str:
    return secrets.token_urlsafe(24)


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone who signs in: learners, technicians, coordinators and administrators.

    Technicians are scoped to the labs they staff (`machines.Lab.technicians`);
    coordinators and administrators see the whole network.
    """

    email = models.EmailField(_("email"), unique=True)
    full_name = models.CharField(_("họ và tên"), max_length=150)
    phone = models.CharField(_("số điện thoại"), max_length=20, blank=True)
    organisation = models.CharField(_("trường hoặc tổ chức"), max_length=200, blank=True)
    role = models.CharField(_("vai trò"), max_length=16, choices=Role.choices, default=Role.LEARNER)
    language = models.CharField(
        _("ngôn ngữ"), max_length=5, choices=[("vi", "Tiếng Việt"), ("en", "English")], default="vi"
    )
    # The secret in a learner's personal calendar feed URL; rotating it revokes old subscriptions.
    feed_secret = models.CharField(max_length=64, unique=True, default=new_feed_secret, editable=False)
    is_active = models.BooleanField(_("đang hoạt động"), default=True)
    is_staff = models.BooleanField(_("vào trang quản trị"), default=False)
    date_joined = models.DateTimeField(_("ngày tham gia"), default=timezone.now, editable=False)
    # Set when the person followed a link mailed to `email`; until then they may browse but not book.
    email_verified_at = models.DateTimeField(_("email xác nhận lúc"), null=True, blank=True, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        verbose_name = _("người dùng")
        verbose_name_plural = _("người dùng")
        ordering = ["full_name", "email"]
        indexes = [models.Index(fields=["role"]), models.Index(fields=["phone"])]

    def __str__(self):
        return f"{self.full_name} <{self.email}>" if self.full_name else self.email

    def get_full_name(self):
        return self.full_name

    def save(self, *args, **kwargs):
        # `_password` is set by set_password() until the next save, and not by the hash upgrade at login:
        # a new password also ends what the old calendar-feed address shared.
        if self._password is not None:
            self.feed_secret = new_feed_secret()
            update_fields = kwargs.get("update_fields")
            if update_fields is not None and "password" in update_fields:
                kwargs["update_fields"] = {*update_fields, "feed_secret"}
        super().save(*args, **kwargs)

    def get_short_name(self):
        return self.full_name.split()[-1] if self.full_name else self.email

    @property
    def is_coordinator(self) -> bool:
        return self.role in (Role.COORDINATOR, Role.ADMIN) or self.is_superuser

    @property
    def is_technician(self) -> bool:
        return self.role == Role.TECHNICIAN

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class ApiToken(models.Model):
    """A bearer token for devices and integrations, separate from browser sessions.

    Only a SHA-256 digest is stored; the token itself is shown once on creation
    (`accounts.services.issue_token`, used by the tokens page and the admin). The
    database refuses a row without a digest: such a token could never be used.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("tên"), max_length=100)
    prefix = models.CharField(max_length=8, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("khóa API")
        verbose_name_plural = _("khóa API")
        constraints = [
            models.CheckConstraint(condition=Exact(Length("digest"), 64), name="apitoken_digest_is_sha256"),
        ]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str) -> tuple["ApiToken", str]:
        token = "fo_" + secrets.token_urlsafe(32)
        return cls.objects.create(user=user, name=name, prefix=token[:8], digest=cls.hash(token)), token


class NotificationState(models.TextChoices):
    DUE = "due", _("Chờ gửi")
    SENDING = "sending", _("Đang gửi")
    SENT = "sent", _("Đã gửi")
    FAILED = "failed", _("Gửi thất bại")


class Notification(models.Model):
    """A message to one user: the outbox entry of its e-mail, written in the business transaction.

    `dedup_key` makes each notification happen once: a retried task, a beat job
    that runs twice or a repeated state change finds the existing row. The relay
    (`fablab_ops.notifications`) claims a due row for a lease, sends it outside any
    transaction with the row's own Message-ID, and records the outcome: sent, due
    again later (back-off) or failed for staff to retry.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(_("loại"), max_length=60)
    dedup_key = models.CharField(max_length=200, unique=True)
    subject = models.CharField(_("tiêu đề"), max_length=300)
    body = models.TextField(_("nội dung"))
    # What the worker renders the e-mail from (references to the rows it is about); subject and body stay
    # empty until then, so nothing is rendered inside the business transaction.
    context = models.JSONField(null=True, blank=True, editable=False)
    # An attachment stored with the row (the monthly report), so a resend is the same e-mail.
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_type = models.CharField(max_length=100, blank=True)
    attachment = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(_("trạng thái"), max_length=16, choices=NotificationState.choices,
                             default=NotificationState.DUE)
    next_attempt_at = models.DateTimeField(_("lần gửi tới"), default=timezone.now)
    # While `sending`, the row belongs to one worker until then; after it, the row is due again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("đã gửi lúc"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("số lần gửi"), default=0)
    last_error = models.CharField(_("lỗi gần nhất"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("thông báo")
        verbose_name_plural = _("thông báo")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user", "-created_at"]),
            models.Index(fields=["kind"]),
            models.Index(fields=["next_attempt_at"], condition=models.Q(state="due"), name="notification_due"),
            models.Index(fields=["claimed_until"], condition=models.Q(state="sending"), name="notification_sending"),
        ]

    def __str__(self):
        return f"{self.kind} → {self.user}"

    @property
    def message_id(self) -> str:
        """The e-mail's Message-ID, derived from the row: a resend carries the same one."""
        from email.utils import parseaddr

        from django.conf import settings

        domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "fablab.localhost"
        digest = hashlib.sha256(self.dedup_key.encode()).hexdigest()[:16]
        return f"<notification-{self.pk}-{digest}@{domain}>"
