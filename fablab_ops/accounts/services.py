"""Accounts: sign-up, the learner's own profile and secrets (calendar feed, API tokens).

Views and the admin only translate: the rules live here and refuse with domain
errors (`fablab_ops/errors.py`).
"""

from datetime import datetime

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops.accounts.models import ApiToken, Role, User, new_feed_secret
from fablab_ops.errors import Conflict, DomainError, NotFound

# Enough for a phone, a laptop and a few integrations; more is usually forgotten tokens.
MAX_ACTIVE_TOKENS = 10


@transaction.atomic
def register_learner(*, email: str, password: str, full_name: str, phone: str = "", language: str = "vi") -> User:
    email = User.objects.normalize_email(email).lower()
    if User.objects.filter(email__iexact=email).exists():
        raise Conflict(_("Email này đã được đăng ký."), code="email_taken")
    user = User(email=email, full_name=full_name.strip(), phone=phone.strip(), role=Role.LEARNER, language=language)
    validate_password(password, user)
    user.set_password(password)
    user.save()
    return user


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
