from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingConfig(AppConfig):
    name = "fablab_ops.booking"
    verbose_name = _("Đặt máy và check-in")

    def ready(self):
        from fablab_ops import handoff
        from fablab_ops.booking import interlock, services, signals  # noqa: F401 - connects the receivers
        from fablab_ops.machines import entitlements

        # A changed desired state is published by a worker once the transaction commits; with a broker, the task
        # is queued from a thread of the process (without one, Celery runs it at once: the laptop demo).
        interlock.register_publisher(_publish_desired_states, in_background=handoff.celery_has_broker)

        # The machines app asks who was entitled to run a machine, whom to warn of its trouble, what it should do
        # now and how many hours were booked; booking answers.
        entitlements.register(entitlements.Answers(
            entitled=interlock.entitlements_for, reservations_starting=services.reservations_starting,
            desired_states=interlock.desired_states, booked_hours=services.booked_hours))


# Celery is loaded when the first task is queued, not when Django starts (as in accounts/apps.py): the tasks
# module brings the project's Celery app.
def _publish_desired_states(machine_ids):
    from fablab_ops.booking import tasks

    tasks.publish_desired_states.delay(machine_ids)
