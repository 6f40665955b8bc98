"""The export page reads its stored values (kept raw in the JSON export, for machines) in the reader's words."""

from django import template

from fablab_ops.accounts.models import NotificationState
from fablab_ops.booking.models import CheckInOutcome, ReservationStatus
from fablab_ops.courses.models import SeatStatus
from fablab_ops.privacy.models import Channel

register = template.Library()

CHOICES = {"seat": SeatStatus, "reservation": ReservationStatus, "check_in": CheckInOutcome,
           "notification": NotificationState, "channel": Channel}


@register.filter
def said_as(value, kind: str) -> str:
    """`{{ booking.status|said_as:"seat" }}` → "Đã xác nhận"; a value the choices do not know, as it is."""
    try:
        return str(CHOICES[kind](value).label)
    except (KeyError, ValueError):
        return value
