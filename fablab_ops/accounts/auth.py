"""API authentication: the browser's session (with CSRF) or a bearer API token."""

import functools
from datetime import timedelta

from django.db import connection
from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from fablab_ops.accounts import hooks
from fablab_ops.accounts.models import ApiToken, User
from fablab_ops.rows import ComposedOnce, columns_of, from_values, moment

LAST_USED_PRECISION = timedelta(minutes=1)
# The learner's personal data lives in the layer above (privacy); its model is reached through the relation.
_PersonalData = User._meta.get_field("personal_data").related_model


def _annotations() -> dict:
    # What the layers above load with the user (`accounts.hooks`): booking asks whether a child's guardian has
    # confirmed and whether the learner consented, in this one statement.
    return {name: expression for extra in hooks.call("token_user_annotations", "user")
            for name, expression in extra.items()}


def _compose_lookup(*, digest):
    annotations = _annotations()
    return (ApiToken.objects.filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
            .annotate(**annotations)
            .values_list(*_TOKEN_COLUMNS, *columns_of(User, "user__"),
                         *columns_of(_PersonalData, "user__personal_data__"), *annotations))


# The token's key and last use (all a request needs of the token itself), its user, their personal data and the
# hooks' annotations, in one statement composed once and planned once per connection (a lookup by the token's
# unique digest: one plan fits every token).
_TOKEN_COLUMNS = ("id", "last_used_at")
_lookup = ComposedOnce(_compose_lookup, prepare_as="api_token", digest=str)
_LOADED = (User, _PersonalData)
# The annotations follow the models' columns.
_WIDTH = len(_TOKEN_COLUMNS) + sum(len(model._meta.concrete_fields) for model in _LOADED)


@functools.cache
def _annotation_names() -> tuple[str, ...]:
    return tuple(_lookup.names()[_WIDTH:])


def _note_use(token_id: int, now) -> None:
    """Record a token's use without waiting for the disk: a "last used" lost to a database crash is harmless,
    while waiting for the flush would hold every first call of the minute (a flash crowd's every call) for it.
    Only in a transaction of its own, so no other write ever skips the wait: one statement that turns the
    wait off for its own transaction (`set_config(…, true)` is SET LOCAL) and commits alone."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{ApiToken._meta.db_table}" SET "last_used_at" = %s '  # noqa: S608 - the model's table
            "WHERE \"id\" = %s AND set_config('synchronous_commit', 'off', true) = 'off'",
            [moment(now), token_id])


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request, token):
        found = _lookup.rows(digest=ApiToken.hash(token))
        if not found:
            return None
        row = found[0]
        token_id, last_used_at = row[:len(_TOKEN_COLUMNS)]
        user, personal_data = from_values(row[len(_TOKEN_COLUMNS):], *_LOADED)
        # As select_related would leave it: the personal data (or its absence) known without another query.
        User.personal_data.related.set_cached_value(user, personal_data)
        if personal_data is not None:
            personal_data.user = user
        for name, value in zip(_annotation_names(), row[_WIDTH:], strict=True):
            setattr(user, name, value)
        now = timezone.now()
        # "Last used" to the minute is enough; writing it on every call would make reads into writes.
        if last_used_at is None or now - last_used_at > LAST_USED_PRECISION:
            _note_use(token_id, now)
        request.user = user
        return user


# Bearer first: a token request carries no session, so it must not meet the CSRF check.
api_auth = [ApiTokenAuth(), SessionAuth()]
