from django.shortcuts import render

from fablab_ops.machines.models import Lab


def lab_list(request):
    labs = Lab.objects.filter(is_active=True).prefetch_related("opening_hours", "machines__machine_type")
    return render(request, "machines/lab_list.html", {"labs": labs})
