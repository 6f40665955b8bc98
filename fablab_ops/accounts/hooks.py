"""What the apps built on accounts add to it, registered by them: accounts imports none of them.

accounts is the lowest layer; personal data (fablab_ops.privacy) is built on it and registers here, in
its AppConfig.ready(), what sign-up, booking, login, the profile and the admin must also do. With nothing
registered accounts works alone (as in a test of accounts by itself): every hook is then a no-op.

Hooks:
- `signup_errors(cleaned) -> [(field, message)]`: what the sign-up form is still missing;
- `signup_recorded(user, fields) -> callable | None`: inside the sign-up transaction; the callable returned is
  run once the account is committed (e.g. mail a guardian);
- `signup_notices(user) -> [message]`: what to tell the person just signed up;
- `booking_check(user)`: raises `PermissionDenied` when the person may not book yet;
- `login_destination(user) -> url | None`: a page the person must see before anything else;
- `profile_context(user) -> dict`: more for the profile page;
- `record_access(viewer, subject, context)`: a member of staff opened a person's record;
- `record_roster_access(viewer, person_ids, context)`: a member of staff read these people's contact details on
  a roster;
- `token_user_annotations(user_ref) -> {name: expression}`: what the API's token lookup loads with the user,
  in the same statement (`user_ref` is the path to the user's key, for `OuterRef`); each value is set on the
  user under its name.
"""

from collections import defaultdict
from collections.abc import Callable

NAMES = ("signup_errors", "signup_recorded", "signup_notices", "booking_check", "login_destination",
         "profile_context", "record_access", "record_roster_access", "token_user_annotations")

_registry: dict[str, list[Callable]] = defaultdict(list)


def register(name: str, function: Callable) -> Callable:
    if name not in NAMES:
        raise ValueError(f"unknown accounts hook {name!r}")
    if function not in _registry[name]:
        _registry[name].append(function)
    return function


def call(name: str, *args, **kwargs) -> list:
    """Every registered function's answer, in registration order."""
    return [function(*args, **kwargs) for function in _registry[name]]


def first(name: str, *args, **kwargs):
    """The first answer that is not None (for `login_destination`)."""
    for function in _registry[name]:
        answer = function(*args, **kwargs)
        if answer is not None:
            return answer
    return None
