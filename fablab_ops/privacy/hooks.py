"""What personal data adds to accounts (sign-up, booking, login, profile, admin), registered in
`PrivacyConfig.ready()`: accounts is the lower layer and imports nothing of this app."""

from django.urls import reverse
from django.utils.translation import gettext as _

from fablab_ops.accounts import hooks
from fablab_ops.privacy import services
from fablab_ops.privacy.models import AccessKind, Purpose


def signup_errors(cleaned) -> list:
    return services.validate_signup_age(cleaned.get("date_of_birth"), child_agrees=bool(cleaned.get("child_agrees")),
                                        guardian=cleaned)


def signup_recorded(user, fields):
    """The consents and date of birth with the new account; for a child, the guardian mailed after commit."""
    if fields.get("date_of_birth") is None:
        return None  # an account made without the question (a script, the admin): asked at next login
    data = services.record_signup(user, born=fields["date_of_birth"], reminders=fields.get("consent_reminders"),
                                  child_agrees=fields.get("child_agrees"), guardian=fields.get("guardian"))
    return (lambda: services.send_guardian_request(data)) if data.guardian_email else None


def signup_notices(user) -> list:
    email = services.pending_guardian_email(user)
    if email is None:
        return []
    return [_("Vì em dưới 16 tuổi, chúng tôi đã gửi email tới %(email)s để cha mẹ hoặc người giám hộ xác nhận. "
              "Trong lúc chờ, em vẫn xem được lịch học.") % {"email": email}]


def login_destination(user):
    return reverse("privacy:confirm") if services.needs_consent(user) else None


def profile_context(user) -> dict:
    return {"consents": services.consent_rows(user), "awaits_guardian": services.awaits_guardian(user),
            "needs_consent": services.needs_consent(user)}


def record_access(viewer, subject, context) -> None:
    services.record_access(viewer, [subject], AccessKind.PROFILE, context=context)


def record_roster_access(viewer, person_ids, context) -> None:
    services.record_access(viewer, person_ids, AccessKind.ROSTER_CONTACTS, context=context)


def token_user_annotations(user_ref: str) -> dict:
    return {services.LOADED_BOOKINGS_CONSENT: services.latest_decision(user_ref, Purpose.BOOKINGS)}


def register() -> None:
    hooks.register("signup_errors", signup_errors)
    hooks.register("signup_recorded", signup_recorded)
    hooks.register("signup_notices", signup_notices)
    hooks.register("booking_check", services.require_may_book)
    hooks.register("login_destination", login_destination)
    hooks.register("profile_context", profile_context)
    hooks.register("record_access", record_access)
    hooks.register("record_roster_access", record_roster_access)
    hooks.register("token_user_annotations", token_user_annotations)
