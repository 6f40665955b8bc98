from celery import shared_task

from fablab_ops.machines import services


@shared_task
def mark_silent_machines_offline() -> int:
    return services.mark_silent_machines_offline()
