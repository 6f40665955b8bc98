"""Courses API: browse sessions, book seats, manage the waiting list, schedule classes.

Refusals come back as `{"code", "message"}`: `session_full` never happens (a full
session puts you on the waiting list), but `session_cancelled`, `session_started`,
`deadline_passed`, `no_offer`, `capacity_out_of_range`, `invalid_rule`,
`coordinators_only`, `email_unverified` (403: the account's address is not confirmed yet), `busy` (503,
retry) do.
"""

from datetime import datetime

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import Field, Router, Schema, Status
from pydantic import BaseModel

from fablab_ops.booking import tickets
from fablab_ops.courses import calendar, services
from fablab_ops.courses.models import Course, CourseKind, SeatBooking, SeatStatus, Session
from fablab_ops.machines.models import Lab
from fablab_ops.validation import Count, DbId, LocalTime, PlanDate, PlanDateTime, Slug, text

router = Router(tags=["courses"])


class ErrorOut(Schema):
    code: str
    message: str


class SessionOut(BaseModel):
    id: int
    course: str
    course_title: str
    kind: str
    lab: str | None = Field(description="Lab slug; null for an online session")
    place: str
    start: datetime
    end: datetime
    capacity: int
    seats_left: int
    waiting: int
    status: str


class BookingOut(BaseModel):
    id: int
    session: SessionOut
    status: str
    waitlist_position: int | None = Field(
        description="The booking's number in the waiting list's order, offers held included: a smaller number is "
                    "ahead; numbers are not changed when someone leaves the list, so show `waiting_place`")
    waiting_place: int | None = Field(
        None, description="Your place among those still waiting (as `waiting` counts them): the one to show people")
    offer_expires_at: datetime | None = Field(description="Set while a freed seat is held for you")
    ticket: str | None = Field(description="The signed QR token, once the seat is confirmed")
    calendar_url: str
    created: bool = False


class CourseIn(Schema):
    kind: CourseKind
    slug: Slug
    title_vi: text(200)
    title_en: text(200) = ""
    description: text(5000) = ""
    lab: Slug | None = None
    certifies: Slug | None = Field(None, description="Machine type slug an induction certifies for")
    default_capacity: Count = 20
    min_capacity: Count = 1
    max_capacity: Count = 20
    min_learners: Count = 0
    decision_hours_before: Count = 48


class CourseOut(Schema):
    id: int
    slug: str
    kind: str
    title: str
    lab: str | None
    default_capacity: int
    min_capacity: int
    max_capacity: int


class SeriesIn(Schema):
    course: Slug = Field(description="Course slug")
    rule: text(300) = Field(description="RFC 5545 RRULE, e.g. FREQ=MONTHLY;BYDAY=SA;BYSETPOS=2,4;COUNT=12",
                      examples=["FREQ=MONTHLY;BYDAY=SA;BYSETPOS=2,4;COUNT=12"])
    first_date: PlanDate
    start_time: LocalTime
    end_time: LocalTime
    capacity: Count
    lab: Slug | None = Field(None, description="Lab slug; null for online")
    place: text(300) = ""
    exception_dates: list[PlanDate] = Field([], max_length=400)


class SittingOut(Schema):
    start: datetime
    end: datetime


class SeriesOut(Schema):
    id: int
    sessions: list[int]


class SessionChangeIn(Schema):
    start: PlanDateTime | None = None
    end: PlanDateTime | None = None
    capacity: Count | None = None
    place: text(300) | None = None


class SeriesChangeIn(Schema):
    from_date: PlanDate
    start_time: LocalTime | None = None
    end_time: LocalTime | None = None
    capacity: Count | None = None
    place: text(300) | None = None


class CancelIn(Schema):
    reason: text(300) = Field("", description="Required: it goes into every learner's e-mail (`reason_required`)")


# The answers below are the fields of SessionOut and BookingOut as plain dicts: ninja validates what an operation
# returns against its response schema, so a Schema built here would be validated twice. Those two are plain
# pydantic models, not ninja Schemas: a Schema reads its input through an attribute getter meant for ORM objects,
# which cost a booking's answer about 40 µs more than the model's own validation (7 µs) on the benches' machine.

def session_out(session: Session) -> dict:
    taken = getattr(session, "taken", None)
    waiting = getattr(session, "waiting", None)
    if taken is None:
        taken, waiting = services.seats_taken(session), services.waiting_count(session)
    return {
        "id": session.id, "course": session.course.slug, "course_title": session.course.title,
        "kind": session.course.kind, "lab": session.lab.slug if session.lab else None, "place": session.place,
        "start": session.start, "end": session.end, "capacity": session.capacity,
        "seats_left": max(session.capacity - taken, 0), "waiting": waiting, "status": session.status,
    }


def booking_out(booking: SeatBooking, created: bool = False) -> dict:
    confirmed = booking.status in (SeatStatus.CONFIRMED, SeatStatus.ATTENDED)
    return {
        "id": booking.id, "session": session_out(booking.session), "status": booking.status,
        "waitlist_position": booking.waitlist_position, "waiting_place": getattr(booking, "waiting_place", None),
        "offer_expires_at": booking.offer_expires_at,
        "ticket": tickets.sign(tickets.SEAT, booking.ticket_code) if confirmed else None,
        "calendar_url": f"/api/courses/bookings/{booking.id}/calendar.ics", "created": created,
    }


def _lab(slug: str | None) -> Lab | None:
    return get_object_or_404(Lab, slug=slug) if slug else None


@router.get("/sessions", response=list[SessionOut], auth=None, summary="Upcoming sessions across the network")
def list_sessions(request, lab: Slug | None = None, kind: CourseKind | None = None,
                  date_from: PlanDate | None = None, date_to: PlanDate | None = None):
    sessions = Session.objects.filter(end__gte=timezone.now(), course__is_published=True)
    if lab:
        sessions = sessions.filter(lab__slug=lab)
    if kind:
        sessions = sessions.filter(course__kind=kind)
    if date_from:
        sessions = sessions.filter(start__date__gte=date_from)
    if date_to:
        sessions = sessions.filter(start__date__lte=date_to)
    sessions = services.with_availability(sessions.select_related("course", "lab")).order_by("start")
    return [session_out(s) for s in sessions[:500]]


@router.get("/sessions/{session_id}", response={200: SessionOut, 404: ErrorOut}, auth=None,
            summary="One session with seats left and waiting-list length")
def get_session(request, session_id: DbId):
    sessions = services.with_availability(Session.objects.select_related("course", "lab"))
    return session_out(get_object_or_404(sessions, pk=session_id, course__is_published=True))


@router.post("/sessions/{session_id}/book",
             response={200: BookingOut, 201: BookingOut, 403: ErrorOut, 409: ErrorOut},
             summary="Book a seat, or join the waiting list when full",
             description="201 with the new booking; 200 with your existing booking when you had one already "
                         "(a repeated request books once). A full session answers `status: waitlisted` with "
                         "your `waiting_place`. 403 `email_unverified` until the account's e-mail address "
                         "is confirmed.")
def book(request, session_id: DbId):
    result = services.book_seat(session_id, request.user)
    return Status(201 if result.created else 200, booking_out(result.booking, created=result.created))


@router.get("/bookings/mine", response=list[BookingOut], summary="My bookings, upcoming or past")
def my_bookings(request, past: bool = False):
    bookings = list(services.bookings_of(request.user, upcoming=not past))
    services.count_sessions([b.session for b in bookings])
    return [booking_out(b) for b in bookings]


@router.get("/bookings/{booking_id}", response={200: BookingOut, 404: ErrorOut}, summary="One of my bookings")
def get_booking(request, booking_id: DbId):
    return booking_out(services.booking_for(request.user, booking_id))


@router.post("/bookings/{booking_id}/cancel", response={200: BookingOut, 404: ErrorOut, 409: ErrorOut},
             summary="Cancel my seat or leave the waiting list (until the deadline)")
def cancel(request, booking_id: DbId):
    return booking_out(services.cancel_booking(booking_id, request.user))


@router.post("/bookings/{booking_id}/confirm", response={200: BookingOut, 404: ErrorOut, 409: ErrorOut},
             summary="Take the seat held for me from the waiting list")
def confirm(request, booking_id: DbId):
    return booking_out(services.confirm_offer(booking_id, request.user))


@router.post("/bookings/{booking_id}/rotate-ticket", response={200: BookingOut, 404: ErrorOut},
             summary="Issue a new QR ticket; the old one stops working")
def rotate_ticket(request, booking_id: DbId):
    return booking_out(services.rotate_ticket(booking_id, request.user))


@router.get("/bookings/{booking_id}/ticket.svg", summary="The QR ticket as SVG")
def ticket_svg(request, booking_id: DbId):
    booking = services.booking_for(request.user, booking_id)
    return HttpResponse(tickets.qr_svg(tickets.sign(tickets.SEAT, booking.ticket_code)),
                        content_type="image/svg+xml")


@router.get("/bookings/{booking_id}/calendar.ics", summary="The booking as an .ics event")
def booking_calendar(request, booking_id: DbId):
    booking = services.booking_for(request.user, booking_id)
    response = HttpResponse(calendar.seat_booking_ics(booking), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fablab-{booking.id}.ics"'
    return response


# --- coordinators ----------------------------------------------------------

@router.get("/courses", response=list[CourseOut], auth=None, summary="Published courses")
def list_courses(request):
    return [CourseOut(id=c.id, slug=c.slug, kind=c.kind, title=c.title, lab=c.lab.slug if c.lab else None,
                      default_capacity=c.default_capacity, min_capacity=c.min_capacity,
                      max_capacity=c.max_capacity)
            for c in Course.objects.filter(is_published=True).select_related("lab")]


@router.post("/courses", response={201: CourseOut, 403: ErrorOut}, summary="Create a course (coordinators)")
def create_course(request, payload: CourseIn):
    from fablab_ops.machines.models import MachineType

    services.require_coordinator(request.user)
    data = payload.dict()
    data["lab"] = _lab(data.pop("lab"))
    certifies = data.pop("certifies")
    data["certifies"] = get_object_or_404(MachineType, slug=certifies) if certifies else None
    course = Course(**data)
    course.full_clean()
    course.save()
    return Status(201, CourseOut(id=course.id, slug=course.slug, kind=course.kind, title=course.title,
                                 lab=course.lab.slug if course.lab else None,
                                 default_capacity=course.default_capacity, min_capacity=course.min_capacity,
                                 max_capacity=course.max_capacity))


@router.post("/series/preview", response={200: list[SittingOut], 400: ErrorOut, 403: ErrorOut},
             summary="Preview the dates a recurrence rule gives, without saving")
def preview_series(request, payload: SeriesIn):
    services.require_coordinator(request.user)
    sittings = services.preview_series(rule=payload.rule, first_date=payload.first_date,
                                       start_time=payload.start_time, end_time=payload.end_time,
                                       exception_dates=payload.exception_dates)
    return [SittingOut(start=start, end=end) for start, end in sittings]


@router.post("/series", response={201: SeriesOut, 400: ErrorOut, 403: ErrorOut},
             summary="Schedule a series of sessions from a recurrence rule")
def create_series(request, payload: SeriesIn):
    series = services.create_series(
        course=get_object_or_404(Course, slug=payload.course), by=request.user, rule=payload.rule,
        first_date=payload.first_date, start_time=payload.start_time, end_time=payload.end_time,
        capacity=payload.capacity, lab=_lab(payload.lab), place=payload.place,
        exception_dates=payload.exception_dates,
    )
    return Status(201, SeriesOut(id=series.id, sessions=list(series.sessions.values_list("pk", flat=True))))


@router.post("/series/{series_id}/change-from", response={200: dict, 400: ErrorOut, 403: ErrorOut},
             summary="Change the rest of a series from a date on")
def change_series(request, series_id: DbId, payload: SeriesChangeIn):
    changed = services.change_series_from(series_id, payload.from_date, by=request.user,
                                          **payload.dict(exclude={"from_date"}))
    return {"changed": changed}


@router.patch("/sessions/{session_id}", response={200: SessionOut, 400: ErrorOut, 403: ErrorOut, 409: ErrorOut},
              summary="Edit one session without touching the rest of its series")
def update_session(request, session_id: DbId, payload: SessionChangeIn):
    session = services.update_session(session_id, by=request.user, **payload.dict(exclude_none=True))
    return session_out(session)


@router.post("/sessions/{session_id}/cancel", response={200: SessionOut, 400: ErrorOut, 403: ErrorOut, 404: ErrorOut},
             summary="Cancel one session; everyone booked or waiting is told, with the reason (required)")
def cancel_session(request, session_id: DbId, payload: CancelIn):
    return session_out(services.cancel_session(session_id, by=request.user, reason=payload.reason))


class InductionResultIn(Schema):
    passed: bool
    note: text(300) = ""


class InductionResultOut(Schema):
    booking: int
    result: str = Field(description="`passed` or `not_passed`")
    certified: bool = Field(description="Whether the learner now holds the certification")


@router.post("/inductions/{booking_id}/result",
             response={200: InductionResultOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut},
             summary="Mark an induction attendee passed or not (after the session); passing certifies")
def mark_induction(request, booking_id: DbId, payload: InductionResultIn):
    from fablab_ops.booking.services import is_certified

    booking = services.mark_induction(booking_id, passed=payload.passed, by=request.user, note=payload.note)
    return InductionResultOut(booking=booking.pk, result=booking.induction_result,
                              certified=is_certified(booking.learner, booking.session.course.certifies))
