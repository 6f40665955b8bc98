from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.storage import staticfiles_storage
from django.http import HttpResponsePermanentRedirect
from django.urls import include, path
from django.views.generic import RedirectView

from fablab_ops import policy, views
from fablab_ops.accounts.forms import ThrottleAwareAdminAuthenticationForm
from fablab_ops.api import api

admin.autodiscover()  # settings.INSTALLED_APPS: SimpleAdminConfig, so the admin is loaded here, with the URLs
admin.site.site_header = "fablab-ops"
admin.site.site_title = "fablab-ops"
admin.site.login_form = ThrottleAwareAdminAuthenticationForm
# The admin opens to those it shows something to (fablab_ops/policy.py): staff without model rights are sent to
# its login page, which says they may not enter, instead of an empty index.
admin.site.has_permission = lambda request: policy.may_open_admin(request.user)

def favicon(request):
    # Browsers ask for /favicon.ico whatever the page says; resolved per request (the manifest is read then).
    return HttpResponsePermanentRedirect(staticfiles_storage.url("favicon.svg"))


urlpatterns = [
    # For operators and probes (no login; /metrics is protected by its own rule): docs/operations.md.
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("", RedirectView.as_view(pattern_name="courses:session_list", permanent=False)),
    path("favicon.ico", favicon),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/", include("fablab_ops.accounts.urls")),
    path("courses/", include("fablab_ops.courses.urls")),
    path("machines/", include("fablab_ops.machines.urls")),
    path("booking/", include("fablab_ops.booking.urls")),
    path("booking/", include("fablab_ops.door.urls")),
    path("reports/", include("fablab_ops.reports.urls")),
    path("privacy/", include("fablab_ops.privacy.urls")),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

handler400 = "fablab_ops.views.bad_request"
handler404 = "fablab_ops.views.page_not_found"
handler500 = "fablab_ops.views.server_error"
