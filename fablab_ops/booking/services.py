"""Machine reservations across the network, gated by certifications.

The one rule that must never break — two blocking reservations of a machine
overlapping — is kept by the database: PostgreSQL's exclusion constraint
`reservation_no_overlap` (migration 0003), and on SQLite the serialised
IMMEDIATE transaction with the overlap check below. The other rules (opening
hours, lengths, horizon, weekly hours) are checked with the learner's row locked,
so two of their own requests racing cannot both slip under the weekly limit.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _

from fablab_ops import policy
from fablab_ops.accounts.services import require_verified_email
from fablab_ops.booking import interlock
from fablab_ops.booking.models import (
    RESERVATION_BLOCKING,
    Certification,
    CertificationAction,
    CertificationEvent,
    CertificationMethod,
    MachineOverride,
    OverrideKind,
    Reservation,
    ReservationStatus,
)
from fablab_ops.errors import Conflict, DomainError, NotFound
from fablab_ops.machines.models import Lab, Machine, MachineStatus, MachineType, MaintenanceWindow
from fablab_ops.notifications import notify

SLOT_STEP = timedelta(minutes=15)


class Refused(DomainError):
    """A reservation rule says no; `code` names the rule."""

    status = 409


# The courses app (above this one) says which induction comes next for a machine type, with a seat still free:
# a callable (machine_type, now) → session or None, set in CoursesConfig.ready().
next_induction_finder = None


def not_certified(machine_type: MachineType, now: datetime) -> Refused:
    """The refusal for someone not certified, naming the next induction for this type that still has a seat
    (its course, local date and time and lab) and, in `details`, the link to book it."""
    message = _("Bạn cần tham gia buổi hướng dẫn sử dụng %(type)s trước khi đặt máy này.") % {
        "type": machine_type.name}
    session = next_induction_finder(machine_type, now) if next_induction_finder else None
    if session is None:
        return Refused(f"{message} " + _("Hiện chưa có buổi hướng dẫn nào còn chỗ; hãy xem lại sau hoặc hỏi kỹ "
                                         "thuật viên của phòng lab."), code="not_certified")
    start = timezone.localtime(session.start)
    where = session.lab.name if session.lab is not None else _("trực tuyến")
    url = reverse("courses:session_detail", args=[session.pk])
    message = f"{message} " + _("Buổi hướng dẫn gần nhất còn chỗ: %(course)s, %(time)s ngày %(day)s, %(where)s.") % {
        "course": session.course.title, "time": time_format(start, "H:i"), "day": date_format(start, "d/m/Y"),
        "where": where}
    return Refused(message, code="not_certified", next_induction={
        "session_id": session.pk, "course": session.course.title, "start": session.start.isoformat(), "url": url})


# --- certifications ------------------------------------------------------

def active_certification(user, machine_type: MachineType) -> Certification | None:
    return Certification.objects.filter(user=user, machine_type=machine_type, revoked_at__isnull=True).first()


def is_certified(user, machine_type: MachineType) -> bool:
    return not machine_type.requires_induction or active_certification(user, machine_type) is not None


# Who may act for which lab is decided in one place (fablab_ops.policy); the name stays for the callers here.
require_staff = policy.require_lab_staff


def _grant(user, machine_type, *, method, by, now, note="", seat_booking=None) -> Certification:
    certification = active_certification(user, machine_type)
    if certification is not None:
        return certification
    certification = Certification.objects.create(user=user, machine_type=machine_type, method=method,
                                                 granted_at=now, granted_by=by, note=note,
                                                 seat_booking=seat_booking)
    CertificationEvent.objects.create(certification=certification, action=CertificationAction.GRANTED, at=now,
                                      by=by, reason=note)
    # A holder already checked in without a valid certification gets the machine now.
    interlock.refresh(interlock.machines_of_holder(user.pk, machine_type.pk, now), now)
    notify(user, "certification_granted", dedup_key=f"certification-granted-{certification.pk}",
           context={"certification": certification})
    return certification


def certify_passed_induction(seat_booking, by, now: datetime | None = None, note: str = "") -> Certification | None:
    """Passing an induction (marked by its trainer after the session) certifies for its machine type.

    Checking in at the door certifies nothing: a learner is certified once the trainer has seen them pass.
    """
    machine_type = seat_booking.session.course.certifies
    if machine_type is None:
        return None
    reason = _("Đạt buổi hướng dẫn ngày %(day)s") % {
        "day": timezone.localtime(seat_booking.session.start).strftime("%d/%m/%Y")}
    return _grant(seat_booking.learner, machine_type, method=CertificationMethod.INDUCTION, by=by,
                  now=now or timezone.now(), seat_booking=seat_booking,
                  note=f"{reason}: {note.strip()}"[:300] if note.strip() else reason)


def revoke_certification_from_attendance(seat_booking, by, now: datetime | None = None, reason: str = "") -> None:
    """A check-in undone, or a pass corrected to "not passed", takes back the certification that seat granted."""
    certification = Certification.objects.filter(seat_booking=seat_booking, revoked_at__isnull=True).first()
    if certification is not None:
        _revoke(certification, by=by, reason=reason or _("Hoàn tác check-in buổi hướng dẫn"),
                now=now or timezone.now())


def grant_certification(*, user, machine_type: MachineType, by, reason: str,
                        now: datetime | None = None) -> Certification:
    policy.require_certifier(by, machine_type)
    if not reason.strip():
        raise DomainError(_("Cần ghi lý do khi cấp quyền."), code="reason_required")
    return _grant(user, machine_type, method=CertificationMethod.MANUAL, by=by, now=now or timezone.now(),
                  note=reason.strip())


def revoke_certification(certification_id: int, *, by, reason: str, now: datetime | None = None) -> Certification:
    policy.require_lab_staff(by)
    if not reason.strip():
        raise DomainError(_("Cần ghi lý do khi thu hồi quyền."), code="reason_required")
    with transaction.atomic():
        certification = (Certification.objects.select_for_update(of=("self",)).select_related("machine_type")
                         .filter(pk=certification_id).first())
        if certification is None:
            raise NotFound(_("Không tìm thấy chứng nhận."))
        policy.require_certifier(by, certification.machine_type)
        if certification.revoked_at is not None:
            raise Conflict(_("Chứng nhận này đã bị thu hồi."), code="already_revoked")
        return _revoke(certification, by=by, reason=reason.strip(), now=now or timezone.now())


def revocation_consequences(certification_id: int, *, by, now: datetime | None = None) -> dict:
    """What revoking would do, for the confirmation step: nothing is changed.

    `in_use`: checked-in reservations of the holder on such a machine now (it switches off);
    `upcoming`: their reservations still to come on such machines (the machine will not switch on for them).
    """
    now = now or timezone.now()
    policy.require_lab_staff(by)
    certification = (Certification.objects.select_related("user", "machine_type")
                     .filter(pk=certification_id).first())
    if certification is None:
        raise NotFound(_("Không tìm thấy chứng nhận."))
    policy.require_certifier(by, certification.machine_type)
    of_type = Reservation.objects.filter(user=certification.user, machine__machine_type=certification.machine_type,
                                         end__gt=now).select_related("machine__lab").order_by("start")
    return {
        "certification": certification,
        "in_use": list(of_type.filter(status=ReservationStatus.CHECKED_IN, start__lte=now)),
        "upcoming": list(of_type.filter(status=ReservationStatus.CONFIRMED)),
    }


def _revoke(certification, *, by, reason, now, action=CertificationAction.REVOKED) -> Certification:
    certification.revoked_at = now
    certification.revoked_by = by
    certification.revoke_reason = reason
    certification.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    CertificationEvent.objects.create(certification=certification, action=action, at=now, by=by, reason=reason)
    # Mid-reservation too: the interlock opens for someone no longer certified.
    interlock.refresh(interlock.machines_of_holder(certification.user_id, certification.machine_type_id, now), now)
    notify(certification.user, "certification_revoked", dedup_key=f"certification-revoked-{certification.pk}",
           context={"certification": certification, "lapsed": action == CertificationAction.LAPSED})
    return certification


SEARCH_MIN_CHARACTERS = 3


def find_certifications(query: str, *, by) -> list[Certification]:
    """Certifications a staff member looks up to revoke: by name, or by a whole e-mail address.

    Network staff search the whole network, by any part of a name or address. A technician sees only
    the machine types their lab teaches, and finds a learner by name or by their exact address, so
    that a fragment such as "@" cannot list the network's addresses.
    """
    policy.require_lab_staff(by)
    query = query.strip()
    if len(query) < SEARCH_MIN_CHARACTERS:
        return []
    certifications = Certification.objects.select_related("user", "machine_type").prefetch_related("events__by")
    if policy.is_network_staff(by):
        matching = Q(user__email__icontains=query) | Q(user__full_name__icontains=query)
    else:
        certifications = certifications.filter(machine_type__in=policy.certifiable_types(by))
        matching = Q(user__email__iexact=query) | Q(user__full_name__icontains=query)
    return list(certifications.filter(matching).order_by("user__full_name", "-granted_at")[:100])


def with_last_use(certifications: QuerySet) -> QuerySet:
    """The certifications with `last_use`: the start of the latest reservation of their machine type their
    holder was checked in for, or their grant when that is later (or there is none); read with them, in the
    same query, for any number of them."""
    checked_in = (Reservation.objects.filter(user=OuterRef("user"), machine__machine_type=OuterRef("machine_type"),
                                             checked_in_at__isnull=False).order_by("-start").values("start")[:1])
    return certifications.annotate(last_use=Greatest("granted_at", Coalesce(Subquery(checked_in), "granted_at")))


def lapse_certifications(now: datetime | None = None) -> dict[str, int]:
    """Certifications unused for their type's lapse period end; a reminder goes out before (Celery beat)."""
    now = now or timezone.now()
    warn = timedelta(days=settings.FABLAB["CERTIFICATION_LAPSE_REMINDER_DAYS"])
    counts = {"lapsed": 0, "reminded": 0}
    certifications = with_last_use(Certification.objects.filter(revoked_at__isnull=True,
                                                                machine_type__certification_lapse_days__isnull=False)
                                   .select_related("user", "machine_type"))
    for certification in certifications:
        expires = certification.last_use + timedelta(days=certification.machine_type.certification_lapse_days)
        if expires <= now:
            with transaction.atomic():
                _revoke(certification, by=None, reason=_("Không sử dụng trong thời hạn quy định"), now=now,
                        action=CertificationAction.LAPSED)
            counts["lapsed"] += 1
        elif expires - warn <= now:
            _notification, created = notify(certification.user, "certification_lapsing",
                                dedup_key=f"certification-lapsing-{certification.pk}-{expires.date()}",
                                context={"certification": certification, "expires": expires})
            counts["reminded"] += created
    return counts


# --- reservation rules ---------------------------------------------------

def no_show_penalty_until(user, now: datetime) -> datetime | None:
    """Repeated no-shows shorten the booking horizon for a while; until when, if at all."""
    rules = settings.FABLAB
    recent = list(Reservation.objects.filter(user=user, status=ReservationStatus.NO_SHOW,
                                             start__gte=now - timedelta(days=rules["NO_SHOW_WINDOW_DAYS"]))
                  .order_by("-start").values_list("start", flat=True))
    if len(recent) < rules["NO_SHOW_LIMIT"]:
        return None
    until = recent[0] + timedelta(days=rules["NO_SHOW_PENALTY_DAYS"])
    return until if until > now else None


def booking_horizon(user, machine_type: MachineType, now: datetime) -> tuple[timedelta, datetime | None]:
    penalty = no_show_penalty_until(user, now)
    days = machine_type.booking_horizon_days
    if penalty is not None:
        days = min(days, settings.FABLAB["NO_SHOW_PENALTY_HORIZON_DAYS"])
    return timedelta(days=days), penalty


def _within_opening_hours(lab: Lab, start: datetime, end: datetime) -> bool:
    day = timezone.localtime(start).date()
    return any(opens <= start and end <= closes for opens, closes in lab.opening_intervals(day))


def _overlapping(queryset, start: datetime, end: datetime):
    return queryset.filter(start__lt=end, end__gt=start)


def check_rules(user, machine: Machine, start: datetime, end: datetime, now: datetime) -> None:
    """Raise `Refused` naming the first rule this reservation breaks."""
    machine_type = machine.machine_type
    minutes = (end - start).total_seconds() / 60
    if end <= start:
        raise Refused(_("Giờ kết thúc phải sau giờ bắt đầu."), code="end_before_start")
    if start < now:
        raise Refused(_("Không thể đặt máy cho thời gian đã qua."), code="in_the_past")
    if machine.status != MachineStatus.AVAILABLE:
        raise Refused(_("Máy đang không sẵn sàng (%(status)s).") % {"status": machine.get_status_display()},
                      code="machine_unavailable")
    if not is_certified(user, machine_type):
        raise not_certified(machine_type, now)
    if minutes < machine_type.min_reservation_minutes:
        raise Refused(_("Thời lượng tối thiểu là %(n)d phút.") % {"n": machine_type.min_reservation_minutes},
                      code="too_short")
    if minutes > machine_type.max_reservation_minutes:
        raise Refused(_("Thời lượng tối đa là %(n)d phút.") % {"n": machine_type.max_reservation_minutes},
                      code="too_long")
    horizon, penalty = booking_horizon(user, machine_type, now)
    if start > now + horizon:
        if penalty is not None:
            raise Refused(
                _("Do vắng mặt nhiều lần gần đây, bạn chỉ được đặt trước tối đa %(days)d ngày cho đến %(until)s.")
                % {"days": horizon.days, "until": timezone.localtime(penalty).strftime("%d/%m/%Y")},
                code="no_show_penalty")
        raise Refused(_("Chỉ được đặt trước tối đa %(days)d ngày.") % {"days": horizon.days}, code="too_far_ahead")
    if not _within_opening_hours(machine.lab, start, end):
        raise Refused(_("Thời gian đặt nằm ngoài giờ mở cửa của %(lab)s.") % {"lab": machine.lab.short_name},
                      code="outside_opening_hours")
    if _overlapping(machine.maintenance_windows.all(), start, end).exists():
        raise Refused(_("Máy có lịch bảo trì trong thời gian này."), code="in_maintenance")
    _check_weekly_hours(user, machine_type, start, minutes)
    if _overlapping(machine.reservations.filter(status__in=RESERVATION_BLOCKING), start, end).exists():
        raise Refused(_("Khung giờ này vừa có người đặt."), code="slot_taken")


def _check_weekly_hours(user, machine_type, start: datetime, minutes: float) -> None:
    local_day = timezone.localtime(start).date()
    week_start = datetime.combine(local_day - timedelta(days=local_day.weekday()), datetime.min.time(),
                                  timezone.get_default_timezone())
    booked = Reservation.objects.filter(user=user, machine__machine_type=machine_type,
                                        status__in=RESERVATION_BLOCKING, start__gte=week_start,
                                        start__lt=week_start + timedelta(days=7))
    used = sum((r.end - r.start).total_seconds() / 60 for r in booked)
    if used + minutes > machine_type.weekly_hours_limit * 60:
        raise Refused(_("Vượt giới hạn %(hours)d giờ mỗi tuần cho loại máy này (đã đặt %(used).1f giờ).")
                      % {"hours": machine_type.weekly_hours_limit, "used": used / 60}, code="weekly_limit_reached")


def machine_by_slug(lab_slug: str, machine_slug: str) -> Machine:
    machine = (Machine.objects.select_related("lab", "machine_type")
               .filter(lab__slug=lab_slug, slug=machine_slug).first())
    if machine is None:
        raise NotFound(_("Không tìm thấy máy."))
    return machine


def reserve(user, machine: Machine, start: datetime, end: datetime, *, purpose: str = "",
            now: datetime | None = None) -> Reservation:
    now = now or timezone.now()
    require_verified_email(user)
    try:
        with transaction.atomic():
            # One reservation at a time per learner: the weekly-hours check stays true.
            get_user_model().objects.select_for_update().filter(pk=user.pk).first()
            check_rules(user, machine, start, end, now)
            reservation = Reservation.objects.create(machine=machine, user=user, start=start, end=end,
                                                     purpose=purpose)
            notify(user, "reservation_confirmed", dedup_key=f"reservation-confirmed-{reservation.pk}",
                   context={"reservation": reservation})
            return reservation
    except IntegrityError as error:
        if "reservation_no_overlap" in str(error):
            raise Refused(_("Khung giờ này vừa có người đặt."), code="slot_taken") from error
        raise


def reservation_for(user, reservation_id: int) -> Reservation:
    """A learner's own reservation; anyone else's is simply not found."""
    reservation = (Reservation.objects.select_related("machine__lab", "machine__machine_type", "user")
                   .filter(pk=reservation_id, user=user).first())
    if reservation is None:
        raise NotFound(_("Không tìm thấy lượt đặt máy."))
    return reservation


def cancel_reservation(reservation_id: int, user, *, now: datetime | None = None) -> Reservation:
    now = now or timezone.now()
    with transaction.atomic():
        reservation = (Reservation.objects.select_for_update().select_related("machine__lab")
                       .filter(pk=reservation_id, user=user).first())
        if reservation is None:
            raise NotFound(_("Không tìm thấy lượt đặt máy."))
        if reservation.status == ReservationStatus.CANCELLED:
            return reservation
        if (refusal := cancellation_refusal(reservation, now)) is not None:
            raise refusal
        reservation.status = ReservationStatus.CANCELLED
        reservation.cancelled_at = now
        reservation.save(update_fields=["status", "cancelled_at", "updated_at"])
        interlock.refresh([reservation.machine_id], now)
        return reservation


def cancellation_refusal(reservation: Reservation, now: datetime) -> Conflict | None:
    """Why a reservation cannot be cancelled now (the confirmation page says it), or None when it can."""
    if reservation.status != ReservationStatus.CONFIRMED or reservation.start <= now:
        return Conflict(_("Chỉ hủy được lượt đặt máy chưa bắt đầu."), code="reservation_started")
    return None


def rotate_ticket(reservation_id: int, user) -> Reservation:
    from fablab_ops.booking.tickets import new_ticket_code

    reservation = reservation_for(user, reservation_id)
    reservation.ticket_code = new_ticket_code()
    reservation.save(update_fields=["ticket_code", "updated_at"])
    return reservation


def reservations_of(user, *, upcoming: bool, now: datetime | None = None):
    now = now or timezone.now()
    reservations = Reservation.objects.filter(user=user).select_related("machine__lab", "machine__machine_type")
    if upcoming:
        return reservations.filter(end__gte=now).order_by("start")
    return reservations.filter(end__lt=now).order_by("-start")


# --- operations ----------------------------------------------------------

def _check_maintenance_window(machine: Machine, start: datetime, end: datetime, by) -> None:
    require_staff(by, machine.lab)
    if end <= start:
        raise DomainError(_("Giờ kết thúc phải sau giờ bắt đầu."), code="end_before_start")


def reservations_starting(machine_ids: set[int], since: datetime, until: datetime) -> dict[int, list[Reservation]]:
    """Confirmed reservations of these machines starting in [since, until), with their holders: told when a
    machine they booked is in trouble (asked by machines/entitlements.py)."""
    found: dict[int, list[Reservation]] = {}
    for reservation in (Reservation.objects.filter(machine_id__in=machine_ids, status=ReservationStatus.CONFIRMED,
                                                   start__gte=since, start__lt=until).select_related("user")):
        found.setdefault(reservation.machine_id, []).append(reservation)
    return found


def booked_hours(labs, start: datetime, end: datetime) -> dict[str, float]:
    """Hours booked on each machine of `labs` within [start, end), by "lab/machine" (the usage summary's keys)."""
    booked: dict[str, float] = {}
    reservations = Reservation.objects.filter(machine__lab__in=labs, status__in=RESERVATION_BLOCKING,
                                              start__lt=end, end__gt=start).select_related("machine__lab")
    for reservation in reservations:
        key = f"{reservation.machine.lab.slug}/{reservation.machine.slug}"
        hours = (min(reservation.end, end) - max(reservation.start, start)).total_seconds() / 3600
        booked[key] = round(booked.get(key, 0) + hours, 3)
    return booked


def reservations_hit_by_maintenance(machine: Machine, start: datetime, end: datetime):
    """The reservations a maintenance window over [start, end) would hit: those still to be used, and in use now."""
    return (_overlapping(machine.reservations.filter(
        status__in=[ReservationStatus.CONFIRMED, ReservationStatus.CHECKED_IN]), start, end)
        .select_related("user").order_by("start"))


def preview_maintenance(machine: Machine, start: datetime, end: datetime, *, by) -> list[Reservation]:
    """What `schedule_maintenance` would do, before it is done: the reservations it hits (nothing is saved)."""
    _check_maintenance_window(machine, start, end, by)
    return list(reservations_hit_by_maintenance(machine, start, end))


def schedule_maintenance(machine: Machine, start: datetime, end: datetime, *, reason: str, by) -> MaintenanceWindow:
    """Block a machine; the reservations it hits are flagged and their holders told.

    A holder checked in now loses the machine at the window's start (the interlock decides it) and is told too.
    """
    _check_maintenance_window(machine, start, end, by)
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(machine=machine, start=start, end=end, reason=reason,
                                                  created_by=by)
        for reservation in reservations_hit_by_maintenance(machine, start, end):
            reservation.maintenance_conflict = True
            reservation.save(update_fields=["maintenance_conflict", "updated_at"])
            notify(reservation.user, "reservation_maintenance",
                   dedup_key=f"reservation-maintenance-{reservation.pk}-{window.pk}",
                   context={"reservation": reservation, "window": window})
        interlock.refresh([machine.pk])
        return window


def release_no_shows(now: datetime | None = None) -> int:
    """Reservations not checked in within the grace period are released as no-shows (Celery beat)."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.FABLAB["RESERVATION_GRACE_MINUTES"])
    released = 0
    late = Reservation.objects.filter(status=ReservationStatus.CONFIRMED, start__lte=cutoff,
                                      checked_in_at__isnull=True)
    for reservation_id in list(late.values_list("pk", flat=True)):
        with transaction.atomic():
            reservation = (Reservation.objects.select_for_update(of=("self",)).select_related("user", "machine")
                           .get(pk=reservation_id))
            if reservation.status != ReservationStatus.CONFIRMED or reservation.checked_in_at is not None:
                continue
            reservation.status = ReservationStatus.NO_SHOW
            reservation.save(update_fields=["status", "updated_at"])
            interlock.refresh([reservation.machine_id], now)
            notify(reservation.user, "reservation_no_show", dedup_key=f"reservation-no-show-{reservation.pk}",
                   context={"reservation": reservation,
                            "penalty_until": no_show_penalty_until(reservation.user, now)})
            released += 1
    return released


def complete_finished(now: datetime | None = None) -> list[int]:
    """Checked-in reservations whose time is over become completed; returns their ids.

    Their machines are decided again, but a device has already opened its interlock at
    `until` on its own clock, or moved on to the next holder: nothing waits for this job.
    """
    now = now or timezone.now()
    with transaction.atomic():
        finished = list(Reservation.objects.select_for_update().filter(status=ReservationStatus.CHECKED_IN,
                                                                       end__lte=now).values_list("pk", "machine_id"))
        Reservation.objects.filter(pk__in=[pk for pk, _machine in finished]).update(
            status=ReservationStatus.COMPLETED, updated_at=now)
        interlock.refresh([machine for _pk, machine in finished], now)
    return [pk for pk, _machine in finished]


def switch_off(reservation_id: int, *, by, now: datetime | None = None) -> Reservation:
    """A technician ends a checked-in reservation early; its machine is switched off (unless someone is next)."""
    now = now or timezone.now()
    with transaction.atomic():
        reservation = (Reservation.objects.select_for_update(of=("self",)).select_related("machine__lab")
                       .filter(pk=reservation_id).first())
        if reservation is None:
            raise NotFound(_("Không tìm thấy lượt đặt máy."))
        require_staff(by, reservation.machine.lab)
        if reservation.status != ReservationStatus.CHECKED_IN:
            raise Conflict(_("Lượt đặt máy này không đang sử dụng máy."), code="not_in_use")
        reservation.status = ReservationStatus.COMPLETED
        # Ended early, never lengthened: a reservation whose time is already over keeps its end (the next
        # one may start there).
        reservation.end = min(reservation.end, max(now, reservation.start + timedelta(minutes=1)))
        reservation.save(update_fields=["status", "end", "updated_at"])
        interlock.refresh([reservation.machine_id], now)
        return reservation


# --- technicians' overrides of the interlock -----------------------------

def switch_machine_off(machine: Machine, *, by, reason: str = "", now: datetime | None = None) -> MachineOverride:
    """"Tắt máy ngay": the machine's interlock opens now, whoever holds it, until a technician ends the override."""
    require_staff(by, machine.lab)
    now = now or timezone.now()
    with transaction.atomic():
        _supersede_overrides(machine, by, now)
        override = MachineOverride.objects.create(machine=machine, kind=OverrideKind.OFF, by=by,
                                                  reason=reason.strip()[:300], start=now)
        interlock.refresh([machine.pk], now)
        return override


def enable_for_maintenance(machine: Machine, until: datetime, *, by, reason: str = "",
                           now: datetime | None = None) -> MachineOverride:
    """"Bật để bảo trì đến …": the machine is powered for the technician from now until `until`."""
    require_staff(by, machine.lab)
    now = now or timezone.now()
    if timezone.is_naive(until):
        until = timezone.make_aware(until)  # a time without an offset is local time
    if until <= now:
        raise DomainError(_("Giờ kết thúc phải sau thời điểm hiện tại."), code="end_before_start")
    if until - now > timedelta(hours=settings.FABLAB["MAINTENANCE_OVERRIDE_MAX_HOURS"]):
        raise DomainError(_("Chỉ được bật để bảo trì tối đa %(hours)d giờ.")
                          % {"hours": settings.FABLAB["MAINTENANCE_OVERRIDE_MAX_HOURS"]}, code="too_long")
    with transaction.atomic():
        _supersede_overrides(machine, by, now)
        override = MachineOverride.objects.create(machine=machine, kind=OverrideKind.MAINTENANCE, by=by, holder=by,
                                                  reason=reason.strip()[:300], start=now, end=until)
        interlock.refresh([machine.pk], now)
        return override


def _supersede_overrides(machine: Machine, by, now: datetime) -> None:
    """One override at a time: a new one ends those in force, so ending it later hands the machine back to the
    reservations rather than to an older override nobody remembers."""
    (MachineOverride.objects.filter(machine=machine, ended_at__isnull=True, start__lte=now)
     .filter(Q(end__isnull=True) | Q(end__gt=now)).update(ended_at=now, ended_by=by))


def end_override(override_id: int, *, by, now: datetime | None = None) -> MachineOverride:
    """End a technician's override early; the reservations decide again."""
    now = now or timezone.now()
    with transaction.atomic():
        override = (MachineOverride.objects.select_for_update(of=("self",)).select_related("machine__lab")
                    .filter(pk=override_id).first())
        if override is None:
            raise NotFound(_("Không tìm thấy lệnh của kỹ thuật viên."))
        require_staff(by, override.machine.lab)
        if override.in_force(now):
            override.ended_at = now
            override.ended_by = by
            override.save(update_fields=["ended_at", "ended_by"])
            interlock.refresh([override.machine_id], now)
        return override


def overrides_in_force(machine: Machine, now: datetime | None = None) -> list[MachineOverride]:
    now = now or timezone.now()
    open_overrides = getattr(machine, "open_overrides", None)  # read with the machines (lab_timeline)
    if open_overrides is None:
        open_overrides = machine.overrides.filter(ended_at__isnull=True, start__lte=now).select_related("by")
    return [o for o in open_overrides if o.start <= now and o.in_force(now)]


# --- availability and the network search ---------------------------------

@dataclass(frozen=True)
class Slot:
    machine: Machine
    start: datetime
    end: datetime


def busy_intervals(machine: Machine, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    known = getattr(machine, "busy_known", None)  # read ahead for many machines at once (find_free_slots)
    if known is not None:
        return sorted((a, b) for a, b in known if a < end and b > start)
    reservations = _overlapping(machine.reservations.filter(status__in=RESERVATION_BLOCKING), start, end)
    windows = _overlapping(machine.maintenance_windows.all(), start, end)
    return sorted([(r.start, r.end) for r in reservations] + [(w.start, w.end) for w in windows])


def free_intervals(machine: Machine, day: date, now: datetime) -> list[tuple[datetime, datetime]]:
    """The machine's free time on a local day: opening hours minus reservations and maintenance."""
    free = []
    for opens, closes in machine.lab.opening_intervals(day):
        cursor = max(opens, _round_up(now))
        for busy_start, busy_end in busy_intervals(machine, opens, closes):
            if busy_start > cursor:
                free.append((cursor, min(busy_start, closes)))
            cursor = max(cursor, busy_end)
        if cursor < closes:
            free.append((cursor, closes))
    return [(a, b) for a, b in free if b > a]


def _round_up(moment: datetime) -> datetime:
    step = SLOT_STEP.total_seconds()
    seconds = moment.timestamp()
    return datetime.fromtimestamp(-(-seconds // step) * step, tz=moment.tzinfo)


def _busy_between(start: datetime, end: datetime) -> list[Prefetch]:
    """What keeps machines busy between two moments, read for all of them in two queries."""
    return [
        Prefetch("reservations", to_attr="busy_reservations", queryset=_overlapping(
            Reservation.objects.filter(status__in=RESERVATION_BLOCKING), start, end)),
        Prefetch("maintenance_windows", to_attr="busy_maintenance",
                 queryset=_overlapping(MaintenanceWindow.objects.all(), start, end)),
    ]


def find_free_slots(user, machine_type: MachineType, minutes: int, *, now: datetime | None = None,
                    per_machine: int = 2, limit: int = 20) -> list[Slot]:
    """The earliest free slots of the wanted length on every such machine of the network, soonest first."""
    now = now or timezone.now()
    if not is_certified(user, machine_type):
        raise not_certified(machine_type, now)
    if not machine_type.min_reservation_minutes <= minutes <= machine_type.max_reservation_minutes:
        raise Refused(_("Thời lượng phải từ %(low)d đến %(high)d phút.")
                      % {"low": machine_type.min_reservation_minutes, "high": machine_type.max_reservation_minutes},
                      code="too_long" if minutes > machine_type.max_reservation_minutes else "too_short")
    length = timedelta(minutes=minutes)
    horizon, _penalty = booking_horizon(user, machine_type, now)
    machines = (Machine.objects.filter(machine_type=machine_type, status=MachineStatus.AVAILABLE,
                                       lab__is_active=True)
                .select_related("lab", "machine_type").prefetch_related(
                    "lab__opening_hours", *_busy_between(now - timedelta(days=1), now + horizon + timedelta(days=2))))
    slots = []
    for machine in machines:
        machine.busy_known = [(r.start, r.end) for r in machine.busy_reservations] + [
            (w.start, w.end) for w in machine.busy_maintenance]
        found = []
        day = timezone.localdate(now)
        while len(found) < per_machine and day <= timezone.localdate(now + horizon):
            for start, end in free_intervals(machine, day, now):
                while start + length <= end and len(found) < per_machine and start <= now + horizon:
                    found.append(Slot(machine, start, start + length))
                    start += length
            day += timedelta(days=1)
        slots.extend(found)
    return sorted(slots, key=lambda slot: (slot.start, slot.machine.lab.short_name))[:limit]


def lab_timeline(lab: Lab, day: date, *, by) -> list[dict]:
    """A lab's day for its technicians: one row per machine with reservations and maintenance."""
    require_staff(by, lab)
    tz = timezone.get_default_timezone()
    start = datetime.combine(day, datetime.min.time(), tz)
    end = start + timedelta(days=1)
    now = timezone.now()
    machines = lab.machines.exclude(status=MachineStatus.RETIRED).select_related("machine_type").prefetch_related(
        Prefetch("reservations", to_attr="day_reservations", queryset=_overlapping(
            Reservation.objects.exclude(status=ReservationStatus.CANCELLED), start, end
        ).select_related("user").order_by("start")),
        Prefetch("maintenance_windows", to_attr="day_maintenance",
                 queryset=_overlapping(MaintenanceWindow.objects.all(), start, end)),
        Prefetch("overrides", to_attr="open_overrides", queryset=MachineOverride.objects.filter(
            ended_at__isnull=True, start__lte=now).select_related("by")),
    )
    return [{"machine": machine, "reservations": machine.day_reservations, "maintenance": machine.day_maintenance}
            for machine in machines]

