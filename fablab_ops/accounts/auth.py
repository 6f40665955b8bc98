"""API authentication: the browser's session (with CSRF) or a bearer API token."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from fablab_ops.accounts import hooks
from fablab_ops.accounts.models import ApiToken

LAST_USED_PRECISION = timedelta(minutes=1)


def _note_use(token_id: int, now) -> None:
    """Record a token's use without waiting for the disk: a "last used" lost to a database crash is harmless,
    while waiting for the flush would hold every first call of the minute (a flash crowd's every call) for it.
    Only in a transaction of its own, so no other write ever skips the wait."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request, token):
        # With the learner's personal data and what the layers above load with it (`accounts.hooks`): booking
        # asks whether a child's guardian has confirmed and whether the learner consented, in this one statement.
        annotations = {name: expression for extra in hooks.call("token_user_annotations", "user")
                       for name, expression in extra.items()}
        token_row = (
            ApiToken.objects.select_related("user", "user__personal_data").annotate(**annotations)
            .filter(digest=ApiToken.hash(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if token_row is None:
            return None
        for name in annotations:
            setattr(token_row.user, name, getattr(token_row, name))
        now = timezone.now()
        # "Last used" to the minute is enough; writing it on every call would make reads into writes.
        if token_row.last_used_at is None or now - token_row.last_used_at > LAST_USED_PRECISION:
            _note_use(token_row.pk, now)
        request.user = token_row.user
        return token_row.user


# Bearer first: a token request carries no session, so it must not meet the CSRF check.
api_auth = [ApiTokenAuth(), SessionAuth()]
