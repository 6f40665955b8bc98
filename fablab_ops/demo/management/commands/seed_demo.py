import logging

from django.core.management.base import BaseCommand
from django.db.models import F

from fablab_ops.booking.models import MachineDesiredState
from fablab_ops.demo import data as demo


class Command(BaseCommand):
    help = "Load the demo network: four labs, machines, a season of classes, learners and staff (idempotent)."

    def handle(self, *args, **options):
        # Checking in the reservations that cover this moment hands machines to their holders; publishing
        # those desired states fails while the demo's MQTT broker is not started yet, which is expected here:
        # they stay in the outbox and go out within seconds of `run_demo_machines` starting.
        publisher = logging.getLogger("fablab_ops.booking.tasks")
        level = publisher.level
        publisher.setLevel(logging.ERROR)
        try:
            counts = demo.seed()
        finally:
            publisher.setLevel(level)
        for name, count in counts.items():
            self.stdout.write(f"{name:>14}: {count}")
        waiting = MachineDesiredState.objects.filter(published_version__lt=F("version")).count()
        if waiting:
            self.stdout.write(f"{waiting} machines handed to learners checked in now; their interlocks learn it "
                              "when the demo's machines start")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password: {demo.DEMO_PASSWORD}):"))
        for account in [*demo.STAFF, demo.DEMO_LEARNER]:
            self.stdout.write(f"  {account.role:<12} {account.email}")
