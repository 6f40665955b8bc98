import logging

from celery import shared_task

from fablab_ops.booking import services
from fablab_ops.machines import commands
from fablab_ops.machines.models import MachineCommand

log = logging.getLogger(__name__)


@shared_task
def release_reservation_no_shows() -> int:
    return services.release_no_shows()


@shared_task
def lapse_unused_certifications() -> dict:
    return services.lapse_certifications()


@shared_task
def finish_reservations() -> int:
    """Reservations whose time is over are completed and their machines switched off."""
    finished = services.complete_finished()
    for reservation_id in finished:
        publish_machine_command.delay(services.machine_command_for(reservation_id, "disable").pk)
    return len(finished)


@shared_task(bind=True, max_retries=6, default_retry_delay=10)
def publish_machine_command(self, command_id: int) -> bool:
    command = MachineCommand.objects.select_related("machine__lab").get(pk=command_id)
    try:
        commands.publish(command)
    except commands.CommandNotDelivered as error:
        MachineCommand.objects.filter(pk=command_id).update(error=str(error)[:300])
        log.warning("machine command %s not delivered: %s", command.command_id, error)
        if self.request.is_eager:
            return False  # no worker to retry in-process; the record shows what happened
        raise self.retry(exc=error) from error
    return True
