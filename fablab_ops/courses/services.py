"""Seat booking and class scheduling rules.

Every change to who holds a seat in a session happens inside one transaction that
first locks the session's row (`_locked_session`), the way pretix serialises
quota changes: under that lock the seat count cannot change, so a session never
ends up with more seats taken than its capacity, whatever the concurrency. A
lock not granted within PostgreSQL's `lock_timeout` is answered "busy, try again".

A seat is *taken* by a booking that is confirmed, attended or a no-show, and by a
waitlisted learner to whom a freed seat is currently offered (`offer_expires_at`
in the future): the offered seat is held for them until they confirm or the
offer lapses, and nobody else may book it meanwhile.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from dateutil.rrule import WEEKLY, rrule, rrulestr
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from icalendar import vRecur

from fablab_ops import policy
from fablab_ops.accounts.services import require_booking_consent, require_verified_email
from fablab_ops.courses.models import (
    SEAT_HOLDING,
    Course,
    CourseKind,
    InductionResult,
    SeatBooking,
    SeatStatus,
    Session,
    SessionMessage,
    SessionSeries,
    SessionStatus,
)
from fablab_ops.errors import Conflict, DomainError, NotFound, PermissionDenied
from fablab_ops.notifications import Outbox, notify
from fablab_ops.rows import Prepared, Writes, columns, instances, moment

MAX_SERIES_OCCURRENCES = 200


# --- reading ---------------------------------------------------------------

def seats_taken(session: Session, now: datetime | None = None) -> int:
    """Seats booked (confirmed, attended, no-show) plus seats held for outstanding offers: the one count
    every capacity decision uses."""
    now = now or timezone.now()
    return session.bookings.filter(
        Q(status__in=SEAT_HOLDING) | Q(status=SeatStatus.WAITLISTED, offer_expires_at__gt=now)
    ).count()


def _check_seats(session: Session, now: datetime) -> None:
    """Capacity is one rule: seats booked and seats held for offers never exceed the capacity.

    Every path that changes a session's capacity or its seats (booking, confirming an offer, a capacity
    cut on the page, the API, the admin or a series change) goes through here with the session locked and
    counted (`_count_seats`).
    """
    taken = session.taken
    if taken > session.capacity:
        raise Conflict(
            _("Đã có %(n)d chỗ được giữ (kể cả chỗ đang mời người trong danh sách chờ); "
              "không thể giảm số chỗ xuống dưới mức đó.") % {"n": taken},
            code="capacity_below_bookings",
        )


def waiting_count(session: Session, now: datetime | None = None) -> int:
    """Learners still waiting for a seat (those holding an offer are not waiting any more)."""
    now = now or timezone.now()
    return session.bookings.filter(status=SeatStatus.WAITLISTED).exclude(offer_expires_at__gt=now).count()


def with_availability(sessions, now: datetime | None = None):
    """Annotate a Session queryset with `taken` and `waiting` in one query."""
    now = now or timezone.now()
    offered = Q(bookings__status=SeatStatus.WAITLISTED, bookings__offer_expires_at__gt=now)
    return sessions.annotate(
        taken=Count("bookings", filter=Q(bookings__status__in=SEAT_HOLDING) | offered),
        waiting=Count("bookings", filter=Q(bookings__status=SeatStatus.WAITLISTED) & ~offered),
    )


def count_sessions(sessions) -> None:
    """Put `taken` and `waiting` (as `with_availability`) on sessions already read, in one query for all."""
    sessions = list(sessions)
    counts = {pk: (taken, waiting) for pk, taken, waiting in with_availability(
        Session.objects.filter(pk__in={s.pk for s in sessions})).values_list("pk", "taken", "waiting")}
    for session in sessions:
        session.taken, session.waiting = counts.get(session.pk, (0, 0))


def has_offer(booking: SeatBooking, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (booking.status == SeatStatus.WAITLISTED and booking.offer_expires_at is not None
            and booking.offer_expires_at > now)


def waiting_place(now: datetime | None = None) -> Subquery:
    """A waitlisted booking's place among those still waiting, as `waiting_count` counts them: the people ahead
    who hold an offer are not waiting any more, so "3 waiting" and "you are 4th" are never shown together.
    (`waitlist_position` keeps the order, offers included.) For `.annotate(waiting_place=…)` on bookings."""
    now = now or timezone.now()
    return Subquery(
        SeatBooking.objects.filter(session=OuterRef("session"), status=SeatStatus.WAITLISTED,
                                   waitlist_position__lte=OuterRef("waitlist_position"))
        .exclude(offer_expires_at__gt=now).order_by().values("session").annotate(n=Count("pk")).values("n")[:1])


def bookings_of(learner, *, upcoming: bool, now: datetime | None = None):
    now = now or timezone.now()
    bookings = (SeatBooking.objects.filter(learner=learner).select_related("session__course", "session__lab")
                .annotate(waiting_place=waiting_place(now)))
    if upcoming:
        return bookings.filter(session__end__gte=now).order_by("session__start")
    return bookings.filter(session__end__lt=now).order_by("-session__start")


def booking_for(learner, booking_id: int, *, now: datetime | None = None) -> SeatBooking:
    """A learner's own booking, with its session (course and lab, `taken` and `waiting` counted) and its
    `waiting_place`, in one statement; anyone else's is simply not found."""
    found = Writes().read(OWN_BOOKING, {"now": moment(now or timezone.now()), "learner": None,
                                        "booking": booking_id, "owner": learner.pk})
    if not found:
        raise NotFound(_("Không tìm thấy lượt đăng ký."))
    row = found[0]
    session_end = sum(len(model._meta.concrete_fields) for model in (Session, Course, _Lab))
    booking_end = session_end + len(SeatBooking._meta.concrete_fields)
    session = _session_from(row[:session_end])
    (booking,) = instances(row[session_end:booking_end], SeatBooking)
    session.taken, session.waiting, booking.waiting_place = row[booking_end:]
    booking.session, booking.learner = session, learner
    return booking


# --- booking ---------------------------------------------------------------

@dataclass(frozen=True)
class BookingResult:
    booking: SeatBooking
    created: bool
    position: int | None  # the place among those waiting (as `waiting_place`), None for a seat


# A waiting list's order is its bookings' `waitlist_position`, ascending: a newcomer takes the number after the
# last, and nobody's number changes when someone leaves the list (renumbering everyone behind them rewrote
# the whole list at every departure: two statements of hundreds of rows on a summer programme's list). The
# place people are shown, "you are 3rd", is counted from the order (`waiting_place`).


# Every seat change starts here: the session's row locked, read with its course and lab in the same statement
# (`fablab_ops/rows.py`). `{where}` picks the session: by its id, or as the session of a learner's booking.
_Lab = Session.lab.field.related_model
LOCK_SESSION = (
    f'SELECT {columns(Session, "s")}, {columns(Course, "c")}, {columns(_Lab, "l")} '  # noqa: S608 - model names
    f'FROM "courses_session" s JOIN "courses_course" c ON c."id" = s."course_id" '
    f'LEFT JOIN "{_Lab._meta.db_table}" l ON l."id" = s."lab_id" '
    "WHERE {where}"
)
# The session of a learner's own booking (a booking never changes session).
OWN_BOOKINGS_SESSION = ('(SELECT "session_id" FROM "courses_seatbooking" '
                        'WHERE "id" = %(booking)s AND "learner_id" = %(owner)s)')


def _locking(where: str, label: str) -> Prepared:
    # SQLite (the laptop demo) has no row locks: its IMMEDIATE transactions hold the database's write lock.
    sql = LOCK_SESSION.format(where=where)
    return Prepared(f"{sql} FOR UPDATE OF s", label, elsewhere=sql)


LOCK_SESSION_BY_ID = _locking('s."id" = %s', "lock_session_by_id")
LOCK_SESSION_NAMED = _locking('s."id" = %(session)s', "lock_session")
LOCK_SESSION_OF_BOOKING = _locking(f's."id" = {OWN_BOOKINGS_SESSION}', "lock_session_of_booking")


def _session_from(row) -> Session | None:
    if row is None:
        return None
    session, course, lab = instances(row, Session, Course, _Lab)
    session.course, session.lab = course, lab
    return session


def _lock_then(lock: Prepared, then: Prepared, params: dict) -> tuple[Session | None, tuple | None]:
    """Lock a session (`lock`, a form of LOCK_SESSION), then read `then`'s row: the second statement still runs
    after the first (its snapshot is taken once the lock is granted, so it sees every booking committed before).
    On PostgreSQL both go in one message (`Writes`): the lock is held one round trip less, and every booking of
    a flash crowd queues behind it."""
    writes, locked = Writes(), []
    writes.add(lock, params, then=locked.extend)
    found = writes.read(then, params)
    return _session_from(locked[0] if locked else None), (found[0] if found else None)


def _locked_session(session_id: int) -> Session:
    found = Writes().read(LOCK_SESSION_BY_ID, [session_id])
    session = _session_from(found[0] if found else None)
    if session is None:
        raise NotFound(_("Không tìm thấy buổi học."))
    return session


# What the rules below need to know about a session's bookings, as aggregates over them, in one statement
# written out (this runs under the session's lock on every seat change: the ORM would spend more time
# composing it than PostgreSQL spends answering it). `taken` and `waiting` are the figures every page
# shows (see `with_availability`); `waitlisted` counts everyone on the list (offers included), `unoffered`
# those not offered a seat yet, `lapsed` the offers that ran out, `last_position` the end of the list,
# `mine` the id of the given learner's live booking. Cancelled bookings count in none of them: leaving them out
# by the WHERE lets PostgreSQL read only the live ones, by the one-live-booking-per-learner index.
SEAT_COUNTS_OF = """
    SELECT count(*) FILTER (WHERE status IN ('confirmed', 'attended', 'no_show')
                                  OR (status = 'waitlisted' AND offer_expires_at > %(now)s)) AS taken,
           count(*) FILTER (WHERE status = 'waitlisted'
                                  AND (offer_expires_at IS NULL OR offer_expires_at <= %(now)s)) AS waiting,
           count(*) FILTER (WHERE status = 'waitlisted') AS waitlisted,
           count(*) FILTER (WHERE status = 'waitlisted' AND offer_expires_at IS NULL) AS unoffered,
           count(*) FILTER (WHERE status = 'waitlisted' AND offer_expires_at <= %(now)s) AS lapsed,
           coalesce(max(waitlist_position) FILTER (WHERE status = 'waitlisted'), 0) AS last_position,
           max(id) FILTER (WHERE learner_id = %(learner)s) AS mine
    FROM courses_seatbooking WHERE session_id = {session} AND status <> 'cancelled'
"""
SEAT_COUNTS = SEAT_COUNTS_OF.format(session="%(session)s")
SEAT_COUNT_NAMES = ("taken", "waiting", "waitlisted", "unoffered", "lapsed", "last_position", "mine")
assert set(SEAT_HOLDING) == {"confirmed", "attended", "no_show"}  # as written in SEAT_COUNTS
COUNT_SEATS = Prepared(SEAT_COUNTS, "seat_counts")
# With the key the next booking will take: on PostgreSQL the booking's row and its e-mail, which names it, are
# then written in one message; elsewhere none (the key comes with the INSERT).
NEXT_BOOKING_KEY = f"nextval(pg_get_serial_sequence('{SeatBooking._meta.db_table}', 'id'))"
COUNT_SEATS_AND_NEXT_KEY = Prepared(
    f"SELECT counts.*, {NEXT_BOOKING_KEY} AS next_booking_id FROM ({SEAT_COUNTS}) counts",  # noqa: S608
    "seat_counts_next_key",
    elsewhere=f"SELECT counts.*, NULL AS next_booking_id FROM ({SEAT_COUNTS}) counts")  # noqa: S608


def _locked_and_counted(session_id: int, now: datetime, learner=None, *, next_booking_id: bool = False) -> Session:
    """The session locked, with its seat counts (see `_count_seats`) read once the lock is granted; with
    `next_booking_id`, also the key the next booking will take (None but on PostgreSQL)."""
    counts, names = (COUNT_SEATS_AND_NEXT_KEY, (*SEAT_COUNT_NAMES, "next_booking_id")) if next_booking_id else (
        COUNT_SEATS, SEAT_COUNT_NAMES)
    session, found = _lock_then(LOCK_SESSION_NAMED, counts, {
        "now": moment(now), "session": session_id, "learner": getattr(learner, "pk", None)})
    if session is None:
        raise NotFound(_("Không tìm thấy buổi học."))
    for name, value in zip(names, found, strict=True):
        setattr(session, name, value)
    return session


def _count_seats(session: Session, now: datetime, learner=None) -> None:
    """Load the seat counts onto the locked session, in one statement run after the lock is granted (so it
    sees every booking committed before); with `learner`, also `mine`: the id of their live booking."""
    (counts,) = Writes().read(COUNT_SEATS, {"now": moment(now), "session": session.pk,
                                            "learner": getattr(learner, "pk", None)})
    for name, value in zip(SEAT_COUNT_NAMES, counts, strict=True):
        setattr(session, name, value)


# A learner's booking with its session's counts, read once the session is locked.
OWN_BOOKING_WITH_COUNTS = Prepared(
    f"SELECT {columns(SeatBooking, 'b')}, counts.* FROM courses_seatbooking b "  # noqa: S608 - model names
    f"CROSS JOIN ({SEAT_COUNTS_OF.format(session=OWN_BOOKINGS_SESSION)}) counts "
    'WHERE b."id" = %(booking)s AND b."learner_id" = %(owner)s', "own_booking_with_counts")


# A learner's booking as `booking_for` reads it: with its session, course and lab, the session's `taken` and
# `waiting`, and the booking's `waiting_place` (NULL for a seat: nobody on the list is at or before it), counted
# as `waiting_place()` counts it.
OWN_BOOKING = Prepared(
    f"SELECT {columns(Session, 's')}, {columns(Course, 'c')}, {columns(_Lab, 'l')}, "  # noqa: S608 - model names
    f"{columns(SeatBooking, 'b')}, counts.taken, counts.waiting, "
    "(SELECT nullif(count(*), 0) FROM courses_seatbooking w WHERE w.session_id = b.session_id "
    "AND w.status = 'waitlisted' AND w.waitlist_position <= b.waitlist_position "
    "AND (w.offer_expires_at IS NULL OR w.offer_expires_at <= %(now)s)) AS waiting_place "
    'FROM courses_seatbooking b JOIN "courses_session" s ON s."id" = b."session_id" '
    'JOIN "courses_course" c ON c."id" = s."course_id" '
    f'LEFT JOIN "{_Lab._meta.db_table}" l ON l."id" = s."lab_id" '
    f"CROSS JOIN ({SEAT_COUNTS_OF.format(session=OWN_BOOKINGS_SESSION)}) counts "
    'WHERE b."id" = %(booking)s AND b."learner_id" = %(owner)s', "own_booking")


def _locked_own_booking(booking_id: int, learner, now: datetime) -> tuple[Session, SeatBooking]:
    """A learner's booking with its session locked (the lock every seat change takes first) and counted.

    The booking is read after the lock, with the session's counts alongside it in the same statement.
    """
    session, row = _lock_then(LOCK_SESSION_OF_BOOKING, OWN_BOOKING_WITH_COUNTS,
                              {"now": moment(now), "learner": None, "booking": booking_id, "owner": learner.pk})
    if session is None or row is None:
        raise NotFound(_("Không tìm thấy lượt đăng ký."))
    width = len(SeatBooking._meta.concrete_fields)
    (booking,) = instances(row[:width], SeatBooking)
    for name, value in zip(SEAT_COUNT_NAMES, row[width:], strict=True):
        setattr(session, name, value)
    booking.session, booking.learner = session, learner
    return session, booking


def free_seats(session: Session) -> int:
    """What is left to give away; negative when a session is over its capacity. Needs `_count_seats`."""
    return session.capacity - session.taken


def book_seat(session_id: int, learner, *, now: datetime | None = None) -> BookingResult:
    """Book a seat, or a place on the waiting list when the session is full.

    Booking again while a booking is live returns that booking (created=False):
    a double click or a retried request books once. The returned booking's session carries
    `taken` and `waiting` as they stand after the booking.
    """
    require_verified_email(learner)
    return _book(session_id, learner, now or timezone.now())


def book_seat_for_pupil(session_id: int, pupil, *, by, now: datetime | None = None) -> BookingResult:
    """A coordinator books a seat for a pupil their school registered: the same capacity and waiting-list
    rules, and the same consent checks, but no e-mail address of the pupil's own to prove."""
    require_coordinator(by)
    require_booking_consent(pupil)
    return _book(session_id, pupil, now or timezone.now())


def _book(session_id: int, learner, now: datetime) -> BookingResult:
    outbox = Outbox()
    with Writes.atomic() as writes:
        session = _locked_and_counted(session_id, now, learner, next_booking_id=True)
        if session.mine is not None:
            existing = booking_for(learner, session.mine, now=now)
            existing.session = session
            return BookingResult(existing, False, existing.waiting_place)
        if session.status == SessionStatus.CANCELLED:
            raise Conflict(_("Buổi học này đã bị hủy."), code="session_cancelled")
        if not session.course.is_published:
            raise NotFound(_("Không tìm thấy buổi học."))
        if session.start <= now:
            raise Conflict(_("Buổi học đã bắt đầu, không thể đăng ký."), code="session_started")
        _settle(session, now, outbox, writes)
        if free_seats(session) > 0:
            booking = SeatBooking(pk=session.next_booking_id, session=session, learner=learner,
                                  status=SeatStatus.CONFIRMED, confirmed_at=now)
            writes.insert(booking)
            session.taken += 1
            outbox.add(learner, "seat_confirmed", dedup_key=f"seat-confirmed-{booking.pk}",
                       context={"booking": booking, "session": session})
            position = None
        else:
            booking = SeatBooking(pk=session.next_booking_id, session=session, learner=learner,
                                  status=SeatStatus.WAITLISTED, waitlist_position=session.last_position + 1)
            writes.insert(booking)
            session.last_position, session.waiting, session.waitlisted, session.unoffered = (
                booking.waitlist_position, session.waiting + 1, session.waitlisted + 1, session.unoffered + 1)
            _record_waitlist_length(session, writes)
            booking.waiting_place = position = session.waiting  # the last of those waiting
            outbox.add(learner, "seat_waitlisted", dedup_key=f"seat-waitlisted-{booking.pk}",
                       context={"booking": booking, "session": session, "position": session.waiting})
        outbox.write(writes=writes)
    return BookingResult(booking, True, position)


def cancel_booking(booking_id: int, learner, *, now: datetime | None = None) -> SeatBooking:
    """A learner gives up their seat (or waiting-list place) before the deadline.

    The returned booking's session carries `taken` and `waiting` as they stand afterwards.
    """
    now = now or timezone.now()
    outbox = Outbox()
    with Writes.atomic() as writes:
        session, booking = _locked_own_booking(booking_id, learner, now)
        if booking.status == SeatStatus.CANCELLED:
            return booking
        if (refusal := _cancel_refusal(session, booking, now)) is not None:
            raise refusal
        _drop(session, booking, now, writes)
        outbox.add(learner, "seat_cancelled", dedup_key=f"seat-cancelled-{booking.pk}",
                   context={"booking": booking, "session": session})
        _settle(session, now, outbox, writes)
        outbox.write(writes=writes)
    return booking


def cancel_deadline(session: Session) -> datetime:
    return session.start - timedelta(hours=settings.FABLAB["BOOKING_CANCEL_DEADLINE_HOURS"])


def _cancel_refusal(session: Session, booking: SeatBooking, now: datetime) -> Conflict | None:
    """Why this booking cannot be given up now, or None when it can."""
    if booking.status not in (SeatStatus.CONFIRMED, SeatStatus.WAITLISTED):
        return Conflict(_("Buổi học đã diễn ra, không thể hủy."), code="session_over")
    # A waiting-list place can be given up at any time before the start: it frees nobody's seat.
    if booking.status == SeatStatus.CONFIRMED and now > cancel_deadline(session):
        return Conflict(
            _("Đã quá hạn hủy (%(hours)d giờ trước khi bắt đầu).")
            % {"hours": settings.FABLAB["BOOKING_CANCEL_DEADLINE_HOURS"]},
            code="deadline_passed",
        )
    if session.start <= now:
        return Conflict(_("Buổi học đã bắt đầu, không thể hủy."), code="session_started")
    return None


@dataclass(frozen=True)
class CancellationTerms:
    """What cancelling a booking would do now: the confirmation page says it before the learner decides."""

    booking: SeatBooking
    refusal: str | None  # why it cannot be cancelled; None when it can
    deadline: datetime
    gives_back_seat: bool  # a confirmed seat, or a seat held for them, goes back
    waiting: int  # people waiting, the first of whom is then offered that seat
    offer_hours: int


def cancellation_terms(booking_id: int, learner, *, now: datetime | None = None) -> CancellationTerms:
    now = now or timezone.now()
    booking = booking_for(learner, booking_id)
    session = booking.session
    if booking.status == SeatStatus.CANCELLED:
        refusal = _("Bạn đã hủy lượt đăng ký này.")
    else:
        refused = _cancel_refusal(session, booking, now)
        refusal = refused.message if refused else None
    gives_back_seat = booking.status == SeatStatus.CONFIRMED or has_offer(booking, now)
    return CancellationTerms(
        booking=booking, refusal=refusal, deadline=cancel_deadline(session), gives_back_seat=gives_back_seat,
        waiting=waiting_count(session, now) if gives_back_seat else 0,
        offer_hours=settings.FABLAB["WAITLIST_OFFER_HOURS"],
    )


def confirm_offer(booking_id: int, learner, *, now: datetime | None = None) -> SeatBooking:
    """A waitlisted learner takes the seat held for them."""
    now = now or timezone.now()
    outbox = Outbox()
    with Writes.atomic() as writes:
        session, booking = _locked_own_booking(booking_id, learner, now)
        if booking.status == SeatStatus.CONFIRMED:
            return booking
        if not has_offer(booking, now):
            raise Conflict(_("Không có chỗ nào đang được giữ cho bạn (hoặc đã hết hạn xác nhận)."),
                           code="no_offer")
        booking.status = SeatStatus.CONFIRMED
        booking.waitlist_position = None
        booking.offer_expires_at = None
        booking.confirmed_at = now
        writes.update(booking, ["status", "waitlist_position", "offer_expires_at", "confirmed_at", "updated_at"])
        session.waitlisted -= 1  # the seat was already counted as taken
        # The offered seat was already counted; this only catches a session that was over before.
        _check_seats(session, now)
        outbox.add(learner, "seat_confirmed", dedup_key=f"seat-confirmed-{booking.pk}",
                   context={"booking": booking, "session": session})
        outbox.write(writes=writes)
    return booking


def expire_offers(now: datetime | None = None) -> int:
    """Pass lapsed offers on to the next person waiting (Celery beat)."""
    now = now or timezone.now()
    session_ids = (SeatBooking.objects.filter(status=SeatStatus.WAITLISTED, offer_expires_at__lte=now)
                   .values_list("session_id", flat=True).distinct())
    expired = 0
    for session_id in list(session_ids):
        outbox = Outbox()
        with transaction.atomic():
            session = _locked_and_counted(session_id, now)
            expired += _settle(session, now, outbox)
            outbox.write()
    return expired


def _record_waitlist_length(session: Session, writes: Writes) -> None:
    if session.waitlisted > session.peak_waitlist:
        session.peak_waitlist = session.waitlisted
        writes.update(session, ["peak_waitlist"])


def _drop(session: Session, booking: SeatBooking, now: datetime, writes: Writes | None = None) -> None:
    """Cancel a booking, keeping the session's counts (see `_count_seats`) in step. With `writes`, the
    booking's UPDATE is queued there; without, it is written now."""
    if booking.status in SEAT_HOLDING or has_offer(booking, now):
        session.taken -= 1
    elif booking.status == SeatStatus.WAITLISTED:
        session.waiting -= 1
    if booking.status == SeatStatus.WAITLISTED:
        session.waitlisted -= 1
        session.unoffered -= booking.offer_expires_at is None
    booking.status = SeatStatus.CANCELLED
    booking.cancelled_at = now
    booking.waitlist_position = None
    booking.offer_expires_at = None
    fields = ["status", "cancelled_at", "waitlist_position", "offer_expires_at", "updated_at"]
    if writes is None:
        booking.save(update_fields=fields)
    else:
        writes.update(booking, fields)


OFFER_SEATS = Prepared(
    f'UPDATE "{SeatBooking._meta.db_table}" SET "offer_expires_at" = %s, "updated_at" = %s WHERE "id" IN ('  # noqa: S608
    f'SELECT "id" FROM "{SeatBooking._meta.db_table}" WHERE "session_id" = %s AND "status" = %s '
    'AND "offer_expires_at" IS NULL ORDER BY "waitlist_position" LIMIT %s) '
    'RETURNING "id", "learner_id", "waitlist_position"', "offer_seats")


def _offer_seats(session: Session, seats: int, expires: datetime, writes: Writes) -> list[tuple[int, int]]:
    """Hold a seat for each of the next `seats` people waiting, in one statement sent with the queued writes
    (a cancellation's own UPDATE comes first, so the cancelled place is not offered): [(booking id, learner
    id)]."""
    offered = writes.read(OFFER_SEATS, [moment(expires), moment(timezone.now()), session.pk, SeatStatus.WAITLISTED,
                                        seats])
    return [(booking_id, learner_id) for booking_id, learner_id, _position in sorted(offered, key=lambda row: row[2])]


def _settle(session: Session, now: datetime, outbox: Outbox, writes: Writes | None = None) -> int:
    """Expire lapsed offers, then offer every free seat to the next in line.

    Called with the session locked and counted (`_count_seats`). Returns how many offers lapsed. With
    `writes`, the UPDATEs go with the transaction's queued writes; the rows are read after what is queued.
    """
    own_writes = writes is None
    writes = writes or Writes()
    lapsed = []
    if session.lapsed:
        writes.send()  # the lapsed offers are read below: a queued cancellation must be in the database first
        lapsed = list(session.bookings.select_related("learner")
                      .filter(status=SeatStatus.WAITLISTED, offer_expires_at__lte=now)
                      .order_by("waitlist_position"))
        for booking in lapsed:
            _drop(session, booking, now, writes)
            outbox.add(booking.learner, "seat_offer_expired", dedup_key=f"seat-offer-expired-{booking.pk}",
                       context={"booking": booking, "session": session})
        session.lapsed = 0
    if session.status != SessionStatus.CANCELLED and session.start > now:
        _offer_free_seats(session, now, outbox, writes)
    if own_writes:
        writes.send()
    return len(lapsed)


def _offer_free_seats(session: Session, now: datetime, outbox: Outbox, writes: Writes) -> None:
    """Hold every free seat for the next people waiting, each told by e-mail, for WAITLIST_OFFER_HOURS (never
    past the start)."""
    free = free_seats(session)
    if free > 0 and session.unoffered > 0:
        expires = min(now + timedelta(hours=settings.FABLAB["WAITLIST_OFFER_HOURS"]), session.start)
        offered = _offer_seats(session, free, expires, writes)
        session.taken += len(offered)
        session.waiting -= len(offered)
        session.unoffered -= len(offered)
        for booking_id, learner_id in offered:
            outbox.add(learner_id, "seat_offered", dedup_key=f"seat-offered-{booking_id}-{expires.isoformat()}",
                       context={"booking": SeatBooking(pk=booking_id), "session": session, "expires": expires})


def drop_future_seats(learner, *, now: datetime | None = None) -> int:
    """Give up every seat and waiting-list place `learner` holds in sessions still to come, as cancellations
    would (the freed seats are offered to the next in line); past seats stay as they were. How many were dropped.

    For a person whose processing stops (erasure, a guardian's withdrawal); the learner is not told.
    """
    now = now or timezone.now()
    live = [SeatStatus.CONFIRMED, SeatStatus.WAITLISTED]
    dropped = 0
    with transaction.atomic():
        session_ids = set(SeatBooking.objects.filter(learner=learner, status__in=live, session__start__gt=now)
                          .values_list("session_id", flat=True))
        # Locked in a fixed order, as every seat change locks its session first.
        for session in Session.objects.select_for_update(of=("self",)).filter(pk__in=session_ids).order_by("pk"):
            _count_seats(session, now)
            outbox = Outbox()
            for booking in SeatBooking.objects.filter(session=session, learner=learner, status__in=live):
                _drop(session, booking, now)
                dropped += 1
            _settle(session, now, outbox)
            outbox.write()
    return dropped


# --- coordinators ----------------------------------------------------------

def require_coordinator(user) -> None:
    if not policy.may_manage_courses(user):
        raise PermissionDenied(_("Chỉ điều phối viên mới được lên lịch lớp học."), code="coordinators_only")


def check_capacity(course: Course, capacity: int) -> None:
    if not course.min_capacity <= capacity <= course.max_capacity:
        raise DomainError(
            _("Số chỗ phải từ %(low)d đến %(high)d.") % {"low": course.min_capacity, "high": course.max_capacity},
            code="capacity_out_of_range",
        )


def _local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, timezone.get_default_timezone())


INVALID_RULE = _lazy("Quy tắc lặp không hợp lệ. Hãy viết theo dạng FREQ=WEEKLY;BYDAY=SA;COUNT=12 "
                     "(xem RFC 5545), hoặc để trống ô này và chọn các ngày trong tuần ở trên.")
RULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")  # by Python's weekday(): Monday is 0


def _recurrence(rule: str, dtstart: datetime):
    """The rule as dateutil reads it; a rule it cannot read is refused in the coordinator's words, never with
    the parser's own message (which is in English and speaks of Python)."""
    text = (rule or "").strip().removeprefix("RRULE:")
    if not text:
        raise DomainError(INVALID_RULE, code="invalid_rule")
    try:
        return rrulestr(text, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as error:
        raise DomainError(INVALID_RULE, code="invalid_rule") from error


def weekly_rule(*, weekdays, first_date: date, interval: int = 1, until: date | None = None,
                count: int | None = None, exception_dates: list[date] | None = None) -> str:
    """The RRULE of the coordinator's picker: on these weekdays, every `interval` weeks, ending on a date or
    after `count` sittings. A sitting that falls on a skipped date (a holiday) is not one of the `count`: the
    rule's COUNT (which RFC 5545 counts before exclusions) takes the skipped ones in as well."""
    days = sorted({int(day) for day in weekdays})
    if not days or any(not 0 <= day <= 6 for day in days):
        raise DomainError(_("Chọn ít nhất một ngày trong tuần."), code="no_weekday")
    if not 1 <= interval <= 52:
        raise DomainError(_("Số tuần giữa hai lần học phải từ 1 đến 52."), code="invalid_interval")
    if (until is None) == (count is None):
        raise DomainError(_("Chọn một cách kết thúc: đến một ngày, hoặc sau một số buổi."), code="no_end")
    parts = {"FREQ": "WEEKLY", "INTERVAL": interval, "BYDAY": [RULE_DAYS[day] for day in days], "WKST": "MO"}
    if until is not None:
        if until < first_date:
            raise DomainError(_("Ngày kết thúc phải từ ngày bắt đầu trở đi."), code="until_before_start")
        parts["UNTIL"] = datetime.combine(until, time(23, 59, 59))
    else:
        if not 1 <= count <= MAX_SERIES_OCCURRENCES:
            raise DomainError(_("Số buổi phải từ 1 đến %(n)d.") % {"n": MAX_SERIES_OCCURRENCES}, code="invalid_count")
        skipped = set(exception_dates or [])
        shape = rrule(WEEKLY, dtstart=datetime.combine(first_date, time()), interval=interval, byweekday=days,
                      wkst=0)
        kept = total = 0
        for occurrence in shape:
            total += 1
            kept += occurrence.date() not in skipped
            if kept == count or total > MAX_SERIES_OCCURRENCES:
                break
        parts["COUNT"] = total
    return vRecur(parts).to_ical().decode()


def preview_series(*, rule: str, first_date: date, start_time: time, end_time: time,
                   exception_dates: list[date] | None = None) -> list[tuple[datetime, datetime]]:
    """The sittings a recurrence rule gives, in local time, without saving anything."""
    if end_time <= start_time:
        raise DomainError(_("Giờ kết thúc phải sau giờ bắt đầu."), code="end_before_start")
    recurrence = _recurrence(rule, datetime.combine(first_date, start_time))
    skipped = set(exception_dates or [])
    sittings = []
    for occurrence in recurrence:
        if len(sittings) >= MAX_SERIES_OCCURRENCES:
            raise DomainError(_("Quy tắc lặp cho quá nhiều buổi (tối đa %(n)d); hãy thêm UNTIL hoặc COUNT.")
                              % {"n": MAX_SERIES_OCCURRENCES}, code="rule_too_long")
        if occurrence.date() in skipped:
            continue
        sittings.append((_local(occurrence.date(), start_time), _local(occurrence.date(), end_time)))
    return sittings


@transaction.atomic
def create_series(*, course: Course, by, rule: str, first_date: date, start_time: time, end_time: time,
                  capacity: int, lab=None, place: str = "", exception_dates: list[date] | None = None
                  ) -> SessionSeries:
    require_coordinator(by)
    check_capacity(course, capacity)
    sittings = preview_series(rule=rule, first_date=first_date, start_time=start_time, end_time=end_time,
                              exception_dates=exception_dates)
    if not sittings:
        raise DomainError(_("Quy tắc lặp không tạo ra buổi học nào."), code="empty_series")
    series = SessionSeries.objects.create(
        course=course, rule=rule.strip(), first_date=first_date, start_time=start_time, end_time=end_time,
        exception_dates=[d.isoformat() for d in exception_dates or []], capacity=capacity, lab=lab, place=place,
        created_by=by,
    )
    Session.objects.bulk_create([
        Session(course=course, series=series, start=start, end=end, capacity=capacity, lab=lab, place=place)
        for start, end in sittings
    ])
    return series


def schedule_session(*, course: Course, by, start: datetime, end: datetime, capacity: int | None = None,
                     lab=None, place: str = "") -> Session:
    """One sitting of a course, outside any series; the course's default capacity and lab unless given."""
    require_coordinator(by)
    capacity = capacity or course.default_capacity
    check_capacity(course, capacity)
    if end <= start:
        raise DomainError(_("Giờ kết thúc phải sau giờ bắt đầu."), code="end_before_start")
    return Session.objects.create(course=course, start=start, end=end, capacity=capacity,
                                  lab=lab or course.lab, place=place)


def update_session(session_id: int, *, by, now: datetime | None = None, **changes) -> Session:
    """Edit one sitting (time, capacity, place); it leaves its series' later changes."""
    require_coordinator(by)
    now = now or timezone.now()
    with transaction.atomic():
        session = _locked_session(session_id)
        if session.status == SessionStatus.CANCELLED:
            raise Conflict(_("Buổi học này đã bị hủy."), code="session_cancelled")
        outbox = Outbox()
        _apply_changes(session, changes, now, outbox)
        session.detached = session.series_id is not None
        session.save()
        outbox.write()
        return session


def _apply_changes(session: Session, changes: dict, now: datetime, outbox: Outbox) -> None:
    allowed = {"start", "end", "capacity", "lab", "place"}
    unknown = set(changes) - allowed
    if unknown:
        raise DomainError(_("Không thể sửa: %(fields)s") % {"fields": ", ".join(sorted(unknown))},
                          code="invalid_field")
    for field, value in changes.items():
        setattr(session, field, value)
    if session.end <= session.start:
        raise DomainError(_("Giờ kết thúc phải sau giờ bắt đầu."), code="end_before_start")
    check_capacity(session.course, session.capacity)
    _count_seats(session, now)
    _check_seats(session, now)
    if "capacity" in changes:
        _settle(session, now, outbox)


def change_series_from(series_id: int, from_date: date, *, by, start_time: time | None = None,
                       end_time: time | None = None, capacity: int | None = None, place: str | None = None,
                       now: datetime | None = None) -> int:
    """Change the remaining sittings of a series from a date on; detached ones stay as edited."""
    require_coordinator(by)
    now = now or timezone.now()
    with transaction.atomic():
        series = SessionSeries.objects.select_for_update().filter(pk=series_id).first()
        if series is None:
            raise NotFound(_("Không tìm thấy chuỗi buổi học."))
        series.start_time = start_time or series.start_time
        series.end_time = end_time or series.end_time
        series.capacity = capacity or series.capacity
        series.place = series.place if place is None else place
        if series.end_time <= series.start_time:
            raise DomainError(_("Giờ kết thúc phải sau giờ bắt đầu."), code="end_before_start")
        series.save()
        changed = 0
        remaining = (series.sessions.filter(start__gte=_local(from_date, time.min), detached=False)
                     .exclude(status=SessionStatus.CANCELLED).order_by("start"))
        for session_id in remaining.values_list("pk", flat=True):
            session = _locked_session(session_id)
            day = timezone.localtime(session.start).date()
            outbox = Outbox()
            _apply_changes(session, {"start": _local(day, series.start_time), "end": _local(day, series.end_time),
                                     "capacity": series.capacity, "place": series.place}, now, outbox)
            outbox.write()
            session.save()
            if session.bookings.exclude(status=SeatStatus.CANCELLED).exists():
                _tell_booked(session, "session_changed", f"changed-{session.pk}-{session.start.isoformat()}")
            changed += 1
        return changed


def cancel_session(session_id: int, *, by=None, reason: str = "", now: datetime | None = None) -> Session:
    """Cancel a sitting: everyone booked or waiting is told once, with the reason; no seat is passed on.

    A person cancelling must say why (the reason goes into every learner's e-mail); the automatic
    cancellation of an undersubscribed session gives its own.
    """
    if by is not None:
        require_coordinator(by)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError(_("Cần ghi lý do hủy: lý do được gửi tới mọi học viên của buổi học."),
                          code="reason_required")
    now = now or timezone.now()
    with transaction.atomic():
        session = _locked_session(session_id)
        if session.status == SessionStatus.CANCELLED:
            return session
        session.status = SessionStatus.CANCELLED
        session.cancel_reason = reason[:300]
        session.cancelled_at = now
        session.save(update_fields=["status", "cancel_reason", "cancelled_at", "updated_at"])
        _tell_booked(session, "session_cancelled", f"session-cancelled-{session.pk}")
        session.bookings.filter(status__in=[SeatStatus.CONFIRMED, SeatStatus.WAITLISTED]).update(
            status=SeatStatus.CANCELLED, cancelled_at=now, waitlist_position=None, offer_expires_at=None,
            updated_at=now,
        )
        return session


def to_be_told(session: Session):
    """Who a cancellation tells: the learners booked or waiting, seats first, then the waiting list in order."""
    return list(session.bookings.select_related("learner")
                .filter(status__in=[SeatStatus.CONFIRMED, SeatStatus.WAITLISTED])
                .order_by("status", "waitlist_position", "learner__full_name"))


def _tell_booked(session: Session, kind: str, key: str) -> None:
    outbox = Outbox()
    for booking in session.bookings.filter(status__in=[SeatStatus.CONFIRMED, SeatStatus.WAITLISTED]):
        outbox.add(booking.learner_id, kind, dedup_key=f"{key}-{booking.pk}",
                   context={"booking": booking, "session": session})
    outbox.write()


def cancel_undersubscribed(now: datetime | None = None) -> list[int]:
    """At each course's decision time, cancel sessions still below its minimum (Celery beat)."""
    now = now or timezone.now()
    due = (Session.objects.filter(status=SessionStatus.SCHEDULED, minimum_checked_at__isnull=True,
                                  course__min_learners__gt=0, start__gt=now)
           .select_related("course"))
    cancelled = []
    for session in due:
        if session.start - timedelta(hours=session.course.decision_hours_before) > now:
            continue
        with transaction.atomic():
            locked = _locked_session(session.pk)
            if locked.minimum_checked_at is not None:
                continue
            held = locked.bookings.filter(status__in=SEAT_HOLDING).count()
            Session.objects.filter(pk=locked.pk).update(minimum_checked_at=now)
            if held < locked.course.min_learners:
                cancel_session(locked.pk, reason=_("Không đủ số học viên tối thiểu (%(held)d/%(min)d).")
                               % {"held": held, "min": locked.course.min_learners}, now=now)
                cancelled.append(locked.pk)
    return cancelled


def send_reminders(now: datetime | None = None, *, ahead: timedelta = timedelta(hours=24)) -> int:
    """Remind confirmed learners of tomorrow's class; the dedup key makes a second run send nothing."""
    now = now or timezone.now()
    bookings = (SeatBooking.objects.filter(status=SeatStatus.CONFIRMED, session__status=SessionStatus.SCHEDULED,
                                           session__start__gt=now, session__start__lte=now + ahead)
                .select_related("learner", "session__course", "session__lab"))
    sent = 0
    for booking in bookings:
        _notification, created = notify(booking.learner, "seat_reminder",
                                        dedup_key=f"seat-reminder-{booking.pk}",
                                        context={"booking": booking, "session": booking.session})
        sent += created
    return sent


def mark_no_shows(now: datetime | None = None) -> int:
    """After a session ends, confirmed learners who never checked in become no-shows (Celery beat)."""
    now = now or timezone.now()
    return (SeatBooking.objects.filter(status=SeatStatus.CONFIRMED, session__end__lt=now)
            .exclude(session__status=SessionStatus.CANCELLED)
            .update(status=SeatStatus.NO_SHOW, updated_at=now))


def rotate_ticket(booking_id: int, learner) -> SeatBooking:
    """Issue a new QR ticket; the old one stops working (e.g. a screenshot was shared)."""
    from fablab_ops.booking.tickets import new_ticket_code

    booking = booking_for(learner, booking_id)
    booking.ticket_code = new_ticket_code()
    booking.save(update_fields=["ticket_code", "updated_at"])
    return booking


# --- coordinators' pages -------------------------------------------------------

COURSE_FIELDS = ("kind", "slug", "title_vi", "title_en", "description", "description_en", "prerequisites",
                 "prerequisites_en", "what_to_bring", "what_to_bring_en", "instructor", "lab", "certifies",
                 "default_capacity", "min_capacity", "max_capacity", "min_learners", "decision_hours_before",
                 "is_published")


def slug_for(title: str) -> str:
    """A course's address from its Vietnamese title (đ has no decomposition, so it is spelled out)."""
    from django.utils.text import slugify

    base = slugify(title.replace("đ", "d").replace("Đ", "D"))[:70] or "khoa-hoc"
    slug, n = base, 2
    while Course.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


@transaction.atomic
def save_course(*, by, course: Course | None = None, **fields) -> Course:
    """Create a course, or change one: the capacities stay in order and only inductions certify."""
    require_coordinator(by)
    unknown = set(fields) - set(COURSE_FIELDS)
    if unknown:
        raise DomainError(_("Không thể sửa: %(fields)s") % {"fields": ", ".join(sorted(unknown))},
                          code="invalid_field")
    course = course or Course()
    for name, value in fields.items():
        setattr(course, name, value)
    if not course.slug:
        course.slug = slug_for(course.title_vi)
    if not 1 <= course.min_capacity <= course.default_capacity <= course.max_capacity:
        raise DomainError(_("Số chỗ phải thỏa: 1 ≤ tối thiểu ≤ mặc định ≤ tối đa."), code="capacity_out_of_range")
    if course.certifies_id is not None and course.kind != CourseKind.INDUCTION:
        raise DomainError(_("Chỉ khóa hướng dẫn sử dụng thiết bị mới cấp quyền sử dụng máy."),
                          code="only_inductions_certify")
    if Course.objects.filter(slug=course.slug).exclude(pk=course.pk).exists():
        raise Conflict(_("Đường dẫn này đã được khóa học khác dùng."), code="slug_taken")
    course.save()
    return course


@dataclass(frozen=True)
class Roster:
    session: Session
    booked: list  # seats held: confirmed, attended, no-show, by name
    waiting: list  # the waiting list in order (a held offer shows its expiry)
    cancelled: int
    shows_contacts: bool
    messages: list


def _require_roster(by, session: Session | None, *, allowed: bool | None = None) -> None:
    """Refuse a session that does not exist, or whose roster `by` may not see (`allowed`, when the policy was
    already asked)."""
    if session is None:
        raise NotFound(_("Không tìm thấy buổi học."))
    if not (policy.may_see_roster(by, session) if allowed is None else allowed):
        raise PermissionDenied(_("Bạn không phụ trách phòng lab này."), code="not_lab_staff")


def roster(session_id: int, *, by) -> Roster:
    """A session's learners for its staff: names and attendance; contact data for coordinators only."""
    session = (with_availability(Session.objects.select_related("course", "lab", "course__certifies"))
               .filter(pk=session_id).first())
    _require_roster(by, session)
    bookings = session.bookings.select_related("learner", "checked_in_by")
    return Roster(
        session=session,
        booked=list(bookings.filter(status__in=SEAT_HOLDING).order_by("learner__full_name")),
        waiting=list(bookings.filter(status=SeatStatus.WAITLISTED).order_by("waitlist_position")),
        cancelled=bookings.filter(status=SeatStatus.CANCELLED).count(),
        shows_contacts=policy.sees_contact_details(by),
        messages=list(session.messages.select_related("sent_by")[:20]) if policy.may_manage_courses(by) else [],
    )


def sign_in_sessions(session_ids, *, by) -> list[tuple[Session, list[str]]]:
    """The sessions of a sign-in sheet, each with its learners' names (seats held, as the roster lists them),
    in the order asked; refused as the roster of the first one that is missing or may not be seen."""
    sessions = Session.objects.select_related("course", "lab").in_bulk(set(session_ids))
    # Who may see a roster depends on the session's lab: the policy is asked once per lab, so a sheet of a
    # term's sessions costs what one session's does.
    allowed = {}
    for session_id in session_ids:
        session = sessions.get(session_id)
        if session is not None and session.lab_id not in allowed:
            allowed[session.lab_id] = policy.may_see_roster(by, session)
        _require_roster(by, session, allowed=session is not None and allowed[session.lab_id])
    names = {session_id: [] for session_id in sessions}
    for session_id, name in (SeatBooking.objects.filter(session__in=list(sessions), status__in=SEAT_HOLDING)
                             .order_by("learner__full_name").values_list("session_id", "learner__full_name")):
        names[session_id].append(name)
    return [(sessions[session_id], names[session_id]) for session_id in session_ids]


def message_learners(session_id: int, *, by, key, subject: str, body: str, include_waitlist: bool = False,
                     now: datetime | None = None) -> tuple[SessionMessage, bool]:
    """Send a coordinator's message to a session's booked learners, once each, through the outbox.

    `key` comes from the form: sending the same form twice sends nothing more.
    """
    require_coordinator(by)
    subject, body = subject.strip(), body.strip()
    if not subject or not body:
        raise DomainError(_("Cần có tiêu đề và nội dung."), code="message_empty")
    now = now or timezone.now()
    with transaction.atomic():
        session = _locked_session(session_id)
        existing = SessionMessage.objects.filter(key=key).first()
        if existing is not None:
            return existing, False
        if session.status == SessionStatus.CANCELLED:
            raise Conflict(_("Buổi học này đã bị hủy."), code="session_cancelled")
        statuses = [SeatStatus.CONFIRMED, SeatStatus.ATTENDED] + ([SeatStatus.WAITLISTED] if include_waitlist else [])
        bookings = list(session.bookings.filter(status__in=statuses))
        message = SessionMessage.objects.create(key=key, session=session, subject=subject[:150], body=body,
                                                include_waitlist=include_waitlist, recipients=len(bookings),
                                                sent_by=by, sent_at=now)
        outbox = Outbox()
        for booking in bookings:
            outbox.add(booking.learner_id, "session_message",
                       dedup_key=f"session-message-{message.pk}-{booking.pk}",
                       context={"booking": booking, "session": session, "message": message})
        outbox.write()
        return message, True


# --- inductions ----------------------------------------------------------------

def inductions_to_mark(*, by, now: datetime | None = None, days: int = 60):
    """Inductions that have started, at the labs `by` may mark for, most recent first."""
    now = now or timezone.now()
    sessions = (Session.objects.filter(course__certifies__isnull=False, start__lte=now,
                                       start__gte=now - timedelta(days=days))
                .exclude(status=SessionStatus.CANCELLED).select_related("course", "lab", "course__certifies")
                .annotate(attendees=Count("bookings", filter=Q(bookings__status=SeatStatus.ATTENDED)),
                          marked=Count("bookings", filter=Q(bookings__status=SeatStatus.ATTENDED)
                                       & ~Q(bookings__induction_result="")))
                .order_by("-start"))
    if not policy.is_network_staff(by):
        sessions = sessions.filter(lab__in=policy.marking_labs(by))
    return sessions


def induction_attendees(session_id: int, *, by):
    session = Session.objects.select_related("course__certifies", "lab").filter(pk=session_id).first()
    if session is None or session.course.certifies_id is None:
        raise NotFound(_("Không tìm thấy buổi hướng dẫn."))
    policy.require_induction_marker(by, session)
    bookings = (session.bookings.filter(status__in=SEAT_HOLDING).select_related("learner", "induction_marked_by")
                .order_by("learner__full_name"))
    return session, list(bookings)


def mark_induction(booking_id: int, *, passed: bool, by, note: str = "", now: datetime | None = None) -> SeatBooking:
    """The trainer's verdict on one attendee after the induction: passing certifies, failing is recorded.

    Only the technicians of the lab that ran it and coordinators may mark; a learner who was not checked in
    cannot pass. Marking again with the other verdict corrects it (a pass taken back revokes what it granted).
    """
    from fablab_ops.booking import services as booking_services

    now = now or timezone.now()
    with transaction.atomic():
        session_id = SeatBooking.objects.filter(pk=booking_id).values_list("session_id", flat=True).first()
        if session_id is None:
            raise NotFound(_("Không tìm thấy lượt đăng ký."))
        session = _locked_session(session_id)
        if session.course.certifies_id is None:
            raise NotFound(_("Không tìm thấy buổi hướng dẫn."))
        policy.require_induction_marker(by, session)
        booking = session.bookings.select_related("learner").get(pk=booking_id)
        if session.status == SessionStatus.CANCELLED:
            raise Conflict(_("Buổi học này đã bị hủy."), code="session_cancelled")
        if session.start > now:
            raise Conflict(_("Buổi hướng dẫn chưa bắt đầu: chỉ đánh giá sau khi học viên đã học."),
                           code="induction_not_started")
        if booking.status != SeatStatus.ATTENDED:
            raise Conflict(_("Học viên chưa được check-in ở buổi này nên không thể đánh giá."),
                           code="not_attended")
        result = InductionResult.PASSED if passed else InductionResult.NOT_PASSED
        note = note.strip()[:300]
        if booking.induction_result == result and booking.induction_note == note:
            return booking
        previous = booking.induction_result
        booking.induction_result = result
        booking.induction_marked_at = now
        booking.induction_marked_by = by
        booking.induction_note = note
        booking.save(update_fields=["induction_result", "induction_marked_at", "induction_marked_by",
                                    "induction_note", "updated_at"])
        booking.session = session
        if passed:
            booking_services.certify_passed_induction(booking, by, now, note=note)
        elif previous == InductionResult.PASSED:
            booking_services.revoke_certification_from_attendance(
                booking, by, now, reason=note or _("Đánh giá lại: chưa đạt buổi hướng dẫn"))
        return booking


@dataclass(frozen=True)
class CertificationStatus:
    certification: object
    expires: datetime | None  # None: never lapses


@dataclass(frozen=True)
class MissingType:
    machine_type: object
    next_induction: Session | None  # the next one with a free seat


def certification_overview(learner, now: datetime | None = None) -> tuple[list, list]:
    """A learner's certifications with their expiry, and for each machine type they lack the next induction
    with a free seat."""
    from fablab_ops.booking.models import Certification
    from fablab_ops.booking.services import with_last_use
    from fablab_ops.machines.models import MachineStatus, MachineType

    now = now or timezone.now()
    active = with_last_use(Certification.objects.filter(user=learner, revoked_at__isnull=True)
                           .select_related("machine_type").order_by("machine_type__name_vi"))
    held = []
    for certification in active:
        days = certification.machine_type.certification_lapse_days
        held.append(CertificationStatus(certification,
                                        certification.last_use + timedelta(days=days) if days else None))
    lacking = list(MachineType.objects.filter(requires_induction=True)
                   .filter(machines__status__in=[s for s in MachineStatus.values if s != MachineStatus.RETIRED])
                   .exclude(pk__in=[c.certification.machine_type_id for c in held]).distinct().order_by("name_vi"))
    coming = next_inductions(lacking, now)
    return held, [MissingType(machine_type, coming.get(machine_type.pk)) for machine_type in lacking]


def next_induction(machine_type, now: datetime | None = None) -> Session | None:
    """The next published induction certifying this machine type that still has a free seat."""
    return next_inductions([machine_type], now).get(machine_type.pk)


def next_inductions(machine_types, now: datetime | None = None) -> dict[int, Session]:
    """For each of these machine types that has one, the next published induction certifying it that still has
    a free seat (by machine type id), in one query."""
    now = now or timezone.now()
    upcoming = (with_availability(Session.objects.filter(
        course__certifies__in=machine_types, course__is_published=True, status=SessionStatus.SCHEDULED,
        start__gt=now).select_related("course", "lab"), now).filter(taken__lt=F("capacity"))
        .annotate(rank=Window(RowNumber(), partition_by=F("course__certifies"), order_by=[F("start"), F("pk")]))
        .filter(rank=1))
    return {session.course.certifies_id: session for session in upcoming}
