from django.contrib.auth import login
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.views.decorators.http import require_http_methods

from fablab_ops.accounts import services
from fablab_ops.accounts.forms import SignupForm


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.register_learner(**form.cleaned_data, language=(get_language() or "vi")[:2])
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("courses:session_list")
    return render(request, "accounts/signup.html", {"form": form})
