"""Seat bookings, a learner's own feed and the public feeds of a lab or a course as iCalendar
(fablab_ops/calendars.py has the pieces; a learner's feed also carries their machine reservations).

Each event's DESCRIPTION says what a person needs on the day, in their language: the course, what to bring,
the lab's address and the link to the ticket (or the class's page in a public feed).
"""

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from icalendar import Event

from fablab_ops import calendars
from fablab_ops.booking.calendar import reservation_event
from fablab_ops.booking.models import Reservation
from fablab_ops.courses.models import SeatBooking, SeatStatus, Session, SessionStatus


def _session_description(session: Session, link: str, link_label: str) -> str:
    """The course, what to bring, the address and a link, in the active language."""
    course = session.course
    lines = [course.title]
    if course.localized_description:
        lines.append(course.localized_description)
    if course.localized_what_to_bring:
        lines.append(_("Cần mang theo: %(things)s") % {"things": course.localized_what_to_bring})
    lines.append(_("Địa chỉ: %(address)s") % {"address": calendars.address(session.lab, session.place)})
    lines.append(f"{link_label}: {link}")
    return "\n\n".join(lines)


def _session_place(session: Session) -> str:
    if session.lab is None:
        return f"Trực tuyến {session.place}".strip()
    return f"{session.lab.name_vi}, {session.place or session.lab.address}"


def seat_booking_uid(booking: SeatBooking) -> str:
    return f"seat-{booking.pk}@{calendars.UID_DOMAIN}"


def _seat_event(booking: SeatBooking) -> Event:
    session = booking.session
    cancelled = booking.status == SeatStatus.CANCELLED or session.status == SessionStatus.CANCELLED
    with translation.override(calendars.language_of(booking.learner)):
        description = _session_description(session, calendars.link(reverse("courses:ticket", args=[booking.pk])),
                                            _("Vé và hủy chỗ"))
    return calendars.event(
        uid=seat_booking_uid(booking), summary=session.course.title_vi, start=session.start, end=session.end,
        location=_session_place(session), description=description, cancelled=cancelled, lab=session.lab,
        sequence=calendars.sequence(booking.created_at, booking.updated_at, session.updated_at, cancelled=cancelled),
        stamp=max(booking.updated_at, session.updated_at),
    )


def seat_booking_ics(booking: SeatBooking) -> bytes:
    return calendars.single(_seat_event(booking))


def learner_feed(learner) -> bytes:
    """A learner's own bookings and machine reservations, for a phone to subscribe to."""
    calendar = calendars.new_calendar(f"Fablab — {learner.full_name}")
    seats = (SeatBooking.objects.filter(learner=learner)
             .exclude(status=SeatStatus.WAITLISTED).select_related("session__course", "session__lab", "learner"))
    for booking in seats:
        calendar.add_component(_seat_event(booking))
    for reservation in Reservation.objects.filter(user=learner).select_related("machine__lab", "user"):
        calendar.add_component(reservation_event(reservation))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def sessions_feed(name: str, sessions) -> bytes:
    """Public feed of sessions (a lab's or a course's), without any learner's data."""
    calendar = calendars.new_calendar(name)
    for session in sessions.select_related("course", "lab"):
        cancelled = session.status == SessionStatus.CANCELLED
        calendar.add_component(calendars.event(
            uid=f"session-{session.pk}@{calendars.UID_DOMAIN}", summary=session.course.title_vi,
            start=session.start, end=session.end, location=_session_place(session), lab=session.lab,
            description=_session_description(
                session, calendars.link(reverse("courses:session_detail", args=[session.pk])), _("Xem và đăng ký")),
            cancelled=cancelled,
            sequence=calendars.sequence(session.created_at, session.updated_at, cancelled=cancelled),
            stamp=session.updated_at,
        ))
    calendar.add_missing_timezones()
    return calendar.to_ical()
