"""Telling people what happened to them.

`notify()` is called by services inside their transaction: it stores the message
(rendered in the recipient's language) and queues the e-mail only after the
transaction commits, so nobody is told about a booking that was rolled back.
"""

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from fablab_ops.accounts.models import Notification


def render(kind: str, language: str, context: dict) -> tuple[str, str]:
    """Templates live at notifications/<kind>.txt; their first line is the subject."""
    with translation.override(language or "vi"):
        text = render_to_string(f"notifications/{kind}.txt", context).strip()
    subject, _, body = text.partition("\n")
    return subject.strip(), body.strip()


def notify(user, kind: str, *, dedup_key: str, context: dict | None = None) -> tuple[Notification, bool]:
    """Store the message and queue its e-mail after commit; (notification, created)."""
    subject, body = render(kind, user.language, {"user": user, **(context or {})})
    notification, created = Notification.objects.get_or_create(
        dedup_key=dedup_key, defaults={"user": user, "kind": kind, "subject": subject, "body": body}
    )
    if created:
        from fablab_ops.accounts.tasks import send_notification

        transaction.on_commit(lambda: send_notification.delay(notification.pk), robust=True)
    return notification, created
