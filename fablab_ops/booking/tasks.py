import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from fablab_ops.booking import interlock, services
from fablab_ops.booking.models import MachineDesiredState
from fablab_ops.celery import app
from fablab_ops.machines import commands

log = logging.getLogger(__name__)

# Back-off after a failed publication: 1 s, 2 s, 4 s … up to RETRY_MAX_S. A broker restart lasts seconds and a
# learner stands at the machine meanwhile, so the first retries come at the next beat (every 2 s).
RETRY_BASE_S = 1
RETRY_MAX_S = 60
MAX_REPUBLISH = 5  # a state changing faster than it can be published is caught by the next beat


@app.task
def release_reservation_no_shows() -> int:
    return services.release_no_shows()


@app.task
def lapse_unused_certifications() -> dict:
    return services.lapse_certifications()


@app.task
def finish_reservations() -> int:
    """Reservations whose time is over are completed; the interlock decides what their machines do next."""
    return len(services.complete_finished())


@app.task
def publish_desired_states(machine_ids: list[int]) -> int:
    """Publish the current desired state of these machines (after the commit that changed it)."""
    return _publish(machine_ids)


@app.task
def sync_desired_states() -> dict:
    """Every 2 s (beat): decide again where a stored state reached its boundary, and publish what is still due.

    A machine whose reservation ends, or whose next holder's time comes, is refreshed
    here; the device has already acted on its own clock, so this only keeps the stored
    and retained state current. Publications that failed are retried with back-off.
    """
    now = timezone.now()
    with transaction.atomic():
        refreshed = interlock.refresh(interlock.due_for_refresh(now), now)
    due = list(MachineDesiredState.objects.filter(published_version__lt=F("version"))
               .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
               .exclude(machine_id__in=refreshed).values_list("machine_id", flat=True))
    return {"refreshed": len(refreshed), "published": _publish(due)}


def _publish(machine_ids: list[int]) -> int:
    """Publish the latest version of each machine's desired state; the number published.

    Never inside a transaction: each row is read, sent, and its publication recorded
    with an update that can only raise `published_version`. After sending, the row is
    read again, and a newer version (stored meanwhile) is sent too: whichever publisher
    sends last, it has seen that nothing newer existed, so the broker retains the latest.
    Sending a version twice is harmless: the device ignores a version it holds.
    """
    if not machine_ids:
        return 0
    published = 0
    try:
        with commands.RetainedPublisher() as publisher:
            for machine_id in machine_ids:
                sent = 0
                for _attempt in range(MAX_REPUBLISH):
                    state = (MachineDesiredState.objects.select_related("machine__lab")
                             .filter(machine_id=machine_id).first())
                    if state is None or state.version == 0 or state.version <= sent:
                        break
                    if state.published_version >= state.version and not sent:
                        break  # another publisher got there first
                    publisher.publish(f"{state.machine.topic_prefix}/desired", interlock.payload(state))
                    sent = state.version
                    MachineDesiredState.objects.filter(pk=state.pk).update(
                        published_version=Greatest(F("published_version"), sent), published_at=timezone.now(),
                        last_error="", attempts=0, retry_at=None)
                    published += 1
    except commands.CommandNotDelivered as error:
        _failed(machine_ids, error)
        log.warning("desired states of machines %s not published: %s", machine_ids, error)
    return published


def _failed(machine_ids: list[int], error: Exception) -> None:
    """Record the error on the states still due, and when to try again (exponential back-off)."""
    now = timezone.now()
    for state in MachineDesiredState.objects.filter(machine_id__in=machine_ids, published_version__lt=F("version")):
        attempts = state.attempts + 1
        delay = min(RETRY_BASE_S * 2 ** min(attempts - 1, 10), RETRY_MAX_S)
        MachineDesiredState.objects.filter(pk=state.pk).update(
            attempts=attempts, last_error=str(error)[:300], retry_at=now + timedelta(seconds=delay))
