"""iCalendar (RFC 5545) files and feeds for seat bookings, reservations, labs and courses.

Each booking keeps one UID for its whole life, so a phone that imported it once
updates or removes the same event: a cancellation is sent as METHOD:CANCEL with
that UID and a higher SEQUENCE. Times carry TZID=Asia/Ho_Chi_Minh with its
VTIMEZONE, so calendars show local time wherever the phone is set.

Each event's DESCRIPTION says what a person needs on the day, in their language: the course, what to bring,
the lab's address and the link to the ticket (or the class's page in a public feed). Its ORGANIZER is the lab,
with the network's contact address (settings.FABLAB_CONTACT_EMAIL) to write to.
"""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vCalAddress, vText

from fablab_ops.booking.models import Reservation, ReservationStatus
from fablab_ops.courses.models import SeatBooking, SeatStatus, Session, SessionStatus

PRODID = "-//Fablab Binh Duong//fablab-ops//VI"
UID_DOMAIN = "fablab-ops.binhduong"


def _calendar(name: str, method: str = "PUBLISH") -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    return calendar


NETWORK_NAME = "Mạng lưới Fablab Bình Dương"


def _link(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _organizer(lab) -> vCalAddress:
    organizer = vCalAddress(f"mailto:{settings.FABLAB_CONTACT_EMAIL}")
    organizer.params["cn"] = vText(lab.name_vi if lab is not None else NETWORK_NAME)
    return organizer


def _address(lab, place: str = "") -> str:
    if lab is None:
        return _("Trực tuyến: %(place)s") % {"place": place} if place else _("Trực tuyến")
    where = f"{lab.name}, {lab.address}"
    return f"{where} ({place})" if place and place != lab.address else where


def _session_description(session: Session, link: str, link_label: str) -> str:
    """The course, what to bring, the address and a link, in the active language."""
    course = session.course
    lines = [course.title]
    if course.localized_description:
        lines.append(course.localized_description)
    if course.localized_what_to_bring:
        lines.append(_("Cần mang theo: %(things)s") % {"things": course.localized_what_to_bring})
    lines.append(_("Địa chỉ: %(address)s") % {"address": _address(session.lab, session.place)})
    lines.append(f"{link_label}: {link}")
    return "\n\n".join(lines)


def _event(*, uid: str, summary: str, start, end, location: str, description: str, cancelled: bool,
           sequence: int, stamp, lab=None) -> Event:
    tz = timezone.get_default_timezone()
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("sequence", sequence)
    event.add("dtstart", start.astimezone(tz))
    event.add("dtend", end.astimezone(tz))
    event.add("summary", summary)
    event.add("location", location)
    event.add("description", description)
    event.add("organizer", _organizer(lab))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return event


def _session_place(session: Session) -> str:
    if session.lab is None:
        return f"Trực tuyến {session.place}".strip()
    return f"{session.lab.name_vi}, {session.place or session.lab.address}"


def seat_booking_uid(booking: SeatBooking) -> str:
    return f"seat-{booking.pk}@{UID_DOMAIN}"


def reservation_uid(reservation: Reservation) -> str:
    return f"reservation-{reservation.pk}@{UID_DOMAIN}"


def _sequence(created, *changes, cancelled: bool = False) -> int:
    """Grows with every change, as RFC 5545 asks: whole seconds from creation to the
    latest change, and one more once cancelled (a cancel may land in the same second)."""
    latest = max(changes)
    return max(int((latest - created).total_seconds()), 0) + int(cancelled)


def _language(person) -> str:
    return getattr(person, "language", None) or settings.LANGUAGE_CODE


def _seat_event(booking: SeatBooking) -> Event:
    session = booking.session
    cancelled = booking.status == SeatStatus.CANCELLED or session.status == SessionStatus.CANCELLED
    with translation.override(_language(booking.learner)):
        description = _session_description(session, _link(reverse("courses:ticket", args=[booking.pk])),
                                            _("Vé và hủy chỗ"))
    return _event(
        uid=seat_booking_uid(booking), summary=session.course.title_vi, start=session.start, end=session.end,
        location=_session_place(session), description=description, cancelled=cancelled, lab=session.lab,
        sequence=_sequence(booking.created_at, booking.updated_at, session.updated_at, cancelled=cancelled),
        stamp=max(booking.updated_at, session.updated_at),
    )


def _reservation_event(reservation: Reservation) -> Event:
    machine = reservation.machine
    cancelled = reservation.status == ReservationStatus.CANCELLED
    with translation.override(_language(reservation.user)):
        lines = [_("Đặt máy: %(machine)s") % {"machine": machine.name}]
        if reservation.purpose:
            lines.append(reservation.purpose)
        lines.append(_("Địa chỉ: %(address)s") % {"address": _address(machine.lab)})
        lines.append(f"{_('Vé và hủy đặt máy')}: "
                     f"{_link(reverse('booking:reservation', args=[reservation.pk]))}")
    return _event(
        uid=reservation_uid(reservation), summary=f"Đặt máy: {machine.name}", start=reservation.start,
        end=reservation.end, location=f"{machine.lab.name_vi}, {machine.lab.address}",
        description="\n\n".join(lines), cancelled=cancelled, lab=machine.lab,
        sequence=_sequence(reservation.created_at, reservation.updated_at, cancelled=cancelled),
        stamp=reservation.updated_at,
    )


def _single(event: Event, cancelled: bool) -> bytes:
    calendar = _calendar(str(event["summary"]), method="CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def seat_booking_ics(booking: SeatBooking) -> bytes:
    event = _seat_event(booking)
    return _single(event, str(event["status"]) == "CANCELLED")


def reservation_ics(reservation: Reservation) -> bytes:
    event = _reservation_event(reservation)
    return _single(event, str(event["status"]) == "CANCELLED")


def learner_feed(learner) -> bytes:
    """A learner's own bookings and machine reservations, for a phone to subscribe to."""
    calendar = _calendar(f"Fablab — {learner.full_name}")
    seats = (SeatBooking.objects.filter(learner=learner)
             .exclude(status=SeatStatus.WAITLISTED).select_related("session__course", "session__lab", "learner"))
    for booking in seats:
        calendar.add_component(_seat_event(booking))
    for reservation in Reservation.objects.filter(user=learner).select_related("machine__lab", "user"):
        calendar.add_component(_reservation_event(reservation))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def sessions_feed(name: str, sessions) -> bytes:
    """Public feed of sessions (a lab's or a course's), without any learner's data."""
    calendar = _calendar(name)
    for session in sessions.select_related("course", "lab"):
        calendar.add_component(_event(
            uid=f"session-{session.pk}@{UID_DOMAIN}", summary=session.course.title_vi, start=session.start,
            end=session.end, location=_session_place(session), lab=session.lab,
            description=_session_description(
                session, _link(reverse("courses:session_detail", args=[session.pk])), _("Xem và đăng ký")),
            cancelled=session.status == SessionStatus.CANCELLED,
            sequence=_sequence(session.created_at, session.updated_at,
                               cancelled=session.status == SessionStatus.CANCELLED),
            stamp=session.updated_at,
        ))
    calendar.add_missing_timezones()
    return calendar.to_ical()
