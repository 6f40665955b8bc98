from fablab_ops import notifications
from fablab_ops.celery import app


@app.task
def send_notification(notification_id: int) -> bool:
    """Send one stored notification if it is due; a second run finds it sent (or claimed) and does nothing.
    (Rows are now queued together, by `send_notifications`; this stays for tasks already in the queue.)

    Failures are not retried by Celery: the row records them and the sweep sends it again after its back-off.
    """
    return notifications.send_due(ids=[notification_id]) > 0


@app.task
def send_notifications(notification_ids: list[int]) -> int:
    """Send these stored notifications (those committed together), each only if it is still due."""
    return notifications.send_due(ids=notification_ids, limit=len(notification_ids))


@app.task
def send_due_notifications() -> int:
    """The outbox sweep (Celery beat, every minute): whatever is due and was left behind."""
    return notifications.sweep()
