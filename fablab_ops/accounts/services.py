"""Accounts: sign-up, e-mail verification, the learner's own profile and secrets (calendar feed, API tokens).

Views and the admin only translate: the rules live here and refuse with domain
errors (`fablab_ops/errors.py`). Other apps ask here whether a person may book
(`require_verified_email`); accounts imports none of them.

Links mailed to prove an address (verification, change of address) are signed and
time-limited (`django.core.signing`), and carry the address they are about: once
the account's address is another, the link is void. They are sent at once, after
the change is committed, and never stored: a `Notification` row would keep a
working secret readable in the admin.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core import signing
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from fablab_ops.accounts import hooks
from fablab_ops.accounts.models import ApiToken, Role, User, new_feed_secret
from fablab_ops.errors import Conflict, DomainError, NotFound, PermissionDenied

logger = logging.getLogger(__name__)

VERIFY_SALT = "fablab_ops.accounts.verify-email"
EMAIL_CHANGE_SALT = "fablab_ops.accounts.change-email"
VERIFY_LINK_MAX_AGE = timedelta(days=7)
EMAIL_CHANGE_LINK_MAX_AGE = timedelta(hours=24)

# Enough for a phone, a laptop and a few integrations; more is usually forgotten tokens.
MAX_ACTIVE_TOKENS = 10


def register_learner(*, email: str, password: str, full_name: str, phone: str = "", language: str = "vi",
                     date_of_birth=None, consent_reminders: bool = False, child_agrees: bool = False,
                     guardian: dict | None = None, **_consents) -> User:
    """A new learner account, not yet verified; the verification link is mailed once the account is stored.

    What the sign-up form asked besides the account (date of birth, consents, a child's guardian) is recorded
    by the layer that owns it (`accounts.hooks`, registered by `fablab_ops.privacy`), in the same transaction.
    """
    fields = {"date_of_birth": date_of_birth, "consent_reminders": consent_reminders,
              "child_agrees": child_agrees, "guardian": guardian or {}}
    email = User.objects.normalize_email(email).lower()
    with transaction.atomic():
        if User.objects.filter(email__iexact=email).exists():
            raise Conflict(_("Email này đã được đăng ký."), code="email_taken")
        user = User(email=email, full_name=full_name.strip(), phone=phone.strip(), role=Role.LEARNER,
                    language=language)
        validate_password(password, user)
        user.set_password(password)
        user.save()
        after_commit = [then for then in hooks.call("signup_recorded", user, fields) if then is not None]
    send_verification(user)
    for then in after_commit:
        then()
    return user


def normalise_email(email: str) -> str:
    return User.objects.normalize_email((email or "").strip()).lower()


# --- mail that proves an address ---------------------------------------------------

def _send(template: str, to_email: str, language: str, context: dict) -> None:
    send_now(f"accounts/email/{template}.txt", to_email, language, context)


def send_now(template: str, to_email: str, language: str, context: dict) -> None:
    """Render `template` (first line the subject) in `language` and send it now: for mail that proves an
    address (a link to follow), which goes to an address no account may hold yet, so not through the outbox."""
    with translation.override(language or "vi"):
        text = render_to_string(template, context).strip()
    subject, _sep, body = text.partition("\n")
    try:
        send_mail(subject.strip(), body.strip() + "\n", settings.DEFAULT_FROM_EMAIL, [to_email])
    except OSError:
        # Like Django's password reset: the page still answers; the person can ask again.
        logger.exception("could not send %s mail to user", template)


class LinkRefused(DomainError):
    """A mailed link that is forged, expired or about an address the account no longer has."""

    status = 400


def _read_link(token: str, *, salt: str, max_age: timedelta, expired: str, invalid: str) -> dict:
    try:
        return signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired as error:
        raise LinkRefused(expired, code="link_expired") from error
    except signing.BadSignature as error:
        raise LinkRefused(invalid, code="link_invalid") from error


# --- e-mail verification ---------------------------------------------------------

def require_verified_email(user) -> None:
    """Booking a seat or reserving a machine asks here first: browsing is free, booking needs a proven address,
    and what the layers above ask (`require_booking_consent`)."""
    if not getattr(user, "email_verified_at", None):
        raise PermissionDenied(
            _("Hãy xác nhận email của bạn trước khi đăng ký lớp hoặc đặt máy: mở liên kết chúng tôi đã gửi tới "
              "%(email)s, hoặc gửi lại email xác nhận.") % {"email": user.email},
            code="email_unverified",
        )
    require_booking_consent(user)


def require_booking_consent(user) -> None:
    """What the layers above accounts ask before a booking (`booking_check` hooks: a child's guardian, a
    consent not yet given); each refuses with a `PermissionDenied`."""
    hooks.call("booking_check", user)


def send_verification(user) -> bool:
    """Mail a link that proves `user.email`; False when there is nothing to prove."""
    if user.email_verified_at is not None:
        return False
    token = signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT)
    _send("verify_email", user.email, user.language,
          {"user": user, "token": token, "days": VERIFY_LINK_MAX_AGE.days})
    return True


def mark_email_verified(user, *, now: datetime | None = None) -> None:
    if user.email_verified_at is None:
        user.email_verified_at = now or timezone.now()
        User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(
            email_verified_at=user.email_verified_at)


def verify_email(token: str, *, now: datetime | None = None) -> User:
    """Follow a verification link: the account whose address it names is verified (again: no harm)."""
    data = _read_link(token, salt=VERIFY_SALT, max_age=VERIFY_LINK_MAX_AGE,
                      expired=_("Liên kết xác nhận đã hết hạn."),
                      invalid=_("Liên kết xác nhận không hợp lệ."))
    user = User.objects.filter(pk=data.get("u"), email__iexact=data.get("e", ""), is_active=True).first()
    if user is None:
        raise LinkRefused(_("Liên kết xác nhận không hợp lệ."), code="link_invalid")
    mark_email_verified(user, now=now)
    return user


# --- profile -------------------------------------------------------------------

def update_profile(user, *, full_name: str, phone: str, organisation: str, language: str) -> User:
    full_name = " ".join((full_name or "").split())
    if not full_name:
        raise DomainError(_("Hãy nhập họ và tên."), code="name_required")
    if language not in dict(User._meta.get_field("language").choices):
        raise DomainError(_("Ngôn ngữ không được hỗ trợ."), code="invalid_language")
    user.full_name, user.phone, user.language = full_name, phone.strip(), language
    user.organisation = " ".join((organisation or "").split())
    user.save(update_fields=["full_name", "phone", "organisation", "language"])
    return user


# --- change of e-mail address -------------------------------------------------------

@dataclass(frozen=True)
class EmailChange:
    user: User
    old_email: str
    new_email: str


def request_email_change(user, new_email: str) -> str:
    """Mail a confirmation link to the new address; nothing changes until it is followed.

    The caller has checked the person's password (the form does, through the throttled login backend).
    """
    new_email = normalise_email(new_email)
    if new_email == user.email.lower():
        raise DomainError(_("Đây đã là email của bạn."), code="same_email")
    if User.objects.filter(email__iexact=new_email).exclude(pk=user.pk).exists():
        raise Conflict(_("Email này đã được đăng ký."), code="email_taken")
    token = signing.dumps({"u": user.pk, "old": user.email, "new": new_email}, salt=EMAIL_CHANGE_SALT)
    _send("confirm_email_change", new_email, user.language, {
        "user": user, "new_email": new_email, "token": token,
        "hours": int(EMAIL_CHANGE_LINK_MAX_AGE.total_seconds() // 3600),
    })
    return new_email


def read_email_change(token: str) -> EmailChange:
    """What a change-of-address link would do, or why it cannot."""
    data = _read_link(token, salt=EMAIL_CHANGE_SALT, max_age=EMAIL_CHANGE_LINK_MAX_AGE,
                      expired=_("Liên kết đổi email đã hết hạn. Hãy yêu cầu đổi lại từ trang hồ sơ."),
                      invalid=_("Liên kết đổi email không hợp lệ."))
    user = User.objects.filter(pk=data.get("u"), is_active=True).first()
    if user is None or user.email != data.get("old"):
        # Used already, or the address changed since: the link speaks of an address the account no longer has.
        raise LinkRefused(_("Liên kết đổi email này đã được dùng hoặc không còn đúng."), code="link_used")
    new_email = data.get("new", "")
    if User.objects.filter(email__iexact=new_email).exclude(pk=user.pk).exists():
        raise LinkRefused(_("Email này đã được đăng ký."), code="email_taken")
    return EmailChange(user=user, old_email=user.email, new_email=new_email)


def confirm_email_change(token: str, *, now: datetime | None = None) -> EmailChange:
    """Follow the link: the address changes (and counts as verified), and the old address is told."""
    change = read_email_change(token)
    try:
        with transaction.atomic():
            user = User.objects.select_for_update().get(pk=change.user.pk)
            if user.email != change.old_email:
                raise LinkRefused(_("Liên kết đổi email này đã được dùng hoặc không còn đúng."), code="link_used")
            user.email = change.new_email
            user.email_verified_at = now or timezone.now()
            user.save(update_fields=["email", "email_verified_at"])
    except IntegrityError as error:  # the address was taken between the check and the write
        raise LinkRefused(_("Email này đã được đăng ký."), code="email_taken") from error
    _send("email_changed", change.old_email, user.language,
          {"user": user, "old_email": change.old_email, "new_email": change.new_email})
    return EmailChange(user=user, old_email=change.old_email, new_email=change.new_email)


def rotate_feed_secret(user) -> str:
    """A new address for the learner's calendar feed; the old one stops working at once."""
    user.feed_secret = new_feed_secret()
    User.objects.filter(pk=user.pk).update(feed_secret=user.feed_secret)
    return user.feed_secret


# --- personal API tokens --------------------------------------------------------

def active_tokens(user):
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at")


def may_issue_token(user) -> bool:
    return active_tokens(user).count() < MAX_ACTIVE_TOKENS


def issue_token(user, name: str) -> tuple[ApiToken, str]:
    """A new named token for `user`: (the stored row, the secret). The secret exists only in this answer.

    The tokens page and the admin both create tokens here, so none is ever stored without its digest.
    """
    name = " ".join((name or "").split())
    if not name:
        raise DomainError(_("Hãy đặt tên cho khóa API (ví dụ: nơi bạn dùng nó)."), code="name_required")
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise DomainError(_("Tên khóa API quá dài."), code="name_too_long")
    with transaction.atomic():
        # One issue at a time per user: the limit holds under double submits.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if not may_issue_token(user):
            raise Conflict(_("Bạn đã có %(n)d khóa API đang dùng; hãy thu hồi khóa không cần nữa trước.")
                           % {"n": MAX_ACTIVE_TOKENS}, code="too_many_tokens")
        return ApiToken.issue(user, name)


def token_of(user, token_id: int) -> ApiToken:
    """One of the user's own active tokens; anyone else's is simply not found."""
    token = active_tokens(user).filter(pk=token_id).first()
    if token is None:
        raise NotFound(_("Không tìm thấy khóa API."))
    return token


def revoke_token(user, token_id: int, *, now: datetime | None = None) -> ApiToken:
    token = token_of(user, token_id)
    token.revoked_at = now or timezone.now()
    token.save(update_fields=["revoked_at"])
    return token


def revoke_tokens(tokens, *, now: datetime | None = None) -> int:
    """Revoke every still-active token of a queryset (the admin's action)."""
    return tokens.filter(revoked_at__isnull=True).update(revoked_at=now or timezone.now())
