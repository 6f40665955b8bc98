"""Edits made outside the services (the admin) still reach the interlock.

A machine's status or a maintenance window changed in the admin changes who may use
the machine; the services call `interlock.refresh` themselves, these receivers cover
the rest (a second refresh finds nothing to change).
"""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from fablab_ops.booking import interlock
from fablab_ops.machines.models import Machine, MaintenanceWindow


@receiver(post_save, sender=Machine, dispatch_uid="interlock-machine-saved")
def machine_saved(sender, instance, created, raw=False, **kwargs):
    if not created and not raw:
        interlock.refresh([instance.pk])


@receiver(post_save, sender=MaintenanceWindow, dispatch_uid="interlock-window-saved")
@receiver(post_delete, sender=MaintenanceWindow, dispatch_uid="interlock-window-deleted")
def maintenance_window_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        interlock.refresh([instance.machine_id])
