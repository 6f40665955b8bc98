from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST

from fablab_ops.accounts import hooks, services, throttle
from fablab_ops.accounts.forms import (
    EmailChangeForm,
    LocalisedPasswordResetForm,
    ProfileForm,
    SignupForm,
    TokenForm,
)
from fablab_ops.errors import DomainError

THROTTLED = _lazy("Bạn đã thử đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.")


class LoginView(auth_views.LoginView):
    """Django's login view; failed guesses are throttled inside authentication (accounts/throttle.py)."""

    template_name = "accounts/login.html"

    def get_success_url(self):
        # A page the layers above must show first (an account older than the consent question is asked it).
        return hooks.first("login_destination", self.request.user) or super().get_success_url()

    def form_invalid(self, form):
        if getattr(self.request, "login_throttled", False):
            context = self.get_context_data(form=form)
            context["rate_limited"] = THROTTLED
            return self.render_to_response(context, status=429)
        return super().form_invalid(form)


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and throttle.signup_blocked(request):
        return render(request, "accounts/signup.html", {
            "form": form, "rate_limited": _("Đã có quá nhiều tài khoản được tạo từ địa chỉ này. Vui lòng thử lại sau."),
        }, status=429)
    if request.method == "POST" and form.is_valid():
        throttle.record_signup(request)
        data = dict(form.cleaned_data)
        guardian = {key: data.pop(key) for key in ("guardian_name", "guardian_email", "guardian_relation")}
        user = services.register_learner(**data, guardian=guardian, language=(get_language() or "vi")[:2])
        throttle.record_mail(request, user.email)  # the verification link just mailed counts
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        messages.success(request, _("Chào mừng bạn! Chúng tôi đã gửi email xác nhận tới %(email)s: hãy mở liên kết "
                                    "trong email để có thể đăng ký lớp và đặt máy.") % {"email": user.email})
        for notices in hooks.call("signup_notices", user):
            for notice in notices:
                messages.info(request, notice)
        return redirect("courses:session_list")
    return render(request, "accounts/signup.html", {"form": form})


def _next_or(request, default: str) -> str:
    """The page to go back to, when it is one of ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return reverse(default)


@login_required
@require_POST
def rotate_feed(request):
    services.rotate_feed_secret(request.user)
    messages.success(request, _("Đã đổi địa chỉ lịch riêng. Địa chỉ cũ không còn dùng được: "
                                "hãy đăng ký lại địa chỉ mới trong ứng dụng lịch."))
    return redirect(_next_or(request, "courses:my_bookings"))


# --- e-mail verification ---------------------------------------------------------

@login_required
@require_POST
def resend_verification(request):
    user = request.user
    if user.email_verified:
        messages.info(request, _("Email của bạn đã được xác nhận."))
    elif throttle.mail_blocked(request, user.email):
        messages.error(request, _("Chúng tôi vừa gửi email xác nhận nhiều lần. Vui lòng kiểm tra hộp thư "
                                  "(cả thư rác) hoặc thử lại sau ít phút."))
    else:
        throttle.record_mail(request, user.email)
        services.send_verification(user)
        messages.success(request, _("Đã gửi lại email xác nhận tới %(email)s.") % {"email": user.email})
    return redirect(_next_or(request, "courses:session_list"))


@require_http_methods(["GET"])
def verify_email(request, token: str):
    try:
        services.verify_email(token)
    except DomainError as error:
        return render(request, "accounts/link_refused.html", {
            "title": _("Không xác nhận được email"), "reason": error.message,
        }, status=error.status)
    messages.success(request, _("Đã xác nhận email. Bây giờ bạn có thể đăng ký lớp và đặt máy."))
    return redirect("courses:session_list")


# --- profile ---------------------------------------------------------------------

def _profile_page(request, *, form=None, email_form=None, status=200):
    user = request.user
    form = form or ProfileForm(initial={"full_name": user.full_name, "phone": user.phone,
                                        "organisation": user.organisation, "language": user.language})
    feed_url = request.build_absolute_uri(reverse("courses:learner_feed", args=[user.feed_secret]))
    return render(request, "accounts/profile.html", {
        "form": form, "email_form": email_form or EmailChangeForm(request=request),
        "feed_url": feed_url, "token_count": services.active_tokens(user).count(),
        **{key: value for extra in hooks.call("profile_context", user) for key, value in extra.items()},
    }, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    if request.method != "POST":
        return _profile_page(request)
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            user = services.update_profile(request.user, **form.cleaned_data)
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            # The chosen language is the site's from now on, not only the e-mails'.
            translation.activate(user.language)
            messages.success(request, _("Đã lưu hồ sơ."))
            response = redirect("accounts:profile")
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language,
                                max_age=settings.LANGUAGE_COOKIE_AGE, samesite="Lax",
                                secure=settings.SESSION_COOKIE_SECURE)
            return response
    return _profile_page(request, form=form)


@login_required
@require_POST
def change_email(request):
    form = EmailChangeForm(request.POST, request=request)
    if form.is_valid():
        try:
            new_email = services.request_email_change(request.user, form.cleaned_data["new_email"])
        except DomainError as error:
            form.add_error("new_email", error.message)
        else:
            messages.success(request, _("Chúng tôi đã gửi liên kết xác nhận tới %(email)s. Email của bạn chỉ đổi khi "
                                        "bạn mở liên kết đó.") % {"email": new_email})
            return redirect("accounts:profile")
    return _profile_page(request, email_form=form)


@require_http_methods(["GET", "POST"])
def confirm_email_change(request, token: str):
    """GET says what will change; POST changes it (a mail scanner opening the link changes nothing)."""
    confirming = request.method == "POST"
    try:
        change = services.confirm_email_change(token) if confirming else services.read_email_change(token)
    except DomainError as error:
        return render(request, "accounts/link_refused.html", {
            "title": _("Không đổi được email"), "reason": error.message,
        }, status=error.status)
    if confirming:
        messages.success(request, _("Đã đổi email thành %(email)s. Từ nay hãy đăng nhập bằng email này.")
                         % {"email": change.new_email})
        return redirect("accounts:profile" if request.user.is_authenticated else "accounts:login")
    return render(request, "accounts/confirm_email_change.html", {"change": change})


# --- personal API tokens ----------------------------------------------------------

@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    form = TokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            token, secret = services.issue_token(request.user, form.cleaned_data["name"])
        except DomainError as error:
            form.add_error("name", error.message)
        else:
            issued = {"token": token, "secret": secret}
            form = TokenForm()
    response = render(request, "accounts/tokens.html", {
        "form": form, "tokens": services.active_tokens(request.user), "issued": issued,
        "may_issue": services.may_issue_token(request.user),
    })
    if issued:
        # The secret is in this page only: no cache, no back-button copy.
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def revoke_token(request, token_id: int):
    try:
        token = services.token_of(request.user, token_id)
    except DomainError as error:
        raise Http404 from error
    if request.method == "POST":
        services.revoke_token(request.user, token.pk)
        messages.success(request, _("Đã thu hồi khóa API “%(name)s”.") % {"name": token.name})
        return redirect("accounts:tokens")
    return render(request, "accounts/token_revoke.html", {"token": token})


# --- passwords: Django's views, Vietnamese templates ---------------------------

class PasswordResetView(auth_views.PasswordResetView):
    """Asks for the address and mails a one-time link; the answer is the same whether it is known or not."""

    form_class = LocalisedPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        email = form.cleaned_data["email"]
        if throttle.mail_blocked(self.request, email):
            # Same answer as a sent link: nothing tells an attacker the limit was reached or the address known.
            return HttpResponseRedirect(self.get_success_url())
        throttle.record_mail(self.request, email)
        self.extra_email_context = {"days": max(settings.PASSWORD_RESET_TIMEOUT // 86400, 1)}
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Following the mailed link proved the address is theirs.
        services.mark_email_verified(form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"
