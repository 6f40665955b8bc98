from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.utils.translation import gettext as _

from fablab_ops.accounts.models import Role, User
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
