from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils.translation import gettext as _

from fablab_ops.accounts.models import Role, User, new_feed_secret
from fablab_ops.errors import Conflict


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
