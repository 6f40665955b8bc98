"""Check-in at the door, for seat bookings and machine reservations alike.

The door stands above both courses (seats) and booking (reservations), so neither
of them imports it.

One function decides, inside a transaction holding the booking's row lock, so two
doors scanning the same ticket at the same moment check it in once: the second
sees "already checked in at HH:MM". Every attempt is recorded, refusals with their
reason, so a coordinator can see what happened at the door.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from fablab_ops.booking import interlock, tickets
from fablab_ops.booking.models import CheckInOutcome, CheckInRecord, Reservation, ReservationStatus
from fablab_ops.booking.services import revoke_certification_from_attendance
from fablab_ops.courses.models import SeatBooking, SeatStatus, SessionStatus
from fablab_ops.errors import Conflict, NotFound
from fablab_ops.machines.models import Lab
from fablab_ops.policy import require_lab_staff as require_staff

REFUSAL_MESSAGES = {
    "invalid_token": gettext_lazy("Mã QR không hợp lệ (bị sửa hoặc giả mạo)."),
    "unknown_token": gettext_lazy("Không tìm thấy vé với mã này (vé có thể đã được cấp lại)."),
    "cancelled": gettext_lazy("Lượt đăng ký này đã bị hủy."),
    "session_cancelled": gettext_lazy("Buổi học này đã bị hủy."),
    "waitlisted": gettext_lazy("Học viên đang trong danh sách chờ, chưa có chỗ."),
    "no_show": gettext_lazy("Lượt đặt máy đã bị hủy vì không đến đúng giờ."),
    "wrong_lab": gettext_lazy("Vé này dành cho phòng lab khác."),
    "too_early": gettext_lazy("Chưa đến giờ check-in."),
    "too_late": gettext_lazy("Buổi học hoặc lượt đặt máy đã kết thúc."),
}


@dataclass(frozen=True)
class CheckInResult:
    outcome: str
    reason: str
    message: str
    person: str
    what: str
    checked_in_at: datetime | None
    record_id: int

    @property
    def accepted(self) -> bool:
        return self.outcome == CheckInOutcome.CHECKED_IN


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return start - timedelta(minutes=settings.FABLAB["CHECKIN_OPENS_MINUTES_BEFORE"]), end


def _describe(booking) -> tuple[str, str, Lab | None]:
    """Who, what (for the door's screen) and where a booking belongs."""
    local = timezone.localtime
    if isinstance(booking, SeatBooking):
        session = booking.session
        what = f"{session.course.title} · {local(session.start):%H:%M}–{local(session.end):%H:%M}"
        return booking.learner.full_name, what, session.lab
    what = f"{booking.machine.name} · {local(booking.start):%H:%M}–{local(booking.end):%H:%M}"
    return booking.user.full_name, what, booking.machine.lab


def _refusal(booking, now: datetime) -> str:
    """The reason to refuse this lab's booking at its door now, or "" to accept it."""
    if isinstance(booking, SeatBooking):
        session = booking.session
        if session.status == SessionStatus.CANCELLED:
            return "session_cancelled"
        if booking.status == SeatStatus.CANCELLED:
            return "cancelled"
        if booking.status == SeatStatus.WAITLISTED:
            return "waitlisted"
        start, end = session.start, session.end
    else:
        if booking.status == ReservationStatus.CANCELLED:
            return "cancelled"
        if booking.status == ReservationStatus.NO_SHOW:
            return "no_show"
        start, end = booking.start, booking.end
    opens, closes = _window(start, end)
    if now < opens:
        return "too_early"
    if now > closes:
        return "too_late"
    return ""


def _refusal_message(booking, reason: str, now: datetime) -> str:
    """The refusal as the door says it; too early says when check-in opens, in local time."""
    if reason != "too_early":
        return str(REFUSAL_MESSAGES[reason])
    start = booking.session.start if isinstance(booking, SeatBooking) else booking.start
    opens = timezone.localtime(_window(start, start)[0])
    if opens.date() == timezone.localtime(now).date():
        return _("Chưa đến giờ check-in: mở lúc %(time)s.") % {"time": time_format(opens, "H:i")}
    return _("Chưa đến giờ check-in: mở lúc %(time)s ngày %(day)s.") % {
        "time": time_format(opens, "H:i"), "day": date_format(opens, "d/m/Y")}


def _lock(kind: str, code: str):
    if kind == tickets.SEAT:
        return (SeatBooking.objects.select_for_update(of=("self",))
                .select_related("session__course", "session__lab", "learner").filter(ticket_code=code).first())
    return (Reservation.objects.select_for_update(of=("self",))
            .select_related("machine__lab", "user").filter(ticket_code=code).first())


def _record(*, lab, by, now, outcome, reason="", method, booking=None, token="") -> CheckInRecord:
    return CheckInRecord.objects.create(
        at=now, lab=lab, by=by, outcome=outcome, reason=reason, method=method,
        seat_booking=booking if isinstance(booking, SeatBooking) else None,
        reservation=booking if isinstance(booking, Reservation) else None,
        token_fingerprint=tickets.fingerprint(token) if token else "",
    )


def _admit(booking, by, now) -> None:
    booking.checked_in_at = now
    booking.checked_in_by = by
    if isinstance(booking, SeatBooking):
        booking.status = SeatStatus.ATTENDED
        # At an induction this only records attendance: the trainer marks who passed after the session.
        booking.save(update_fields=["status", "checked_in_at", "checked_in_by", "updated_at"])
    else:
        booking.status = ReservationStatus.CHECKED_IN
        booking.save(update_fields=["status", "checked_in_at", "checked_in_by", "updated_at"])
        interlock.refresh([booking.machine_id], now)


def _decide(booking, *, lab, by, now, method, token="") -> CheckInResult:
    person, what, booking_lab = _describe(booking)
    if booking_lab is None or booking_lab.pk != lab.pk:
        # Another lab's booking: this door learns nothing about its holder, whatever its state,
        # and the refusal is kept at this door without a link to the other lab's learner.
        record = _record(lab=lab, by=by, now=now, outcome=CheckInOutcome.REFUSED, reason="wrong_lab",
                         method=method, token=token)
        return CheckInResult(CheckInOutcome.REFUSED, "wrong_lab", str(REFUSAL_MESSAGES["wrong_lab"]), "", "", None,
                             record.pk)
    if booking.checked_in_at is not None:
        record = _record(lab=lab, by=by, now=now, outcome=CheckInOutcome.ALREADY, method=method,
                         booking=booking, token=token)
        message = _("Đã check-in lúc %(time)s") % {"time": time_format(timezone.localtime(booking.checked_in_at),
                                                                       "H:i")}
        return CheckInResult(CheckInOutcome.ALREADY, "already_checked_in", message, person, what,
                             booking.checked_in_at, record.pk)
    reason = _refusal(booking, now)
    if reason:
        record = _record(lab=lab, by=by, now=now, outcome=CheckInOutcome.REFUSED, reason=reason, method=method,
                         booking=booking, token=token)
        return CheckInResult(CheckInOutcome.REFUSED, reason, _refusal_message(booking, reason, now), person, what,
                             None, record.pk)
    _admit(booking, by, now)
    record = _record(lab=lab, by=by, now=now, outcome=CheckInOutcome.CHECKED_IN, method=method, booking=booking,
                     token=token)
    return CheckInResult(CheckInOutcome.CHECKED_IN, "", _("Check-in thành công"), person, what, now, record.pk)


def check_in_token(token: str, *, lab: Lab, by, now: datetime | None = None) -> CheckInResult:
    """Check in whoever holds this QR ticket at `lab`'s door, scanned by `by`."""
    require_staff(by, lab)
    now = now or timezone.now()
    with transaction.atomic():
        try:
            kind, code = tickets.verify(token)
        except tickets.InvalidTicket:
            return _refused_unknown(lab, by, now, token, "invalid_token")
        booking = _lock(kind, code)
        if booking is None:
            return _refused_unknown(lab, by, now, token, "unknown_token")
        return _decide(booking, lab=lab, by=by, now=now, method="qr", token=token)


def _refused_unknown(lab, by, now, token, reason) -> CheckInResult:
    record = _record(lab=lab, by=by, now=now, outcome=CheckInOutcome.REFUSED, reason=reason, method="qr",
                     token=token)
    return CheckInResult(CheckInOutcome.REFUSED, reason, str(REFUSAL_MESSAGES[reason]), "", "", None, record.pk)


def check_in_manually(kind: str, booking_id: int, *, lab: Lab, by, now: datetime | None = None) -> CheckInResult:
    """For people without their phone: the technician picks them from today's list."""
    require_staff(by, lab)
    now = now or timezone.now()
    # Only this lab's bookings can be picked from its door list: another lab's id is "not found",
    # with no name, no time and no record (the door list never offered it).
    if kind == "seat":
        bookings = SeatBooking.objects.filter(session__lab=lab)
    else:
        bookings = Reservation.objects.filter(machine__lab=lab)
    with transaction.atomic():
        booking = bookings.select_for_update(of=("self",)).filter(pk=booking_id).first()
        if booking is None:
            raise NotFound(_("Không tìm thấy lượt đăng ký."))
        return _decide(booking, lab=lab, by=by, now=now, method="manual")


def undo_check_in(record_id: int, *, by, now: datetime | None = None) -> CheckInRecord:
    """Take back a check-in made by mistake, within a few minutes of it."""
    now = now or timezone.now()
    with transaction.atomic():
        record = (CheckInRecord.objects.select_for_update().select_related("lab")
                  .filter(pk=record_id, outcome=CheckInOutcome.CHECKED_IN).first())
        if record is None:
            raise NotFound(_("Không tìm thấy lượt check-in."))
        require_staff(by, record.lab)
        if record.undone_at is not None:
            raise Conflict(_("Lượt check-in này đã được hoàn tác."), code="already_undone")
        if now - record.at > timedelta(minutes=settings.FABLAB["CHECKIN_UNDO_MINUTES"]):
            raise Conflict(_("Đã quá thời gian cho phép hoàn tác."), code="undo_window_passed")
        booking = record.seat_booking or record.reservation
        booking = type(booking).objects.select_for_update().get(pk=booking.pk)
        booking.checked_in_at = None
        booking.checked_in_by = None
        if isinstance(booking, SeatBooking):
            booking.status = SeatStatus.CONFIRMED
            revoke_certification_from_attendance(booking, by)
        else:
            booking.status = ReservationStatus.CONFIRMED
        booking.save(update_fields=["status", "checked_in_at", "checked_in_by", "updated_at"])
        if isinstance(booking, Reservation):
            interlock.refresh([booking.machine_id], now)
        record.undone_at = now
        record.undone_by = by
        record.save(update_fields=["undone_at", "undone_by"])
        return record


def lab_day(lab: Lab, day, *, by) -> dict:
    """The door's list for a day: seat bookings and reservations at the lab, who is in."""
    require_staff(by, lab)
    tz = timezone.get_default_timezone()
    start = datetime.combine(day, datetime.min.time(), tz)
    end = start + timedelta(days=1)
    seats = (SeatBooking.objects.filter(session__lab=lab, session__start__lt=end, session__end__gt=start)
             .exclude(status__in=[SeatStatus.CANCELLED, SeatStatus.WAITLISTED])
             .select_related("learner", "session__course").order_by("session__start", "learner__full_name"))
    reservations = (Reservation.objects.filter(machine__lab=lab, start__lt=end, end__gt=start)
                    .exclude(status=ReservationStatus.CANCELLED)
                    .select_related("user", "machine").order_by("start"))
    return {"seats": list(seats), "reservations": list(reservations)}


def search_today(lab: Lab, query: str, *, by, now: datetime | None = None) -> dict:
    """Find today's bookings at a lab by name or phone, for manual check-in."""
    day = timezone.localdate(now or timezone.now())
    listing = lab_day(lab, day, by=by)
    query = query.strip().casefold()
    if not query:
        return listing

    def matches(user) -> bool:
        return query in user.full_name.casefold() or query in user.phone.replace(" ", "")

    return {"seats": [s for s in listing["seats"] if matches(s.learner)],
            "reservations": [r for r in listing["reservations"] if matches(r.user)]}


@dataclass(frozen=True)
class Absence:
    """Someone booked at the lab on a day who did not come, or came late."""

    kind: str  # "seat" or "reservation"
    person: str
    what: str
    start: datetime
    checked_in_at: datetime | None
    status: str

    @property
    def minutes_late(self) -> int | None:
        if self.checked_in_at is None:
            return None
        return int((self.checked_in_at - self.start).total_seconds() // 60)


def day_exceptions(lab: Lab, day, *, by, now: datetime | None = None) -> dict:
    """A lab's day at the door, for its technicians: who did not come, who came late, what the door refused.

    - no-shows: reservations released as no-shows, and seats of sessions already started that nobody checked in;
    - late: check-ins (seats and reservations) after the booked start;
    - refused: the door's refused scans with their reason (another lab's ticket names nobody).
    """
    require_staff(by, lab)
    now = now or timezone.now()
    tz = timezone.get_default_timezone()
    start = datetime.combine(day, datetime.min.time(), tz)
    end = start + timedelta(days=1)
    local = timezone.localtime

    def seat(booking) -> Absence:
        session = booking.session
        return Absence("seat", booking.learner.full_name,
                       f"{session.course.title} · {local(session.start):%H:%M}–{local(session.end):%H:%M}",
                       session.start, booking.checked_in_at, booking.get_status_display())

    def reservation(booking) -> Absence:
        return Absence("reservation", booking.user.full_name,
                       f"{booking.machine.name} · {local(booking.start):%H:%M}–{local(booking.end):%H:%M}",
                       booking.start, booking.checked_in_at, booking.get_status_display())

    seats = (SeatBooking.objects.filter(session__lab=lab, session__start__gte=start, session__start__lt=end)
             .exclude(session__status=SessionStatus.CANCELLED)
             .select_related("learner", "session__course").order_by("session__start", "learner__full_name"))
    reservations = (Reservation.objects.filter(machine__lab=lab, start__gte=start, start__lt=end)
                    .select_related("user", "machine").order_by("start", "user__full_name"))
    missing_seats = seats.filter(session__start__lte=now, checked_in_at__isnull=True,
                                 status__in=[SeatStatus.CONFIRMED, SeatStatus.NO_SHOW])
    missing_reservations = reservations.filter(status=ReservationStatus.NO_SHOW)
    no_shows = sorted([seat(b) for b in missing_seats] + [reservation(r) for r in missing_reservations],
                      key=lambda row: (row.start, row.person))
    late = sorted([seat(b) for b in seats.filter(checked_in_at__gt=F("session__start"))]
                  + [reservation(r) for r in reservations.filter(checked_in_at__gt=F("start"))],
                  key=lambda row: (row.start, row.person))

    def holder(record) -> str:
        """The name on a refused ticket, when the ticket is this lab's own (another lab's holder stays unnamed)."""
        booking = record.seat_booking or record.reservation
        if booking is None or record.reason == "wrong_lab":
            return ""
        person, _what, booking_lab = _describe(booking)
        return person if booking_lab is not None and booking_lab.pk == lab.pk else ""

    refused = [{"record": record, "message": REFUSAL_MESSAGES.get(record.reason, record.reason),
                "person": holder(record)}
               for record in refused_scans(by=by, lab=lab).filter(at__gte=start, at__lt=end)
               .select_related("seat_booking__learner", "seat_booking__session__course",
                               "seat_booking__session__lab", "reservation__user", "reservation__machine__lab")
               .order_by("-at")[:200]]
    return {"no_shows": no_shows, "late": late, "refused": refused}


def refused_scans(*, by, lab: Lab | None = None, since: datetime | None = None):
    records = CheckInRecord.objects.filter(outcome=CheckInOutcome.REFUSED).select_related("lab", "by")
    if lab is not None:
        require_staff(by, lab)
        records = records.filter(lab=lab)
    elif not by.is_coordinator:
        records = records.filter(lab__in=by.staffed_labs.all())
    if since is not None:
        records = records.filter(at__gte=since)
    return records

