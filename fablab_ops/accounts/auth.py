"""API authentication: the browser's session (with CSRF) or a bearer API token."""

from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from fablab_ops.accounts.models import ApiToken, User
from fablab_ops.rows import columns, instances, value

LAST_USED_PRECISION = timedelta(minutes=1)


def _token_lookup() -> str:
    """The one statement that turns a token's digest into its user, with the user's personal data (booking asks
    whether a child's guardian has confirmed): an index lookup on the digest (fablab_ops/rows.py)."""
    personal = User.personal_data.related.related_model  # privacy's model, named by the relation
    return (
        f'SELECT t."id", t."last_used_at", {columns(User, "u")}, {columns(personal, "p")} '  # noqa: S608
        f'FROM "{ApiToken._meta.db_table}" t JOIN "{User._meta.db_table}" u ON u."id" = t."user_id" '
        f'LEFT JOIN "{personal._meta.db_table}" p ON p."user_id" = u."id" '
        f'WHERE t."digest" = %s AND t."revoked_at" IS NULL AND u."is_active"'
    )


TOKEN_LOOKUP = _token_lookup()


def user_for_token(token: str):
    """The active user holding this unrevoked token (their personal data loaded alongside), or None."""
    with connection.cursor() as cursor:
        cursor.execute(TOKEN_LOOKUP, [ApiToken.hash(token)])
        row = cursor.fetchone()
    if row is None:
        return None
    token_id, last_used_at = row[0], value(ApiToken._meta.get_field("last_used_at"), row[1])
    relation = User.personal_data.related
    user, data = instances(row[2:], User, relation.related_model)
    # Cached on the user either way, so `user.personal_data` asks nothing more (DoesNotExist when there is none).
    relation.set_cached_value(user, data)
    if data is not None:
        relation.remote_field.set_cached_value(data, user)
    now = timezone.now()
    # "Last used" to the minute is enough; writing it on every call would make reads into writes.
    if last_used_at is None or now - last_used_at > LAST_USED_PRECISION:
        _note_use(token_id, now)
    return user


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
        user = user_for_token(token)
        if user is None:
            return None
        request.user = user
        return user


# Bearer first: a token request carries no session, so it must not meet the CSRF check.
api_auth = [ApiTokenAuth(), SessionAuth()]
