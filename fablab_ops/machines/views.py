from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from fablab_ops import charts, errors, policy
from fablab_ops.machines import services
from fablab_ops.machines.models import Lab


def lab_list(request):
    labs = Lab.objects.filter(is_active=True).prefetch_related("opening_hours", "machines__machine_type")
    # The labs whose own pages (machines, the day, the door) the user works in, read once for every card.
    staffed = set(policy.staffed_labs(request.user).values_list("pk", flat=True))
    return render(request, "machines/lab_list.html", {"labs": labs, "staffed": staffed})


def _live_context(request) -> dict:
    """Every lab the user staffs, each with its machines now and their day's timeline (staff only)."""
    labs = list(policy.staffed_labs(request.user))
    if not labs:
        raise PermissionDenied
    now = timezone.now()
    boards = []
    for lab in labs:
        rows = services.live_board_today(lab, now=now)
        for row in rows:
            row["timeline"] = charts.day_timeline(
                _("%(machine)s hôm nay") % {"machine": row["machine"].name},
                _("Các khoảng thời gian máy chạy hôm nay, từ 0 giờ đến 24 giờ."), row["day_start"], row["runs"],
                now=timezone.localtime(now))
            row["timeline"].ident = f"timeline-{lab.slug}-{row['machine'].slug}"
            row["timeline"].headers = [_("Từ"), _("Đến")]
        boards.append((lab, rows))
    return {"boards": boards, "ingest_stale_minutes": services.ingest_stale_minutes(), "updated_at": now}


@login_required
def live(request):
    """The machines of every lab the user staffs at a glance; each lab's own page has the work. The page
    updates itself from `live_board` (static/js/live.js), without reloading."""
    return render(request, "machines/live.html", _live_context(request))


@login_required
def live_board(request):
    """The live board alone, as an HTML fragment the live page fetches every 30 seconds."""
    response = render(request, "machines/_live_board.html", _live_context(request))
    response["Cache-Control"] = "no-store"
    return response


# --- a lab's pages, for its technicians and the network's coordinators ----------------------------

def _staffed_lab(request, slug: str) -> Lab:
    """The lab named in the address, if the user works for it: 404 for no such lab, 403 for someone else's."""
    lab = get_object_or_404(Lab, slug=slug)
    if not policy.staffs_lab(request.user, lab):
        raise PermissionDenied
    return lab


def _done(request, lab: Lab, anchor: str = ""):
    url = reverse("machines:lab_machines", args=[lab.slug])
    return redirect(f"{url}#{anchor}" if anchor else url)


def _refused(request, error: errors.DomainError) -> None:
    if error.status == 403:
        raise PermissionDenied(error.message) from error
    if error.status == 404:
        raise Http404(error.message) from error
    messages.error(request, error.message)


class NoteForm(forms.Form):
    note = forms.CharField(max_length=services.NOTE_MAX, required=False)


@login_required
def lab_machines(request, lab: str):
    """A lab's machines: state, who may use each now, alerts to take in hand, maintenance to plan or record."""
    found = _staffed_lab(request, lab)
    page = services.lab_machines(found, by=request.user)
    return render(request, "machines/lab_machines.html", {
        "lab": found, "board": page["board"], "recent_alerts": page["recent_alerts"],
        "ingest_stale_minutes": services.ingest_stale_minutes(), "section": "machines",
    })


def _alert_action(request, lab: str, alert_id: int, act, done: str):
    """Acknowledge or resolve an alert with a note: the service decides, the page says what happened."""
    found = _staffed_lab(request, lab)
    form = NoteForm(request.POST)
    try:
        if not form.is_valid():
            raise errors.DomainError(_("Ghi chú quá dài (tối đa %(n)d ký tự).") % {"n": services.NOTE_MAX})
        alert = act(found, alert_id, by=request.user, note=form.cleaned_data["note"])
    except errors.DomainError as error:
        _refused(request, error)
        return _done(request, found)
    messages.success(request, done % {"kind": alert.get_kind_display(), "machine": alert.machine.name})
    return _done(request, found, f"machine-{alert.machine.slug}")


@login_required
@require_POST
def acknowledge_alert(request, lab: str, alert_id: int):
    return _alert_action(request, lab, alert_id, services.acknowledge_alert,
                         _("Đã tiếp nhận cảnh báo %(kind)s của %(machine)s."))


@login_required
@require_POST
def resolve_alert(request, lab: str, alert_id: int):
    return _alert_action(request, lab, alert_id, services.resolve_alert,
                         _("Đã đóng cảnh báo %(kind)s của %(machine)s."))


@login_required
@require_POST
def record_maintenance(request, lab: str, machine: str):
    found = _staffed_lab(request, lab)
    target = get_object_or_404(found.machines, slug=machine)
    form = NoteForm(request.POST)
    try:
        if not form.is_valid():
            raise errors.DomainError(_("Ghi chú quá dài (tối đa %(n)d ký tự).") % {"n": services.NOTE_MAX})
        log = services.record_maintenance(target, by=request.user, note=form.cleaned_data["note"])
    except errors.DomainError as error:
        _refused(request, error)
        return _done(request, found, f"machine-{target.slug}")
    messages.success(request, _("Đã ghi nhận bảo trì %(machine)s (%(hours).1f giờ chạy); bộ đếm giờ chạy bắt đầu lại "
                                "từ 0.") % {"machine": target.name, "hours": log.running_hours})
    return _done(request, found, f"machine-{target.slug}")


@login_required
def quarantine(request, lab: str):
    """Telemetry of the lab's machines the ingest refused, with why, newest first."""
    found = _staffed_lab(request, lab)
    reasons = services.quarantine_reasons(found)
    reason = request.GET.get("reason", "")
    if reason not in reasons:
        reason = ""
    listing = services.quarantined_messages(found, by=request.user, reason=reason)
    page = Paginator(listing, services.QUARANTINE_PAGE).get_page(request.GET.get("page"))
    return render(request, "machines/quarantine.html", {
        "lab": found, "page": page, "reasons": reasons, "reason": reason, "section": "quarantine",
    })
