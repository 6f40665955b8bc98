"""Throttling of password guessing and sign-ups, for every login form (the site's and the admin's).

Failures only are counted (a person who logs in often is never slowed down), in the
shared cache, in fixed windows:

- per account and client address: a few failures, then that address must wait;
- per account from anywhere: more, so a spread-out attack on one account stops too,
  but the lock-out ends with the window, so an attacker cannot keep a user out for long;
- per client address: many (a school network shares one address).

The account is normalised as login matches it (trimmed, case-folded). The client
address is the one the trusted reverse proxy reports: with `TRUSTED_PROXY_COUNT`
proxies in front, the address that many hops from the right of X-Forwarded-For;
without, REMOTE_ADDR (a forged header is then ignored).

The check runs inside authentication (`ThrottledModelBackend`), so no login form
can go around it; the views only translate a refusal into a message.
"""

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver


@dataclass(frozen=True)
class Limit:
    name: str
    failures: int


PER_ACCOUNT_AND_ADDRESS = Limit("acct-addr", 5)
PER_ACCOUNT = Limit("acct", 20)
PER_ADDRESS = Limit("addr", 50)
SIGNUPS_PER_ADDRESS = Limit("signup", 5)
# Password-reset and verification e-mails: a form cannot be turned into a mail cannon against an inbox.
MAILS_PER_ADDRESS = Limit("mail-addr", 20)
MAILS_PER_ACCOUNT = Limit("mail-acct", 3)


def window_seconds() -> int:
    return int(settings.FABLAB.get("LOGIN_THROTTLE_WINDOW_S", 900))


def client_address(request) -> str:
    trusted = int(getattr(settings, "TRUSTED_PROXY_COUNT", 0) or 0)
    if trusted > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= trusted:
            return hops[-trusted][:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def normalise_account(username) -> str:
    return str(username or "").strip().casefold()


def _key(limit: Limit, *parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "backslashreplace")).hexdigest()[:32]
    return f"throttle:{limit.name}:{digest}"


def _login_keys(request, username) -> list[tuple[Limit, str]]:
    account, address = normalise_account(username), client_address(request)
    return [(PER_ACCOUNT_AND_ADDRESS, _key(PER_ACCOUNT_AND_ADDRESS, account, address)),
            (PER_ACCOUNT, _key(PER_ACCOUNT, account)),
            (PER_ADDRESS, _key(PER_ADDRESS, address))]


def _count(key: str) -> int:
    return int(cache.get(key, 0) or 0)


def _hit(key: str) -> None:
    # add() starts the window on the first failure; incr() keeps the window's expiry.
    if not cache.add(key, 1, timeout=window_seconds()):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr: start a new window
            cache.add(key, 1, timeout=window_seconds())


def login_blocked(request, username) -> bool:
    return any(_count(key) >= limit.failures for limit, key in _login_keys(request, username))


def record_login_failure(request, username) -> None:
    for _limit, key in _login_keys(request, username):
        _hit(key)


def forget_failures(request, username) -> None:
    """A successful login clears that address's failures for the account (not the others)."""
    cache.delete(_login_keys(request, username)[0][1])


def signup_blocked(request) -> bool:
    return _count(_key(SIGNUPS_PER_ADDRESS, client_address(request))) >= SIGNUPS_PER_ADDRESS.failures


def record_signup(request) -> None:
    _hit(_key(SIGNUPS_PER_ADDRESS, client_address(request)))


def _mail_keys(request, account) -> list[tuple[Limit, str]]:
    return [(MAILS_PER_ADDRESS, _key(MAILS_PER_ADDRESS, client_address(request))),
            (MAILS_PER_ACCOUNT, _key(MAILS_PER_ACCOUNT, normalise_account(account)))]


def mail_blocked(request, account) -> bool:
    """Whether another account e-mail (reset link, verification link) to `account` must wait."""
    return any(_count(key) >= limit.failures for limit, key in _mail_keys(request, account))


def record_mail(request, account) -> None:
    for _limit, key in _mail_keys(request, account):
        _hit(key)


class ThrottledModelBackend(ModelBackend):
    """Django's e-mail/password check, refused outright while the throttle says wait."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and login_blocked(request, username or kwargs.get("email")):
            request.login_throttled = True
            # PermissionDenied stops authentication here (no other backend is asked).
            raise PermissionDenied("login throttled")
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed)
def _count_failure(sender, credentials, request=None, **kwargs):
    if request is None or getattr(request, "login_throttled", False):
        return  # refused by the throttle itself: not another guess
    record_login_failure(request, credentials.get("username") or credentials.get("email"))


@receiver(user_logged_in)
def _clear_failures(sender, request, user, **kwargs):
    if request is not None:
        forget_failures(request, user.get_username())
