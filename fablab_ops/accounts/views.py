from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from fablab_ops.accounts import services
from fablab_ops.accounts.forms import SignupForm

# Guessing passwords is throttled per address and per account: a shared school
# network still gets through, one account under attack does not.
LOGIN_RATE_PER_IP = "30/10m"
LOGIN_RATE_PER_ACCOUNT = "5/10m"


@method_decorator(ratelimit(key="ip", rate=LOGIN_RATE_PER_IP, method="POST", block=False), name="post")
@method_decorator(ratelimit(key="post:username", rate=LOGIN_RATE_PER_ACCOUNT, method="POST", block=False),
                  name="post")
class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"

    def post(self, request, *args, **kwargs):
        if getattr(request, "limited", False):
            form = self.get_form()
            form.is_bound = False
            context = self.get_context_data(form=form)
            context["rate_limited"] = _("Bạn đã thử đăng nhập quá nhiều lần. Vui lòng thử lại sau 10 phút.")
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.register_learner(**form.cleaned_data, language=(get_language() or "vi")[:2])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("courses:session_list")
    return render(request, "accounts/signup.html", {"form": form})
