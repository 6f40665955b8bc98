"""The door's pages: the scanner with today's list, and the day's absences and refused scans."""

from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from fablab_ops import policy, validation
from fablab_ops.booking.models import CheckInOutcome, CheckInRecord
from fablab_ops.door import services
from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab
from fablab_ops.security import uses_camera


def _selected_day(request):
    """The day asked for, or today for a missing, malformed or far-off date."""
    return validation.parse_day(request.GET.get("day")) or timezone.localdate()


@login_required
def lab_absences(request, lab: str):
    """A lab's day at the door: no-shows, late arrivals and refused scans (its technicians, coordinators)."""
    found = get_object_or_404(Lab, slug=lab)
    if not policy.staffs_lab(request.user, found):
        raise PermissionDenied
    day = _selected_day(request)
    listing = services.day_exceptions(found, day, by=request.user)
    return render(request, "booking/lab_absences.html", {
        "lab": found, "day": day, "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
        "section": "absences", **listing,
    })


@login_required
@uses_camera
@require_http_methods(["GET", "POST"])
def scanner(request, lab: str):
    """The door: scan tickets (camera or hardware scanner), see today's list, check in by hand."""
    found = get_object_or_404(Lab, slug=lab)
    query = request.GET.get("q", "")
    try:
        if request.method == "POST":
            back = f"{request.path}?{urlencode({'q': query})}"
            record_id = validation.parse_id(request.POST.get("undo" if "undo" in request.POST else "id"))
            if record_id is None:
                messages.error(request, _("Yêu cầu không hợp lệ."))
            elif "undo" in request.POST:
                services.undo_check_in(record_id, by=request.user)
                messages.success(request, _("Đã hoàn tác check-in."))
            else:
                result = services.check_in_manually(request.POST.get("kind", ""), record_id, lab=found, by=request.user)
                level = messages.SUCCESS if result.accepted else messages.WARNING
                messages.add_message(request, level, f"{result.person}: {result.message}")
            return redirect(back)
        listing = services.search_today(found, query, by=request.user)
    except DomainError as error:
        if error.status == 403:
            raise PermissionDenied(error.message) from error
        messages.error(request, error.message)
        return redirect(request.path)
    recent = (CheckInRecord.objects.filter(lab=found, by=request.user, outcome=CheckInOutcome.CHECKED_IN,
                                           undone_at__isnull=True,
                                           at__gte=timezone.now() - timedelta(
                                               minutes=settings.FABLAB["CHECKIN_UNDO_MINUTES"]))
              .select_related("seat_booking__learner", "reservation__user"))
    return render(request, "booking/scanner.html", {
        "lab": found, "listing": listing, "query": query, "recent": recent,
        "inside": sum(1 for row in listing["seats"] + listing["reservations"] if row.checked_in_at),
    })
