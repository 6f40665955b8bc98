from django.core.management.base import BaseCommand

from fablab_ops import demo


class Command(BaseCommand):
    help = "Load the demo network: four labs, machines, a season of classes, learners and staff (idempotent)."

    def handle(self, *args, **options):
        counts = demo.seed()
        for name, count in counts.items():
            self.stdout.write(f"{name:>14}: {count}")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password: {demo.DEMO_PASSWORD}):"))
        for account in [*demo.STAFF, demo.DEMO_LEARNER]:
            self.stdout.write(f"  {account.role:<12} {account.email}")
