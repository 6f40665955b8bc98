from celery import shared_task

from fablab_ops.courses import services


@shared_task
def expire_seat_offers() -> int:
    return services.expire_offers()


@shared_task
def cancel_undersubscribed_sessions() -> int:
    return len(services.cancel_undersubscribed())


@shared_task
def send_session_reminders() -> int:
    return services.send_reminders()


@shared_task
def mark_seat_no_shows() -> int:
    return services.mark_no_shows()
