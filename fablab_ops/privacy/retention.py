"""How long personal data is kept (PRIVACY_RETENTION in settings; README, "Personal data").

`apply` is run daily by Celery beat. It is idempotent and safe to run twice or side by side:

- a learner inactive for INACTIVE_WARN_DAYS (no login, no seat or reservation since) is warned once by e-mail
  (through the outbox, with a dedup key of that period of inactivity); coming back clears the warning;
- a learner warned INACTIVE_GRACE_DAYS ago and still inactive is anonymised by the erasure service (`erase`),
  which keeps every row the reports count: the months' figures do not change;
- refused door scans, and e-mails sent or given up, are deleted after their own periods.

Nothing recorded since the start of last month is deleted, whatever the settings: the monthly report being
prepared and sent keeps its rows. Each account is handled in its own transaction with its row locked
(a second run waiting on the lock finds the work done, or skips a row another run holds).
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from fablab_ops.accounts.models import Notification, NotificationState, Role, User
from fablab_ops.notifications import notify
from fablab_ops.privacy.models import Channel, PersonalData
from fablab_ops.privacy.services import erase

logger = logging.getLogger(__name__)


@dataclass
class RetentionRun:
    warned: int = 0
    anonymised: int = 0
    refused_scans_deleted: int = 0
    notifications_deleted: int = 0


def _days(name: str) -> timedelta:
    return timedelta(days=settings.PRIVACY_RETENTION[name])


def start_of_last_month(now: datetime) -> datetime:
    today = timezone.localdate(now)
    first = today.replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)
    return timezone.make_aware(datetime.combine(last_month, datetime.min.time()))


def _floor(now: datetime, period: timedelta) -> datetime:
    """Delete what is older than `period`, but never anything since the start of last month."""
    return min(now - period, start_of_last_month(now))


def with_last_activity(users):
    """Annotate `last_activity`: the latest of joining, logging in, a booked session and a reserved slot."""
    from fablab_ops.booking.models import Reservation
    from fablab_ops.courses.models import SeatBooking

    seat = (SeatBooking.objects.filter(learner=OuterRef("pk")).order_by().values("learner")
            .annotate(last=Max("session__start")).values("last"))
    slot = (Reservation.objects.filter(user=OuterRef("pk")).order_by().values("user")
            .annotate(last=Max("start")).values("last"))
    epoch = Value(datetime(1970, 1, 1, tzinfo=UTC), output_field=DateTimeField())
    return users.annotate(last_activity=Greatest(
        F("date_joined"), Coalesce(F("last_login"), epoch), Coalesce(Subquery(seat), epoch),
        Coalesce(Subquery(slot), epoch)))


def _learners():
    return User.objects.filter(role=Role.LEARNER, is_staff=False, is_superuser=False, is_active=True).exclude(
        personal_data__erased_at__isnull=False)


def _locked(user_id: int):
    """The learner's row locked for this run, or None when another run holds it or it is gone."""
    return with_last_activity(_learners().select_for_update(skip_locked=True, of=("self",))).filter(
        pk=user_id).first()


def warn_inactive(now: datetime) -> int:
    threshold = now - _days("INACTIVE_WARN_DAYS")
    warned = 0
    # Came back after a warning: the warning no longer stands.
    returned = with_last_activity(_learners().filter(personal_data__inactivity_warned_at__isnull=False)).filter(
        last_activity__gt=F("personal_data__inactivity_warned_at"))
    PersonalData.objects.filter(user__in=returned.values("pk")).update(inactivity_warned_at=None)
    candidates = with_last_activity(_learners()).filter(last_activity__lt=threshold).filter(
        Q(personal_data__isnull=True) | Q(personal_data__inactivity_warned_at__isnull=True))
    for user_id in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            user = _locked(user_id)
            if user is None or user.last_activity >= threshold:
                continue
            data, _created = PersonalData.objects.get_or_create(user=user)
            if data.inactivity_warned_at is not None:
                continue
            data.inactivity_warned_at = now
            data.save(update_fields=["inactivity_warned_at"])
            deadline = now + _days("INACTIVE_GRACE_DAYS")
            notify(user, "inactive_account", dedup_key=f"inactive-{user.pk}-{user.last_activity:%Y%m%d%H%M%S}",
                   context={"deadline": deadline, "last_activity": user.last_activity})
            warned += 1
    return warned


def anonymise_inactive(now: datetime) -> int:
    warned_before = now - _days("INACTIVE_GRACE_DAYS")
    anonymised = 0
    candidates = with_last_activity(_learners().filter(personal_data__inactivity_warned_at__lte=warned_before)
                                    ).filter(last_activity__lt=F("personal_data__inactivity_warned_at"))
    for user_id in candidates.values_list("pk", flat=True):
        with transaction.atomic():
            user = _locked(user_id)
            if user is None:
                continue
            data = PersonalData.objects.get(user=user)
            if (data.inactivity_warned_at is None or data.inactivity_warned_at > warned_before
                    or user.last_activity >= data.inactivity_warned_at):
                continue
            erase(user, channel=Channel.RETENTION, now=now)
            anonymised += 1
    return anonymised


def purge_refused_scans(now: datetime) -> int:
    from fablab_ops.booking.models import CheckInOutcome, CheckInRecord

    floor = _floor(now, _days("REFUSED_SCANS_DAYS"))
    deleted, _ = CheckInRecord.objects.filter(outcome=CheckInOutcome.REFUSED, at__lt=floor).delete()
    return deleted


def purge_notifications(now: datetime) -> int:
    floor = _floor(now, _days("NOTIFICATIONS_DAYS"))
    done = Q(state=NotificationState.SENT, sent_at__lt=floor) | Q(state=NotificationState.FAILED, created_at__lt=floor)
    deleted, _ = Notification.objects.filter(done).delete()
    return deleted


def apply(now: datetime | None = None) -> RetentionRun:
    now = now or timezone.now()
    run = RetentionRun(warned=warn_inactive(now), anonymised=anonymise_inactive(now),
                       refused_scans_deleted=purge_refused_scans(now), notifications_deleted=purge_notifications(now))
    logger.info("retention: %s", run)
    return run
