"""A machine reservation as an iCalendar event (fablab_ops/calendars.py has the pieces)."""

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from icalendar import Event

from fablab_ops import calendars
from fablab_ops.booking.models import Reservation, ReservationStatus


def reservation_uid(reservation: Reservation) -> str:
    return f"reservation-{reservation.pk}@{calendars.UID_DOMAIN}"


def reservation_event(reservation: Reservation) -> Event:
    machine = reservation.machine
    cancelled = reservation.status == ReservationStatus.CANCELLED
    with translation.override(calendars.language_of(reservation.user)):
        lines = [_("Đặt máy: %(machine)s") % {"machine": machine.name}]
        if reservation.purpose:
            lines.append(reservation.purpose)
        lines.append(_("Địa chỉ: %(address)s") % {"address": calendars.address(machine.lab)})
        lines.append(f"{_('Vé và hủy đặt máy')}: "
                     f"{calendars.link(reverse('booking:reservation', args=[reservation.pk]))}")
    return calendars.event(
        uid=reservation_uid(reservation), summary=f"Đặt máy: {machine.name}", start=reservation.start,
        end=reservation.end, location=f"{machine.lab.name_vi}, {machine.lab.address}",
        description="\n\n".join(lines), cancelled=cancelled, lab=machine.lab,
        sequence=calendars.sequence(reservation.created_at, reservation.updated_at, cancelled=cancelled),
        stamp=reservation.updated_at,
    )


def reservation_ics(reservation: Reservation) -> bytes:
    return calendars.single(reservation_event(reservation))
