import json

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fablab_ops.accounts import throttle
from fablab_ops.errors import DomainError
from fablab_ops.privacy import services
from fablab_ops.privacy.models import Purpose


def notice(request):
    return render(request, "privacy/notice.html", {
        "controller": services.controller(), "version": services.notice_version(),
        "adult_age": services.ADULT_AGE, "child_age": services.CHILD_OWN_CONSENT_AGE,
    })


@login_required
@require_POST
def consent(request, purpose: str, action: str):
    if purpose not in Purpose.values or action not in ("give", "withdraw"):
        raise Http404
    try:
        if action == "withdraw":
            withdrawal = services.withdraw(request.user, purpose)
            messages.success(request, _("Đã rút lại sự đồng ý. %(consequence)s")
                             % {"consequence": withdrawal.consequence})
        else:
            services.give(request.user, purpose)
            messages.success(request, _("Đã ghi nhận sự đồng ý của bạn."))
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("/accounts/profile/#privacy")


@login_required
@require_POST
def guardian_resend(request):
    """A waiting pupil sends the guardian's link again (counted like the other account e-mails)."""
    address = services.pending_guardian_email(request.user)
    if address is None:
        messages.info(request, _("Tài khoản của bạn không chờ người giám hộ xác nhận."))
    elif throttle.mail_blocked(request, address):
        messages.error(request, _("Chúng tôi vừa gửi email nhiều lần. Vui lòng thử lại sau ít phút."))
    else:
        throttle.record_mail(request, address)
        services.resend_guardian_request(request.user)
        messages.success(request, _("Đã gửi lại email tới %(email)s.") % {"email": address})
    return redirect("/accounts/profile/#privacy")


def _json(data: dict, filename: str) -> HttpResponse:
    response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
def export_json(request):
    return _json(services.export(request.user), "du-lieu-cua-toi.json")


@login_required
def export_page(request):
    response = render(request, "privacy/export.html", {"data": services.export(request.user), "subject": None})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def staff_export(request, user_id: int):
    """A coordinator's copy of a learner's data (to answer a request made in person or by post): logged."""
    try:
        learner, data = services.staff_export(request.user, user_id)
    except DomainError as error:
        raise Http404 from error
    if request.GET.get("format") == "json":
        return _json(data, f"du-lieu-hoc-vien-{learner.pk}.json")
    response = render(request, "privacy/export.html", {"data": data, "subject": learner})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def erase(request):
    """Asks once more and says what follows; only then erases."""
    error = None
    if request.method == "POST":
        if request.POST.get("confirm") != "yes":
            error = _("Hãy đánh dấu ô xác nhận để xóa dữ liệu.")
        else:
            try:
                services.erase(request.user)
            except DomainError as refusal:
                error = refusal.message
            else:
                logout(request)
                messages.success(request, _("Dữ liệu cá nhân của bạn đã được xóa và tài khoản đã đóng."))
                return redirect("privacy:notice")
    return render(request, "privacy/erase.html", {"error": error}, status=400 if error else 200)


@require_http_methods(["GET", "POST"])
def guardian(request, token: str):
    """The page a parent or guardian reaches from the e-mail: confirm, or later withdraw (which erases)."""
    try:
        data = services.read_guardian_link(token)
    except DomainError as error:
        return render(request, "accounts/link_refused.html", {
            "title": _("Liên kết không dùng được"), "reason": error.message}, status=error.status)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "confirm":
                services.guardian_confirm(token)
                messages.success(request, _("Cảm ơn anh/chị đã xác nhận. Em %(name)s có thể đăng ký lớp và đặt máy.")
                                 % {"name": data.user.full_name})
                return redirect("privacy:guardian", token=token)
            if action == "withdraw":
                if request.POST.get("confirm") != "yes":
                    messages.error(request, _("Hãy đánh dấu ô xác nhận để rút lại sự đồng ý."))
                    return redirect("privacy:guardian", token=token)
                services.guardian_withdraw(token)
                return render(request, "privacy/guardian_done.html")
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("privacy:guardian", token=token)
    return render(request, "privacy/guardian.html", {"data": data, "child": data.user, "token": token,
                                                     "controller": services.controller(),
                                                     "bookings": services.child_bookings(data)})
