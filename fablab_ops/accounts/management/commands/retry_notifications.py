"""The e-mail outbox from the command line: what is due or failed, and sending failed rows again."""

from django.core.management.base import BaseCommand

from fablab_ops import notifications
from fablab_ops.accounts.models import Notification, NotificationState


class Command(BaseCommand):
    help = "Show the e-mail outbox backlog and its failed rows; with --failed or ids, send them again."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="*", type=int, help="notifications to send again")
        parser.add_argument("--failed", action="store_true", help="send every failed notification again")

    def handle(self, *args, ids, failed, **options):
        counts = notifications.backlog()
        self.stdout.write(" ".join(f"{state}={count}" for state, count in counts.items()))
        rows = Notification.objects.filter(state=NotificationState.FAILED).select_related("user")
        for row in rows.order_by("created_at")[:50]:
            self.stdout.write(f"{row.pk}\t{row.kind}\t{row.user.email}\t{row.attempts}\t{row.last_error}")
        chosen = list(rows.values_list("pk", flat=True)) if failed else ids
        if chosen:
            self.stdout.write(f"retried={notifications.retry(chosen)}")
