from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language

from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab
from fablab_ops.reports import access, services
from fablab_ops.reports.exporters import EXPORTERS, METRICS


def _scope(request):
    month_text = request.GET.get("month") or f"{services.last_month():%Y-%m}"
    lab_slug = request.GET.get("lab", "all" if request.user.is_coordinator else "")
    if not lab_slug and request.user.is_technician:
        first = request.user.staffed_labs.first()
        lab_slug = first.slug if first else "all"
    try:
        return month_text, lab_slug, services.parse_month(month_text), access.allowed_scope(request.user, lab_slug)
    except DomainError as error:
        if error.status == 404:
            raise Http404 from error
        if error.status == 403:
            raise PermissionDenied(error.message) from error
        raise BadRequest(error.message) from error


@login_required
def monthly(request):
    month_text, lab_slug, month, lab = _scope(request)
    report = services.monthly_report(month, lab=lab)
    labs = Lab.objects.all() if request.user.is_coordinator else request.user.staffed_labs.all()
    peak = max([row.total.registrations for row in report.labs] + [1])
    peak_hours = max([max(row.hours_booked, row.hours_used) for row in report.labs] + [1])
    return render(request, "reports/monthly.html", {
        "report": report, "month_text": month_text, "lab_slug": lab_slug, "labs": labs,
        "metrics": METRICS, "exporters": EXPORTERS.values(), "peak": peak, "peak_hours": peak_hours,
        "is_coordinator": request.user.is_coordinator, "today": timezone.localdate(),
    })


@login_required
def download(request):
    month_text, lab_slug, month, lab = _scope(request)
    exporter = EXPORTERS.get(request.GET.get("format", "xlsx"))
    if exporter is None:
        raise Http404
    language = request.GET.get("language") or (get_language() or "vi")[:2]
    name, media_type, content = exporter.render(services.monthly_report(month, lab=lab),
                                                language if language in ("vi", "en") else "vi", lab_slug)
    response = HttpResponse(content, content_type=media_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
