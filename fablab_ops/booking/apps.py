from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingConfig(AppConfig):
    name = "fablab_ops.booking"
    verbose_name = _("Đặt máy và check-in")

    def ready(self):
        from fablab_ops.booking import interlock, services, signals, tasks  # noqa: F401 - connects the receivers
        from fablab_ops.machines import entitlements

        # A changed desired state is published by a worker once the transaction commits; with a broker, the task
        # is queued from a thread of the process (without one, Celery runs it at once: the laptop demo).
        interlock.register_publisher(lambda machine_ids: tasks.publish_desired_states.delay(machine_ids),
                                     in_background=lambda: not tasks.publish_desired_states.app.conf.task_always_eager)

        # The machines app asks who was entitled to run a machine, whom to warn of its trouble, what it should do
        # now and how many hours were booked; booking answers.
        entitlements.register(entitlements.Answers(
            entitled=interlock.entitlements_for, reservations_starting=services.reservations_starting,
            desired_states=interlock.desired_states, booked_hours=services.booked_hours))
