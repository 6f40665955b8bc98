"""API authentication: the browser's session (with CSRF) or a bearer API token."""

from django.utils import timezone
from ninja.security import HttpBearer, SessionAuth

from fablab_ops.accounts.models import ApiToken


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request, token):
        token_row = (
            ApiToken.objects.select_related("user")
            .filter(digest=ApiToken.hash(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if token_row is None:
            return None
        ApiToken.objects.filter(pk=token_row.pk).update(last_used_at=timezone.now())
        request.user = token_row.user
        return token_row.user


# Bearer first: a token request carries no session, so it must not meet the CSRF check.
api_auth = [ApiTokenAuth(), SessionAuth()]
