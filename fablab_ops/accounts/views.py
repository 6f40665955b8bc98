from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_http_methods, require_POST

from fablab_ops.accounts import services, throttle
from fablab_ops.accounts.forms import LocalisedPasswordResetForm, SignupForm, TokenForm
from fablab_ops.errors import DomainError

THROTTLED = _lazy("Bạn đã thử đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.")


class LoginView(auth_views.LoginView):
    """Django's login view; failed guesses are throttled inside authentication (accounts/throttle.py)."""

    template_name = "accounts/login.html"

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
        user = services.register_learner(**form.cleaned_data, language=(get_language() or "vi")[:2])
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        return redirect("courses:session_list")
    return render(request, "accounts/signup.html", {"form": form})


@login_required
@require_POST
def rotate_feed(request):
    services.rotate_feed_secret(request.user)
    messages.success(request, _("Đã đổi địa chỉ lịch riêng. Địa chỉ cũ không còn dùng được: "
                                "hãy đăng ký lại địa chỉ mới trong ứng dụng lịch."))
    return redirect("courses:my_bookings")


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
        return super().form_valid(form)


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change_form.html"
    success_url = reverse_lazy("accounts:password_change_done")


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "accounts/password_change_done.html"
