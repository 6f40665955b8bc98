from datetime import datetime, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from fablab_ops import policy, validation
from fablab_ops.accounts.models import User
from fablab_ops.booking import calendar, services, tickets
from fablab_ops.booking.models import ReservationStatus
from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab, MachineStatus, MachineType


class ReserveForm(forms.Form):
    day = validation.PlanDateField(label=gettext_lazy("Ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label=gettext_lazy("Từ"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=gettext_lazy("Đến"), widget=forms.TimeInput(attrs={"type": "time"}))
    purpose = forms.CharField(label=gettext_lazy("Mục đích (không bắt buộc)"), required=False, max_length=300)

    def interval(self):
        tz = timezone.get_default_timezone()
        data = self.cleaned_data
        return (datetime.combine(data["day"], data["start_time"], tz),
                datetime.combine(data["day"], data["end_time"], tz))


class SearchForm(forms.Form):
    machine_type = forms.ModelChoiceField(label=gettext_lazy("Loại máy"), queryset=MachineType.objects.all(),
                                          to_field_name="slug")
    minutes = forms.IntegerField(label=gettext_lazy("Thời lượng (phút)"), min_value=15, max_value=7 * 24 * 60,
                                 initial=60)


class GrantForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Email học viên"))
    machine_type = forms.ModelChoiceField(label=gettext_lazy("Loại máy"), queryset=MachineType.objects.all())
    reason = forms.CharField(label=gettext_lazy("Lý do"), max_length=300)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # Offer only what this person may grant (the labs that teach a type grant it).
        self.fields["machine_type"].queryset = policy.certifiable_types(user)


def _selected_day(request):
    """The day asked for, or today for a missing, malformed or far-off date."""
    return validation.parse_day(request.GET.get("day")) or timezone.localdate()


@require_http_methods(["GET", "POST"])
def machine_detail(request, lab: str, machine: str):
    try:
        found = services.machine_by_slug(lab, machine)
    except DomainError as error:
        raise Http404 from error
    day = _selected_day(request)
    form = ReserveForm(request.POST or None, initial={"day": day})
    if request.method == "POST":
        if not request.user.is_authenticated:
            return redirect(f"/accounts/login/?next={request.path}")
        if form.is_valid():
            start, end = form.interval()
            try:
                reservation = services.reserve(request.user, found, start, end,
                                               purpose=form.cleaned_data["purpose"])
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                messages.success(request, _("Đã đặt máy."))
                return redirect("booking:reservation", reservation_id=reservation.pk)
    now = timezone.now()
    return render(request, "booking/machine_detail.html", {
        "machine": found, "day": day, "form": form,
        "free": services.free_intervals(found, day, now),
        "opening": found.lab.opening_intervals(day),
        "certified": request.user.is_authenticated and services.is_certified(request.user, found.machine_type),
        "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
    })


@login_required
def search(request):
    form = SearchForm(request.GET or None)
    slots, error, induction = None, None, None
    if form.is_valid():
        try:
            slots = services.find_free_slots(request.user, form.cleaned_data["machine_type"],
                                             form.cleaned_data["minutes"])
        except DomainError as refused:
            error = refused.message
            induction = refused.details.get("next_induction")
    return render(request, "booking/search.html", {"form": form, "slots": slots, "error": error,
                                                   "induction": induction})


@login_required
@require_POST
def reserve_slot(request):
    try:
        machine = services.machine_by_slug(request.POST.get("lab", ""), request.POST.get("machine", ""))
        start = validation.parse_moment(request.POST["start"])
        end = validation.parse_moment(request.POST["end"])
        reservation = services.reserve(request.user, machine, start, end)
    except (KeyError, ValueError):
        messages.error(request, _("Yêu cầu không hợp lệ."))
        return redirect("booking:search")
    except DomainError as error:
        messages.error(request, error.message)
        if induction := error.details.get("next_induction"):
            label = _("Đăng ký buổi hướng dẫn: %(course)s") % {"course": induction["course"]}
            messages.info(request, format_html('<a href="{}">{}</a>', induction["url"], label))
        return redirect("booking:search")
    messages.success(request, _("Đã đặt máy."))
    return redirect("booking:reservation", reservation_id=reservation.pk)


@login_required
def my_reservations(request):
    return render(request, "booking/my_reservations.html", {
        "upcoming": services.reservations_of(request.user, upcoming=True),
        "past": services.reservations_of(request.user, upcoming=False)[:50],
    })


def _own(request, reservation_id: int):
    try:
        return services.reservation_for(request.user, reservation_id)
    except DomainError as error:
        raise Http404 from error


@login_required
def reservation(request, reservation_id: int):
    found = _own(request, reservation_id)
    token = None
    if found.status in (ReservationStatus.CONFIRMED, ReservationStatus.CHECKED_IN):
        token = tickets.sign(tickets.RESERVATION, found.ticket_code)
    return render(request, "booking/reservation.html", {
        "reservation": found, "token": token, "qr": tickets.qr_svg(token) if token else None,
    })


@login_required
def reservation_calendar(request, reservation_id: int):
    found = _own(request, reservation_id)
    response = HttpResponse(calendar.reservation_ics(found), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fablab-machine-{found.pk}.ics"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request, reservation_id: int):
    """GET says what cancelling would do (or why it cannot be done); POST does it."""
    found = _own(request, reservation_id)
    if request.method == "GET":
        refusal = (_("Bạn đã hủy lượt đặt máy này.") if found.status == ReservationStatus.CANCELLED
                   else getattr(services.cancellation_refusal(found, timezone.now()), "message", None))
        return render(request, "booking/cancel_reservation.html", {"reservation": found, "refusal": refusal})
    try:
        services.cancel_reservation(reservation_id, request.user)
        messages.success(request, _("Đã hủy lượt đặt máy."))
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("booking:my_reservations")


def _override(request, lab: Lab) -> None:
    """A technician's button on the lab's day: switch a machine off now, enable it for maintenance, or end that."""
    if "end_override" in request.POST:
        services.end_override(int(request.POST["end_override"]), by=request.user)
        messages.success(request, _("Đã kết thúc lệnh, máy theo lịch đặt trở lại."))
        return
    machine = get_object_or_404(lab.machines, slug=request.POST.get("machine", ""))
    reason = request.POST.get("reason", "")
    if request.POST.get("action") == "off":
        services.switch_machine_off(machine, by=request.user, reason=reason)
        messages.success(request, _("Đã tắt %(machine)s.") % {"machine": machine.name})
    elif request.POST.get("action") == "maintenance":
        try:
            until_time = datetime.strptime(request.POST.get("until", ""), "%H:%M").time()
        except ValueError:
            messages.error(request, _("Giờ kết thúc không hợp lệ."))
            return
        now = timezone.localtime()
        until = datetime.combine(now.date(), until_time, now.tzinfo)
        services.enable_for_maintenance(machine, until, by=request.user, reason=reason)
        messages.success(request, _("Đã bật %(machine)s để bảo trì đến %(time)s.")
                         % {"machine": machine.name, "time": until_time.strftime("%H:%M")})


@login_required
@require_http_methods(["GET", "POST"])
def lab_day(request, lab: str):
    found = get_object_or_404(Lab, slug=lab)
    day = _selected_day(request)
    if request.method == "POST":
        try:
            _override(request, found)
        except DomainError as error:
            if error.status == 403:
                raise PermissionDenied(error.message) from error
            messages.error(request, error.message)
        return redirect(request.get_full_path())
    try:
        rows = services.lab_timeline(found, day, by=request.user)
    except DomainError as error:
        raise PermissionDenied(error.message) from error
    for row in rows:
        row["overrides"] = services.overrides_in_force(row["machine"])
    tz = timezone.get_default_timezone()
    opening = found.opening_intervals(day) or [(datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=8),
                                                datetime.combine(day, datetime.min.time(), tz) + timedelta(hours=17))]
    day_start, day_end = opening[0][0], opening[-1][1]
    span = (day_end - day_start).total_seconds()

    def place(start, end):
        left = max((start - day_start).total_seconds() / span, 0)
        right = min((end - day_start).total_seconds() / span, 1)
        return {"left": round(left * 100, 2), "width": round(max(right - left, 0) * 100, 2)}

    for row in rows:
        row["blocks"] = ([{"kind": "reservation", "item": r, **place(r.start, r.end)} for r in row["reservations"]]
                         + [{"kind": "maintenance", "item": w, **place(w.start, w.end)} for w in row["maintenance"]])
    return render(request, "booking/lab_day.html", {
        "lab": found, "day": day, "rows": rows, "day_start": day_start, "day_end": day_end,
        "prev_day": day - timedelta(days=1), "next_day": day + timedelta(days=1),
    })


@login_required
@require_http_methods(["GET", "POST"])
def revoke_certification(request, certification_id: int):
    """Revoking asks once more: GET says what will happen and asks why; POST revokes."""
    try:
        consequences = services.revocation_consequences(certification_id, by=request.user)
    except DomainError as error:
        if error.status == 404:
            raise Http404 from error
        raise PermissionDenied(error.message) from error
    certification = consequences["certification"]
    error_message = None
    if request.method == "POST":
        reason = request.POST.get("reason", "")
        if len(reason) > 300:
            error_message = _("Lý do quá dài (tối đa 300 ký tự).")
        else:
            try:
                services.revoke_certification(certification.pk, by=request.user, reason=reason)
            except DomainError as error:
                error_message = error.message
            else:
                messages.success(request, _("Đã thu hồi quyền sử dụng %(type)s của %(name)s.")
                                 % {"type": certification.machine_type.name, "name": certification.user.full_name})
                return redirect(f"{reverse('booking:certifications')}?{urlencode({'q': certification.user.full_name})}")
    return render(request, "booking/revoke_certification.html", {
        **consequences, "error": error_message, "reason": request.POST.get("reason", "")[:300],
    })


@login_required
@require_http_methods(["GET", "POST"])
def certifications(request):
    is_staff = request.user.is_coordinator or request.user.is_technician
    form = GrantForm(request.POST or None, user=request.user) if is_staff else None
    if request.method == "POST":
        if not is_staff:
            raise PermissionDenied
        try:
            if "revoke" in request.POST:
                certification_id = validation.parse_id(request.POST["revoke"])
                if certification_id is None:
                    messages.error(request, _("Yêu cầu không hợp lệ."))
                    return redirect("booking:certifications")
                # Revoking asks once more, on its own page, saying what will happen.
                return redirect("booking:revoke_certification", certification_id=certification_id)
            if form.is_valid():
                learner = User.objects.filter(email__iexact=form.cleaned_data["email"]).first()
                if learner is None:
                    form.add_error("email", _("Không có người dùng với email này."))
                else:
                    services.grant_certification(user=learner, machine_type=form.cleaned_data["machine_type"],
                                                 by=request.user, reason=form.cleaned_data["reason"])
                    messages.success(request, _("Đã cấp quyền sử dụng."))
                    return redirect("booking:certifications")
        except DomainError as error:
            messages.error(request, error.message)
    query = request.GET.get("q", "").strip()
    listed = services.find_certifications(query, by=request.user) if is_staff else []
    return render(request, "booking/certifications.html", {
        "mine": request.user.certifications.select_related("machine_type"), "form": form, "is_staff": is_staff,
        "listed": listed, "query": query, "shows_contacts": policy.sees_contact_details(request.user),
    })


# --- maintenance windows: the machine is the lab's, the reservations it hits are booking's -------------------

def _staffed_lab(request, slug: str) -> Lab:
    """The lab named in the address, if the user works for it: 404 for no such lab, 403 for someone else's."""
    lab = get_object_or_404(Lab, slug=slug)
    if not policy.staffs_lab(request.user, lab):
        raise PermissionDenied
    return lab


class MaintenanceForm(forms.Form):
    LOCAL = "%Y-%m-%dT%H:%M"

    machine = forms.ModelChoiceField(label=gettext_lazy("Máy"), queryset=None, to_field_name="slug")
    start = validation.PlanDateTimeField(label=gettext_lazy("Bắt đầu"), input_formats=[LOCAL],
                                         widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))
    end = validation.PlanDateTimeField(label=gettext_lazy("Kết thúc"), input_formats=[LOCAL],
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL))
    reason = forms.CharField(label=gettext_lazy("Lý do"), max_length=300)

    def __init__(self, *args, lab: Lab, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["machine"].queryset = lab.machines.exclude(status=MachineStatus.RETIRED)

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] <= data["start"]:
            self.add_error("end", _("Giờ kết thúc phải sau giờ bắt đầu."))
        return data


@login_required
@require_http_methods(["GET", "POST"])
def plan_maintenance(request, lab: str):
    """Plan a maintenance window in two steps: the reservations it hits are shown, then it is saved and they are told.

    GET shows the form; POST `step=preview` shows what the window would hit without saving anything;
    POST `step=confirm` saves it (the holders are told then); POST `step=edit` goes back to the form.
    """
    found = _staffed_lab(request, lab)
    step = request.POST.get("step", "") if request.method == "POST" else ""
    if request.method == "GET":
        form = MaintenanceForm(lab=found, initial={"machine": request.GET.get("machine", "")})
    else:
        form = MaintenanceForm(request.POST, lab=found)
    context = {"lab": found, "form": form, "section": "maintenance"}
    if step in ("preview", "confirm") and form.is_valid():
        data = form.cleaned_data
        try:
            if step == "preview":
                hits = services.preview_maintenance(data["machine"], data["start"], data["end"], by=request.user)
                return render(request, "machines/maintenance_preview.html", {**context, "data": data, "hits": hits})
            window = services.schedule_maintenance(data["machine"], data["start"], data["end"],
                                                  reason=data["reason"].strip(), by=request.user)
        except DomainError as error:
            if error.status == 403:
                raise PermissionDenied(error.message) from error
            if error.status == 404:
                raise Http404(error.message) from error
            form.add_error(None, error.message)
        else:
            told = services.reservations_hit_by_maintenance(window.machine, window.start, window.end).count()
            messages.success(request, _("Đã lên lịch bảo trì %(machine)s; đã báo cho %(count)d người có lịch đặt máy "
                                        "trùng.") % {"machine": window.machine.name, "count": told})
            return redirect(reverse("machines:lab_machines", args=[found.slug]) + f"#machine-{window.machine.slug}")
    return render(request, "machines/maintenance_form.html", context)
