from fablab_ops.celery import app
from fablab_ops.courses import services


@app.task
def expire_seat_offers() -> int:
    return services.expire_offers()


@app.task
def cancel_undersubscribed_sessions() -> int:
    return len(services.cancel_undersubscribed())


@app.task
def send_session_reminders() -> int:
    return services.send_reminders()


@app.task
def mark_seat_no_shows() -> int:
    return services.mark_no_shows()
