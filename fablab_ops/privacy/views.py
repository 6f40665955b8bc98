import json
import mimetypes

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fablab_ops import policy
from fablab_ops.accounts import throttle
from fablab_ops.errors import DomainError
from fablab_ops.privacy import schools, services
from fablab_ops.privacy.forms import LegacyConsentForm, SchoolClassForm
from fablab_ops.privacy.models import Purpose, SchoolConsent


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
@require_POST
def staff_erase(request, user_id: int):
    """A coordinator erases a learner's data on their request (or a school pupil's, who has no login)."""
    if request.POST.get("confirm") != "yes":
        messages.error(request, _("Hãy đánh dấu ô xác nhận để xóa dữ liệu."))
        return redirect("privacy:staff_export", user_id=user_id)
    try:
        services.staff_erase(request.user, user_id)
    except DomainError as error:
        raise Http404 from error
    messages.success(request, _("Đã xóa dữ liệu của học viên #%(id)s.") % {"id": user_id})
    return redirect("courses:manage_sessions")


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
    """The page a parent or guardian reaches from the e-mail: confirm; later stop the reminders, or withdraw
    consent, which erases the child's data (the law's rule for a child; the same as asking for erasure)."""
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
            if action == "stop_reminders":
                services.guardian_stop_reminders(token)
                messages.success(request, _("Em %(name)s sẽ không nhận email nhắc nữa; việc đăng ký lớp và đặt máy "
                                            "vẫn như trước.") % {"name": data.user.full_name})
                return redirect("privacy:guardian", token=token)
            if action in ("withdraw", "erase"):
                if request.POST.get("confirm") != "yes":
                    messages.error(request, _("Hãy đánh dấu ô xác nhận để rút lại sự đồng ý và xóa dữ liệu."))
                    return redirect("privacy:guardian", token=token)
                services.guardian_withdraw(token)
                return render(request, "privacy/guardian_done.html")
        except DomainError as error:
            messages.error(request, error.message)
            return redirect("privacy:guardian", token=token)
    return render(request, "privacy/guardian.html", {"data": data, "child": data.user, "token": token,
                                                     "controller": services.controller(),
                                                     "bookings": services.child_bookings(data)})


# --- accounts older than the consent question ----------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def confirm(request):
    """Asked at the next login of an account made before consent was asked: date of birth and consents."""
    if not services.needs_consent(request.user):
        return redirect("accounts:profile")
    form = LegacyConsentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        guardian = {key: data[key] for key in ("guardian_name", "guardian_email", "guardian_relation")}
        for field, message in services.validate_signup_age(data["date_of_birth"], child_agrees=data["child_agrees"],
                                                           guardian={**guardian, "email": request.user.email}):
            if field not in form.errors:
                form.add_error(field, message)
        if not form.errors:
            try:
                services.confirm_legacy(request.user, born=data["date_of_birth"], bookings=data["consent_bookings"],
                                        reminders=data["consent_reminders"], child_agrees=data["child_agrees"],
                                        guardian=guardian)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                if services.awaits_guardian(request.user):
                    messages.info(request, _("Chúng tôi đã gửi email tới %(email)s để cha mẹ hoặc người giám hộ xác "
                                             "nhận. Trong lúc chờ, em vẫn xem được lịch học.")
                                  % {"email": guardian["guardian_email"]})
                else:
                    messages.success(request, _("Đã ghi nhận. Bạn có thể đăng ký lớp và đặt máy."))
                return redirect("courses:session_list")
    return render(request, "privacy/confirm.html", {"form": form}, status=400 if form.errors else 200)


# --- a school registers a class of pupils ------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def school_class(request):
    """Preview first (every line checked, nothing saved), then save: the school's consent, the pupils, their seats."""
    if not policy.may_register_school_classes(request.user):
        raise PermissionDenied
    form = SchoolClassForm(request.POST or None, request.FILES or None)
    checked = done = None
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        pupils_text = data["pupils"]
        try:
            if data.get("pupils_file"):
                pupils_text = schools.read_csv_upload(data["pupils_file"])
                form.data = form.data.copy()
                form.data["pupils"] = pupils_text
            checked = schools.preview(by=request.user, school=data["school"], pupils_text=pupils_text,
                                      sessions=data["sessions"])
            if "save" in request.POST and checked.valid:
                done = schools.register(
                    by=request.user, school=data["school"], reference=data["reference"],
                    document_date=data["document_date"], signatory=data["signatory"], purposes=data["purposes"],
                    pupils_text=pupils_text, sessions=data["sessions"], children_agreed=data["children_agreed"],
                    scan=data.get("scan"))
                checked = None
        except DomainError as error:
            form.add_error(None, error.message)
        if checked is not None and not checked.valid:
            status = 400
    elif request.method == "POST":
        status = 400
    if form.errors:
        status = 400
    return render(request, "privacy/school_class.html", {
        "form": form, "checked": checked, "done": done, "consents": schools.school_consents()[:20],
    }, status=status)


@login_required
def school_consent_scan(request, consent_id: int):
    """The scanned consent document, for coordinators only; no public address serves it."""
    consent = SchoolConsent.objects.filter(pk=consent_id).first()
    if not policy.may_register_school_classes(request.user) or consent is None or not consent.scan:
        raise Http404
    extension = schools.extension(consent.scan.name)
    with consent.scan.open("rb") as scan:  # at most 10 MB (the form's limit)
        response = HttpResponse(scan.read(), content_type=mimetypes.types_map.get(extension,
                                                                                  "application/octet-stream"))
    response["Content-Disposition"] = f'attachment; filename="van-ban-{consent.pk}{extension}"'
    response["Cache-Control"] = "no-store"
    return response
