from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from fablab_ops.machines import services
from fablab_ops.machines.models import Lab


def lab_list(request):
    labs = Lab.objects.filter(is_active=True).prefetch_related("opening_hours", "machines__machine_type")
    return render(request, "machines/lab_list.html", {"labs": labs})


@login_required
def live(request):
    """The technicians' machines page: live status, today's hours, alerts, maintenance due."""
    labs = Lab.objects.all() if request.user.is_coordinator else request.user.staffed_labs.all()
    if not labs.exists():
        raise PermissionDenied
    return render(request, "machines/live.html", {"boards": [(lab, services.live_board(lab)) for lab in labs],
                                                  "ingest_stale_minutes": services.ingest_stale_minutes()})
