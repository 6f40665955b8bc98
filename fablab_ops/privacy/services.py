"""Personal data as Law 91/2025/QH15 asks: consent per purpose, children and guardians, export, erasure,
and the log of staff looking at a learner's data.

Views only translate; the rules are here. Other parts of the service ask:
- `require_may_book` (through `accounts.services.require_verified_email`): a child's account is pending
  until a parent or guardian confirms;
- `may_send(user, kind)` (through `notifications.notify`): optional e-mails stop when their consent is
  withdrawn;
- `record_access(...)`: staff pages that show a learner's contact data.

Erasure keeps every row the monthly reports count (seats, reservations, certifications, usage hours) but
cuts them from the person: the account row stays as an anonymous placeholder with no name, address,
phone, organisation, password, tokens or feed secret, and the e-mails sent keep no subject or body.
"""

from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops.accounts import services as accounts_services
from fablab_ops.accounts.models import ApiToken, Notification, NotificationState, User, new_feed_secret
from fablab_ops.errors import DomainError, PermissionDenied
from fablab_ops.privacy.models import (
    REQUIRED_PURPOSES,
    AccessKind,
    AccessLogEntry,
    Channel,
    Consent,
    PersonalData,
    Purpose,
    new_guardian_key,
)

ADULT_AGE = 16  # Law on Children 2016: a child is under 16
CHILD_OWN_CONSENT_AGE = 7
# E-mails beyond the essential: sent only while the learner consents to REMINDERS.
OPTIONAL_KINDS = {"seat_reminder": Purpose.REMINDERS, "certification_lapsing": Purpose.REMINDERS}
GUARDIAN_SALT = "fablab_ops.privacy.guardian"
ERASED_NAME = "—"
ERASED_DOMAIN = "erased.invalid"
# Pupils registered by their school have no address of their own: theirs is here, and is never mailed.
NO_EMAIL_DOMAIN = "no-email.invalid"


def notice_version() -> str:
    return settings.PRIVACY_NOTICE_VERSION


def controller() -> dict:
    return {"name": settings.PRIVACY_CONTROLLER_NAME, "address": settings.PRIVACY_CONTROLLER_ADDRESS,
            "email": settings.PRIVACY_CONTROLLER_EMAIL}


# --- consent -------------------------------------------------------------------

def record_consent(user, purpose: str, granted: bool, *, channel: str, by_guardian: bool = False,
                   now: datetime | None = None) -> Consent:
    return Consent.objects.create(user=user, purpose=purpose, granted=granted, notice_version=notice_version(),
                                  at=now or timezone.now(), channel=channel, by_guardian=by_guardian)


def current_consents(user) -> dict[str, Consent]:
    """The latest decision per purpose (a purpose never asked about is absent)."""
    latest: dict[str, Consent] = {}
    for consent in Consent.objects.filter(user=user).order_by("-at", "-pk"):
        latest.setdefault(consent.purpose, consent)
    return latest


# The API's token lookup loads the latest bookings decision with the user, under this name (`hooks`).
LOADED_BOOKINGS_CONSENT = "privacy_bookings_consent"


def latest_decision(user_ref: str, purpose: str) -> Subquery:
    """The latest decision about `purpose` of the user at `user_ref` (an `OuterRef` path), as a subquery."""
    return Subquery(Consent.objects.filter(user=OuterRef(user_ref), purpose=purpose).order_by("-at", "-pk")
                    .values("granted")[:1])


def consents_to(user, purpose: str) -> bool | None:
    """True or False as the person last decided; None for accounts older than the question."""
    if purpose == Purpose.BOOKINGS and hasattr(user, LOADED_BOOKINGS_CONSENT):
        return getattr(user, LOADED_BOOKINGS_CONSENT)
    consent = Consent.objects.filter(user=user, purpose=purpose).order_by("-at", "-pk").first()
    return None if consent is None else consent.granted


def may_send(user, kind: str) -> bool:
    """Whether an e-mail of `kind` may go to `user`: never to an erased person; optional kinds with consent."""
    if getattr(user, "email", "").endswith(("@" + ERASED_DOMAIN, "@" + NO_EMAIL_DOMAIN)):
        return False
    purpose = OPTIONAL_KINDS.get(kind)
    return purpose is None or consents_to(user, purpose) is not False


@dataclass(frozen=True)
class ConsentRow:
    purpose: str
    label: str
    required: bool
    granted: bool | None
    since: datetime | None
    consequence: str


def consent_rows(user) -> list[ConsentRow]:
    """What the profile page shows: each purpose, the person's current choice, and what withdrawing means."""
    current = current_consents(user)
    rows = []
    for purpose, label in Purpose.choices:
        consent = current.get(purpose)
        rows.append(ConsentRow(purpose=purpose, label=str(label), required=purpose in REQUIRED_PURPOSES,
                               granted=None if consent is None else consent.granted,
                               since=consent.at if consent else None,
                               consequence=consequence_of_withdrawing(purpose)))
    return rows


@dataclass(frozen=True)
class Withdrawal:
    purpose: str
    consequence: str


def consequence_of_withdrawing(purpose: str) -> str:
    if purpose == Purpose.REMINDERS:
        return _("Bạn sẽ không nhận email nhắc lịch học hay nhắc chứng nhận sắp hết hạn nữa. Email thiết yếu "
                 "(xác nhận, hủy, thay đổi lịch) vẫn được gửi.")
    return _("Rút lại sự đồng ý này nghĩa là chúng tôi không thể phục vụ bạn nữa: dữ liệu của bạn sẽ bị xóa "
             "như khi bạn yêu cầu xóa tài khoản.")


def withdraw(user, purpose: str, *, channel: str = Channel.PROFILE, now: datetime | None = None) -> Withdrawal:
    """Withdraw an optional consent: the processing it covered stops from now on.

    The required purpose cannot be withdrawn on its own: that is erasure (`erase`).
    """
    if purpose not in Purpose.values:
        raise DomainError(_("Mục đích không hợp lệ."), code="invalid_purpose")
    if purpose in REQUIRED_PURPOSES:
        raise DomainError(consequence_of_withdrawing(purpose), code="required_purpose")
    record_consent(user, purpose, False, channel=channel, now=now)
    return Withdrawal(purpose=purpose, consequence=consequence_of_withdrawing(purpose))


def give(user, purpose: str, *, channel: str = Channel.PROFILE, now: datetime | None = None) -> Consent:
    if purpose not in Purpose.values:
        raise DomainError(_("Mục đích không hợp lệ."), code="invalid_purpose")
    return record_consent(user, purpose, True, channel=channel, now=now)


# --- age, children and guardians -----------------------------------------------

def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def personal_data(user) -> PersonalData | None:
    # No query when the caller loaded it with the user (the API's token lookup does); otherwise read it fresh.
    if isinstance(user, User) and User.personal_data.is_cached(user):
        try:
            return user.personal_data
        except PersonalData.DoesNotExist:
            return None
    return PersonalData.objects.filter(user=user).first()


def is_child(user, today: date | None = None) -> bool:
    data = personal_data(user)
    if data is None or data.date_of_birth is None:
        return False
    return age_on(data.date_of_birth, today or timezone.localdate()) < ADULT_AGE


def awaits_guardian(user, today: date | None = None) -> bool:
    """A child whose parent or guardian has not (or no longer) confirmed. At 16 they hold their own account."""
    data = personal_data(user)
    if data is None or data.date_of_birth is None:
        return False
    if age_on(data.date_of_birth, today or timezone.localdate()) >= ADULT_AGE:
        return False
    if data.school_consent_id is not None:
        return False  # registered by the school, on its written consent (`register_class`)
    return data.guardian_confirmed_at is None or data.guardian_withdrawn_at is not None


def needs_consent(user) -> bool:
    """A learner's account older than the consent question (no decision recorded, no date of birth asked):
    never treated as consenting; asked at the next login, and refused a booking until they answer.
    (An erased account is inactive, and its decisions are recorded: never asked.)"""
    if not (getattr(user, "is_authenticated", False) and user.is_active and user.role == "learner"):
        return False
    return consents_to(user, Purpose.BOOKINGS) is None and not awaits_guardian(user)


def require_may_book(user) -> None:
    """Before a booking: a learner's consent is recorded (one query; the child's guardian data comes with the
    user where the caller loaded it), a child's guardian has confirmed and not withdrawn."""
    if not getattr(user, "is_authenticated", False):
        return
    decision = consents_to(user, Purpose.BOOKINGS) if user.role == "learner" else True
    pending = awaits_guardian(user)
    if decision is None and not pending:
        raise PermissionDenied(
            _("Trước khi đăng ký lớp hoặc đặt máy, hãy cho chúng tôi biết ngày sinh của bạn và đồng ý với cách "
              "chúng tôi xử lý dữ liệu cá nhân (trang Dữ liệu cá nhân → Xác nhận)."),
            code="consent_needed",
        )
    if pending:
        raise PermissionDenied(
            _("Tài khoản của bạn đang chờ cha mẹ hoặc người giám hộ xác nhận qua liên kết chúng tôi đã gửi tới "
              "email của họ. Sau khi họ xác nhận, bạn có thể đăng ký lớp và đặt máy."),
            code="guardian_consent_pending",
        )
    if decision is False:
        raise PermissionDenied(_("Sự đồng ý cho việc đăng ký lớp và đặt máy đã được rút lại."),
                               code="consent_withdrawn")


def validate_signup_age(born: date | None, *, child_agrees: bool, guardian: dict, today: date | None = None) -> list:
    """What a sign-up form is missing for this age: [(field, message)].

    `guardian` holds the form's guardian fields and the child's own `email` (which the guardian's must not be).
    """
    today = today or timezone.localdate()
    if born is None:
        return [("date_of_birth", _("Hãy nhập ngày sinh."))]
    age = age_on(born, today)
    if born > today or age > 120:
        return [("date_of_birth", _("Ngày sinh không hợp lệ."))]
    errors = []
    if age < ADULT_AGE:
        for field in ("guardian_name", "guardian_email", "guardian_relation"):
            if not (guardian.get(field) or "").strip():
                errors.append((field, _("Dưới 16 tuổi: hãy nhập thông tin cha mẹ hoặc người giám hộ.")))
        guardian_email = (guardian.get("guardian_email") or "").strip().lower()
        if guardian_email and guardian_email == (guardian.get("email") or "").strip().lower():
            errors.append(("guardian_email", _("Email của cha mẹ hoặc người giám hộ phải khác email của em.")))
        if age >= CHILD_OWN_CONSENT_AGE and not child_agrees:
            errors.append(("child_agrees", _("Từ 7 tuổi, em cũng cần tự đồng ý.")))
    return errors


def record_signup(user, *, born: date, reminders: bool, child_agrees: bool = False, guardian: dict | None = None,
                  channel: str = Channel.SIGNUP, now: datetime | None = None) -> PersonalData:
    """After sign-up: the consents given, the date of birth, and for a child the guardian asked by e-mail.

    For a child the learner's own ticks count as the child's agreement; the consents themselves are
    the guardian's to give (`guardian_confirm`). The caller mails the guardian once this is committed
    (`send_guardian_request`).
    """
    now = now or timezone.now()
    guardian = guardian or {}
    child = age_on(born, timezone.localdate(now)) < ADULT_AGE
    # Update: an account older than the question answers it at its next login (`confirm_legacy`).
    data, _created = PersonalData.objects.update_or_create(user=user, defaults={"date_of_birth": born})
    if child:
        data.guardian_name = " ".join(guardian.get("guardian_name", "").split())
        data.guardian_email = User.objects.normalize_email(guardian.get("guardian_email", "").strip()).lower()
        data.guardian_relation = " ".join(guardian.get("guardian_relation", "").split())
        data.child_agreed_at = now if child_agrees else None
        data.guardian_asked_at = now
        data.save()
        # The child's wish about reminders, kept for the guardian's confirmation to apply.
        record_consent(user, Purpose.REMINDERS, reminders, channel=channel, now=now)
    else:
        record_consent(user, Purpose.BOOKINGS, True, channel=channel, now=now)
        record_consent(user, Purpose.REMINDERS, reminders, channel=channel, now=now)
    return data


def confirm_legacy(user, *, born: date, bookings: bool, reminders: bool, child_agrees: bool = False,
                   guardian: dict | None = None, now: datetime | None = None) -> PersonalData:
    """An account older than the consent question answers it (at its next login): the date of birth and the
    consents, as at sign-up; a child's guardian is asked by e-mail once this is committed."""
    if not needs_consent(user):
        raise DomainError(_("Bạn đã trả lời câu hỏi này."), code="already_answered")
    errors = validate_signup_age(born, child_agrees=child_agrees, guardian={**(guardian or {}), "email": user.email})
    if not bookings:
        errors.append(("consent_bookings", consequence_of_withdrawing(Purpose.BOOKINGS)))
    if errors:
        raise DomainError(errors[0][1], code="consent_incomplete")
    with transaction.atomic():
        data = record_signup(user, born=born, reminders=reminders, child_agrees=child_agrees, guardian=guardian,
                             channel=Channel.LOGIN, now=now)
    if data.guardian_email:
        send_guardian_request(data)
    return data


def guardian_token(data: PersonalData) -> str:
    return signing.dumps({"p": data.pk, "k": data.guardian_key}, salt=GUARDIAN_SALT)


def send_guardian_request(data: PersonalData) -> None:
    _send_privacy_mail("guardian_request", data.guardian_email, data.user.language,
                       {"data": data, "child": data.user, "token": guardian_token(data),
                        "controller": controller()})


def resend_guardian_request(user) -> str | None:
    """Mail the guardian's link again while a child's account waits; the address it went to, or None."""
    data = personal_data(user)
    if data is None or not data.guardian_email or not awaits_guardian(user) or data.erased_at:
        return None
    send_guardian_request(data)
    return data.guardian_email


def pending_guardian_email(user) -> str | None:
    data = personal_data(user)
    return data.guardian_email if data is not None and awaits_guardian(user) else None


def _send_privacy_mail(template, to_email, language, context) -> None:
    accounts_services.send_now(f"privacy/email/{template}.txt", to_email, language, context)


class GuardianLinkRefused(DomainError):
    status = 400


def read_guardian_link(token: str) -> PersonalData:
    try:
        payload = signing.loads(token, salt=GUARDIAN_SALT)
    except signing.BadSignature as error:
        raise GuardianLinkRefused(_("Liên kết không hợp lệ."), code="link_invalid") from error
    data = (PersonalData.objects.select_related("user")
            .filter(pk=payload.get("p"), guardian_key=payload.get("k"), erased_at__isnull=True).first())
    if data is None:
        raise GuardianLinkRefused(_("Liên kết này không còn dùng được."), code="link_used")
    return data


def guardian_confirm(token: str, *, now: datetime | None = None) -> PersonalData:
    """The guardian consents for the child: bookings (required), and reminders as the child chose.

    After a withdrawal the guardian may confirm again: the child may book again from then on.
    """
    now = now or timezone.now()
    with transaction.atomic():
        data = PersonalData.objects.select_for_update().get(pk=read_guardian_link(token).pk)
        if data.guardian_confirmed_at is None or data.guardian_withdrawn_at is not None:
            data.guardian_confirmed_at, data.guardian_withdrawn_at = now, None
            data.save(update_fields=["guardian_confirmed_at", "guardian_withdrawn_at"])
            record_consent(data.user, Purpose.BOOKINGS, True, channel=Channel.GUARDIAN, by_guardian=True, now=now)
            reminders = consents_to(data.user, Purpose.REMINDERS)
            record_consent(data.user, Purpose.REMINDERS, bool(reminders), channel=Channel.GUARDIAN,
                           by_guardian=True, now=now)
    return data


def guardian_stop_reminders(token: str, *, now: datetime | None = None) -> None:
    """The guardian withdraws the optional consent only: no more reminder e-mails; bookings go on."""
    data = read_guardian_link(token)
    if consents_to(data.user, Purpose.REMINDERS) is not False:
        record_consent(data.user, Purpose.REMINDERS, False, channel=Channel.GUARDIAN, by_guardian=True,
                       now=now or timezone.now())


def guardian_withdraw(token: str, *, now: datetime | None = None) -> None:
    """The guardian withdraws consent, or asks for erasure: processing stops and the child's data is erased
    at once (for a child the law ends processing with the data deleted when consent is withdrawn), as the
    child's own erasure (`erase`): the reports keep their figures, seats to come go to the waiting list, and
    the link stops working. The withdrawal itself is recorded first, by the guardian, for the record."""
    now = now or timezone.now()
    data = read_guardian_link(token)
    with transaction.atomic():
        PersonalData.objects.filter(pk=data.pk, guardian_withdrawn_at__isnull=True).update(guardian_withdrawn_at=now)
        for purpose in (Purpose.BOOKINGS, Purpose.REMINDERS):
            record_consent(data.user, purpose, False, channel=Channel.GUARDIAN, by_guardian=True, now=now)
        erase(data.user, channel=Channel.GUARDIAN, now=now)


def child_bookings(data: PersonalData) -> dict:
    """What the guardian's page lists: the child's seats and machine reservations, latest first."""
    from fablab_ops.booking.models import Reservation
    from fablab_ops.courses.models import SeatBooking

    return {
        "seats": list(SeatBooking.objects.filter(learner=data.user)
                      .select_related("session__course", "session__lab").order_by("-session__start")[:50]),
        "reservations": list(Reservation.objects.filter(user=data.user)
                             .select_related("machine__lab").order_by("-start")[:50]),
    }


# --- export ----------------------------------------------------------------------

def _iso(value):
    return timezone.localtime(value).isoformat() if isinstance(value, datetime) else (
        value.isoformat() if isinstance(value, date) else value)


def export(user) -> dict:
    """Everything held about `user`, as plain data (JSON and the readable page are made from it)."""
    from fablab_ops.booking.models import Certification, CheckInRecord, Reservation
    from fablab_ops.courses.models import SeatBooking
    from fablab_ops.machines.models import UsageSession

    data = personal_data(user)
    seats = SeatBooking.objects.filter(learner=user).select_related("session__course", "session__lab")
    reservations = Reservation.objects.filter(user=user).select_related("machine__lab")
    return {
        "controller": controller(),
        "generated_at": _iso(timezone.now()),
        "profile": {
            "email": user.email, "full_name": user.full_name, "phone": user.phone,
            "organisation": user.organisation, "language": user.language, "role": user.role,
            "date_joined": _iso(user.date_joined), "email_verified_at": _iso(user.email_verified_at),
            "last_login": _iso(user.last_login),
            "date_of_birth": _iso(data.date_of_birth) if data else None,
            "school_class": data.school_class if data else "",
        },
        "school_consent": None if data is None or data.school_consent is None else {
            "school": data.school_consent.school, "reference": data.school_consent.reference,
            "document_date": _iso(data.school_consent.document_date), "signatory": data.school_consent.signatory,
            "purposes": data.school_consent.purposes,
        },
        "guardian": None if data is None or not data.guardian_email else {
            "name": data.guardian_name, "email": data.guardian_email, "relation": data.guardian_relation,
            "asked_at": _iso(data.guardian_asked_at), "confirmed_at": _iso(data.guardian_confirmed_at),
            "child_agreed_at": _iso(data.child_agreed_at),
        },
        "consents": [
            {"purpose": c.purpose, "purpose_label": str(c.get_purpose_display()), "granted": c.granted,
             "notice_version": c.notice_version, "at": _iso(c.at), "channel": c.channel,
             "by_guardian": c.by_guardian}
            for c in Consent.objects.filter(user=user).order_by("at", "pk")
        ],
        "bookings": [
            {"course": str(s.session.course), "start": _iso(s.session.start), "end": _iso(s.session.end),
             "lab": str(s.session.lab or ""), "status": s.status, "booked_at": _iso(s.created_at),
             "checked_in_at": _iso(s.checked_in_at), "induction_result": s.induction_result,
             "induction_note": s.induction_note}
            for s in seats.order_by("session__start")
        ],
        "reservations": [
            {"machine": r.machine.name, "lab": str(r.machine.lab), "start": _iso(r.start), "end": _iso(r.end),
             "status": r.status, "purpose": r.purpose, "checked_in_at": _iso(r.checked_in_at)}
            for r in reservations.order_by("start")
        ],
        "certifications": [
            {"machine_type": str(c.machine_type), "method": c.method, "granted_at": _iso(c.granted_at),
             "note": c.note, "revoked_at": _iso(c.revoked_at), "revoke_reason": c.revoke_reason}
            for c in Certification.objects.filter(user=user).select_related("machine_type").order_by("granted_at")
        ],
        "check_ins": [
            {"at": _iso(c.at), "lab": str(c.lab), "outcome": c.outcome, "method": c.method}
            for c in CheckInRecord.objects.filter(
                _check_ins_of(user)).select_related("lab").order_by("at")
        ],
        "notifications": [
            {"kind": n.kind, "subject": n.subject, "body": n.body, "created_at": _iso(n.created_at),
             "state": n.state, "sent_at": _iso(n.sent_at)}
            for n in Notification.objects.filter(user=user).order_by("created_at")
        ],
        "usage_sessions": [
            {"machine": u.machine.name, "start": _iso(u.start), "end": _iso(u.end), "job": u.job,
             "energy_wh": u.energy_wh}
            for u in UsageSession.objects.filter(user=user).select_related("machine").order_by("start")
        ],
        "api_tokens": [
            {"name": t.name, "prefix": t.prefix, "created_at": _iso(t.created_at),
             "last_used_at": _iso(t.last_used_at), "revoked_at": _iso(t.revoked_at)}
            for t in ApiToken.objects.filter(user=user).order_by("created_at")
        ],
    }


def _check_ins_of(user):
    from django.db.models import Q

    return Q(seat_booking__learner=user) | Q(reservation__user=user)


# --- erasure ---------------------------------------------------------------------

def erase(user, *, channel: str = Channel.PROFILE, now: datetime | None = None) -> User:
    """Remove or irreversibly anonymise what identifies `user`; keep what the reports count.

    Future seats and reservations are given up (seats go to the waiting list); past ones stay,
    attached to an anonymous placeholder, so every month's figures are the same afterwards.
    """
    from fablab_ops.booking import interlock
    from fablab_ops.booking.models import (
        Certification,
        MachineDesiredState,
        MachineOverride,
        Reservation,
        ReservationStatus,
    )
    from fablab_ops.courses import services as courses
    from fablab_ops.courses.models import SeatBooking
    from fablab_ops.machines.models import MachineCommand, UsageSession

    now = now or timezone.now()
    if user.is_staff or user.is_superuser or user.role != "learner":
        raise PermissionDenied(_("Chỉ tài khoản học viên mới được xóa ở đây."), code="not_a_learner")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        # Future seats and places in line: given up, as a cancellation would.
        courses.drop_future_seats(user, now=now)
        reservations = Reservation.objects.filter(user=user)
        machines = list(reservations.filter(start__gt=now, status=ReservationStatus.CONFIRMED)
                        .values_list("machine_id", flat=True))
        reservations.filter(start__gt=now, status=ReservationStatus.CONFIRMED).update(
            status=ReservationStatus.CANCELLED, cancelled_at=now)
        reservations.update(purpose="")
        SeatBooking.objects.filter(learner=user).update(induction_note="")
        Certification.objects.filter(user=user).update(note="")
        # Telemetry keeps the machine and the hours, not the person.
        UsageSession.objects.filter(user=user).update(user=None, job="")
        MachineCommand.objects.filter(reservation__user=user).update(user_display="")
        MachineDesiredState.objects.filter(holder_user=user).update(holder_user=None, holder_name=None)
        MachineOverride.objects.filter(holder=user).update(holder=None)
        _scrub_admin_history(user, [
            (User, [user.pk]),
            (SeatBooking, SeatBooking.objects.filter(learner=user).values_list("pk", flat=True)),
            (Reservation, reservations.values_list("pk", flat=True)),
            (Certification, Certification.objects.filter(user=user).values_list("pk", flat=True)),
            (Notification, Notification.objects.filter(user=user).values_list("pk", flat=True)),
            (ApiToken, ApiToken.objects.filter(user=user).values_list("pk", flat=True)),
        ])
        ApiToken.objects.filter(user=user).delete()
        Notification.objects.filter(user=user).update(subject="", body="", attachment=None, attachment_name="",
                                                      last_error="")
        Notification.objects.filter(user=user, state__in=[NotificationState.DUE, NotificationState.SENDING]).update(
            state=NotificationState.FAILED, claimed_until=None)
        PersonalData.objects.update_or_create(user=user, defaults={
            "date_of_birth": None, "guardian_name": "", "guardian_email": "", "guardian_relation": "",
            "school_class": "", "guardian_key": new_guardian_key(), "erased_at": now})
        user.email = f"erased-{user.pk}@{ERASED_DOMAIN}"
        user.full_name = ERASED_NAME
        user.phone = ""
        user.organisation = ""
        user.is_active = False
        user.email_verified_at = None
        user.last_login = None
        user.set_unusable_password()
        user.save()
        user.feed_secret = new_feed_secret()
        User.objects.filter(pk=user.pk).update(feed_secret=user.feed_secret)
        record_consent(user, Purpose.BOOKINGS, False, channel=channel, now=now)
        record_consent(user, Purpose.REMINDERS, False, channel=channel, now=now)
        if machines:
            transaction.on_commit(lambda: interlock.refresh(machines, timezone.now()), robust=True)
    return user


def _scrub_admin_history(user, objects) -> None:
    """The admin's history names records by their text (a seat reads "name <e-mail> — class"): keep what was
    done and by whom, with the record's type and number instead of its text."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    for model, ids in objects:
        ids = [str(pk) for pk in ids]
        if ids:
            LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(model), object_id__in=ids).update(
                object_repr=Concat(Value(f"{model._meta.model_name} #"), F("object_id")))


def is_erased(user) -> bool:
    return PersonalData.objects.filter(user=user, erased_at__isnull=False).exists()


# --- access log --------------------------------------------------------------------

def record_access(viewer, subjects, what: str, *, context: str = "", now: datetime | None = None) -> int:
    """Staff saw these learners' personal data; a learner looking at their own is not logged."""
    now = now or timezone.now()
    ids = {getattr(s, "pk", s) for s in subjects} - {viewer.pk}
    AccessLogEntry.objects.bulk_create([
        AccessLogEntry(at=now, viewer=viewer, subject_id=subject_id, what=what, context=context[:200])
        for subject_id in sorted(ids)
    ])
    return len(ids)


def staff_export(viewer, learner_id: int) -> tuple[User, dict]:
    """A coordinator exports a learner's data (e.g. to answer a request by post): logged."""
    from fablab_ops import policy
    from fablab_ops.errors import NotFound

    if not policy.may_export_for(viewer):
        raise PermissionDenied(_("Chỉ điều phối viên mới được xuất dữ liệu của học viên."), code="coordinators_only")
    learner = User.objects.filter(pk=learner_id).first()
    if learner is None:
        raise NotFound(_("Không tìm thấy học viên."))
    record_access(viewer, [learner], AccessKind.EXPORT, context=f"export user {learner.pk}")
    return learner, export(learner)



def staff_erase(viewer, learner_id: int, *, now: datetime | None = None) -> User:
    """A coordinator erases a learner on request (made in person or in writing; a school pupil's by the school
    or a parent): the same erasure as the learner's own, recorded with channel "erasure" and in the access log."""
    from fablab_ops import policy
    from fablab_ops.errors import NotFound

    if not policy.may_erase_for(viewer):
        raise PermissionDenied(_("Chỉ điều phối viên mới được xóa dữ liệu của học viên."), code="coordinators_only")
    learner = User.objects.filter(pk=learner_id, is_active=True).first()
    if learner is None:
        raise NotFound(_("Không tìm thấy học viên."))
    record_access(viewer, [learner], AccessKind.ERASURE, context=f"erase user {learner.pk}", now=now)
    return erase(learner, channel=Channel.ERASURE, now=now)
