from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from fablab_ops.accounts.models import Notification


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def send_notification(self, notification_id: int) -> bool:
    """Send one stored notification; a second run finds it sent and does nothing."""
    with transaction.atomic():
        notification = (
            Notification.objects.select_for_update().select_related("user").filter(pk=notification_id).first()
        )
        if notification is None or notification.sent_at is not None:
            return False
        notification.attempts += 1
        try:
            send_mail(notification.subject, notification.body, settings.DEFAULT_FROM_EMAIL,
                      [notification.user.email])
        except OSError as error:
            notification.last_error = str(error)[:500]
            notification.save(update_fields=["attempts", "last_error"])
            raise self.retry(exc=error) from error
        notification.sent_at = timezone.now()
        notification.save(update_fields=["attempts", "sent_at"])
    return True
