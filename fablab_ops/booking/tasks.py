from celery import shared_task

from fablab_ops.booking import services


@shared_task
def release_reservation_no_shows() -> int:
    return services.release_no_shows()


@shared_task
def lapse_unused_certifications() -> dict:
    return services.lapse_certifications()
