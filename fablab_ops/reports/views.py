from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from fablab_ops import charts, policy
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


def report_charts(report: services.MonthlyReport) -> dict:
    """The report's charts: per-lab figures, progress against the year's targets, each machine's hours by day."""
    names = [lab.name for lab in report.labs]
    figures = charts.grouped_bars(
        _("Lượt đăng ký và điểm danh theo phòng lab"),
        _("Số lượt đăng ký và số lượt điểm danh có mặt của mỗi phòng lab trong tháng."), names,
        [(_("Lượt đăng ký"), [lab.total.registrations for lab in report.labs]),
         (_("Điểm danh có mặt"), [lab.total.attendance for lab in report.labs])], decimals=0)
    figures.headers = [_("Phòng lab"), _("Lượt đăng ký"), _("Điểm danh có mặt")]
    hours = charts.grouped_bars(
        _("Giờ sử dụng máy theo phòng lab"),
        _("Số giờ đặt máy và số giờ máy chạy thực tế của mỗi phòng lab trong tháng."), names,
        [(_("Giờ đặt máy"), [lab.hours_booked for lab in report.labs]),
         (_("Giờ sử dụng thực tế"), [lab.hours_used for lab in report.labs])], unit="h")
    hours.headers = [_("Phòng lab"), _("Giờ đặt máy"), _("Giờ sử dụng thực tế")]
    rows = [*report.labs, report.network] if report.is_network else report.labs
    progress = charts.progress(
        _("Tiến độ so với chỉ tiêu năm %(year)d") % {"year": report.month.year},
        _("Số lớp học và lượt tham gia từ đầu năm đến hết tháng, so với chỉ tiêu năm của từng phòng lab."),
        [(lab.name, [(_("Lớp học"), lab.progress.classes_to_date, lab.progress.target_classes),
                     (_("Lượt tham gia"), lab.progress.turns_to_date, lab.progress.target_turns)])
         for lab in rows if lab.progress])
    progress.headers = [_("Phòng lab"), _("Chỉ số"), _("Từ đầu năm"), _("Chỉ tiêu"), _("Tỷ lệ hoàn thành")]
    usage = {}
    for lab in report.labs:
        for machine in lab.machines:
            chart = charts.daily_columns(
                _("%(machine)s: giờ sử dụng theo ngày, tháng %(month)s") % {
                    "machine": machine.machine, "month": f"{report.month:%m/%Y}"},
                _("Số giờ máy chạy mỗi ngày trong tháng, theo dữ liệu máy gửi về."), report.month, machine.by_day,
                unit="h")
            chart.headers = [_("Ngày"), _("Giờ sử dụng thực tế")]
            usage.setdefault(lab.slug, []).append(chart)
    return {"figures": figures, "hours": hours, "progress": progress, "usage": usage}


@login_required
def monthly(request):
    month_text, lab_slug, month, lab = _scope(request)
    report = services.monthly_report(month, lab=lab)
    labs = Lab.objects.all() if request.user.is_coordinator else request.user.staffed_labs.all()
    return render(request, "reports/monthly.html", {
        "report": report, "month_text": month_text, "lab_slug": lab_slug, "labs": labs,
        "metrics": METRICS, "exporters": EXPORTERS.values(), "charts": report_charts(report),
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


class TargetForm(forms.Form):
    classes = forms.IntegerField(label=gettext_lazy("Số lớp học"), min_value=0, max_value=100_000)
    participant_turns = forms.IntegerField(label=gettext_lazy("Lượt tham gia"), min_value=0, max_value=10_000_000)
    machine_hours = forms.IntegerField(label=gettext_lazy("Giờ sử dụng máy"), min_value=0, max_value=10_000_000)


@login_required
@require_http_methods(["GET", "POST"])
def targets(request):
    """The year's targets per lab and for the network (coordinators)."""
    if not policy.may_set_targets(request.user):
        raise PermissionDenied(_("Chỉ điều phối viên mới được đặt chỉ tiêu năm."))
    from fablab_ops.validation import parse_id

    year = parse_id(request.POST.get("year") or request.GET.get("year")) or timezone.localdate().year
    if not 2000 <= year <= 2100:
        year = timezone.localdate().year
    rows = services.year_targets(year)

    def prefix(row):
        return f"lab-{row.lab.pk}" if row.lab else "network"

    bound = request.POST if request.method == "POST" else None
    forms_by_row = [(row, TargetForm(bound, prefix=prefix(row), initial={
        "classes": row.classes, "participant_turns": row.participant_turns, "machine_hours": row.machine_hours}))
        for row in rows]
    if bound is not None and all(form.is_valid() for _row, form in forms_by_row):
        try:
            services.set_year_targets(year, [services.TargetRow(row.lab, **form.cleaned_data)
                                             for row, form in forms_by_row], by=request.user)
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Đã lưu chỉ tiêu năm %(year)d.") % {"year": year})
            return redirect(f"{request.path}?year={year}")
    this_year = timezone.localdate().year
    return render(request, "reports/targets.html", {
        "year": year, "rows": forms_by_row, "years": range(this_year - 2, this_year + 3),
    })
