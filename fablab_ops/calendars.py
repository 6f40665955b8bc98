"""iCalendar (RFC 5545): the calendar, event and address pieces that seat bookings (courses/calendar.py) and
reservations (booking/calendar.py) are built from. It knows no model, so both apps may use it.

Each booking keeps one UID for its whole life, so a phone that imported it once
updates or removes the same event: a cancellation is sent as METHOD:CANCEL with
that UID and a higher SEQUENCE. Times carry TZID=Asia/Ho_Chi_Minh with its
VTIMEZONE, so calendars show local time wherever the phone is set.

Each event's DESCRIPTION says what a person needs on the day, in their language: the course, what to bring,
the lab's address and the link to the ticket (or the class's page in a public feed). Its ORGANIZER is the lab,
with the network's contact address (settings.FABLAB_CONTACT_EMAIL) to write to.
"""

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vCalAddress, vText

PRODID = "-//Fablab Binh Duong//fablab-ops//VI"
UID_DOMAIN = "fablab-ops.binhduong"
NETWORK_NAME = "Mạng lưới Fablab Bình Dương"


def new_calendar(name: str, method: str = "PUBLISH") -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", settings.TIME_ZONE)
    return calendar


def link(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def organizer(lab) -> vCalAddress:
    who = vCalAddress(f"mailto:{settings.FABLAB_CONTACT_EMAIL}")
    who.params["cn"] = vText(lab.name_vi if lab is not None else NETWORK_NAME)
    return who


def address(lab, place: str = "") -> str:
    if lab is None:
        return _("Trực tuyến: %(place)s") % {"place": place} if place else _("Trực tuyến")
    where = f"{lab.name}, {lab.address}"
    return f"{where} ({place})" if place and place != lab.address else where


def event(*, uid: str, summary: str, start, end, location: str, description: str, cancelled: bool,
          sequence: int, stamp, lab=None) -> Event:
    tz = timezone.get_default_timezone()
    found = Event()
    found.add("uid", uid)
    found.add("dtstamp", stamp)
    found.add("sequence", sequence)
    found.add("dtstart", start.astimezone(tz))
    found.add("dtend", end.astimezone(tz))
    found.add("summary", summary)
    found.add("location", location)
    found.add("description", description)
    found.add("organizer", organizer(lab))
    found.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    return found


def sequence(created, *changes, cancelled: bool = False) -> int:
    """Grows with every change, as RFC 5545 asks: whole seconds from creation to the
    latest change, and one more once cancelled (a cancel may land in the same second)."""
    latest = max(changes)
    return max(int((latest - created).total_seconds()), 0) + int(cancelled)


def language_of(person) -> str:
    return getattr(person, "language", None) or settings.LANGUAGE_CODE


def single(one: Event) -> bytes:
    """One event as a file: METHOD:CANCEL once it is cancelled, so the phone removes it."""
    cancelled = str(one["status"]) == "CANCELLED"
    calendar = new_calendar(str(one["summary"]), method="CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(one)
    calendar.add_missing_timezones()
    return calendar.to_ical()
