from django.contrib import admin
from django.db.models import Count
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from fablab_ops.admin_forms import ReadOnlyAdmin
from fablab_ops.privacy.models import AccessLogEntry, Consent, SchoolConsent


@admin.register(AccessLogEntry)
class AccessLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "subject", "viewer", "what", "context"]
    list_filter = ["what"]
    # Per learner: ?subject__id__exact=<id>, or search by their e-mail.
    search_fields = ["subject__email", "subject__full_name"]
    date_hierarchy = "at"
    list_select_related = ["subject", "viewer"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["at", "user", "purpose", "granted", "notice_version", "channel", "by_guardian"]
    list_filter = ["purpose", "granted", "channel"]
    search_fields = ["user__email"]
    list_select_related = ["user"]


@admin.register(SchoolConsent)
class SchoolConsentAdmin(ReadOnlyAdmin):
    """Schools' written consents (recorded from the school-class page). The scan has no URL of its own: the
    link goes to the page that asks the policy."""

    list_display = ["school", "reference", "document_date", "signatory", "pupil_count", "recorded_by", "recorded_at"]
    search_fields = ["school", "reference"]
    fields = ["school", "reference", "document_date", "signatory", "purposes", "scan_link", "recorded_by",
              "recorded_at"]
    readonly_fields = fields
    list_select_related = ["recorded_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(pupils_count=Count("pupils"))

    @admin.display(description=_("Học sinh"), ordering="pupils_count")
    def pupil_count(self, obj):
        return obj.pupils_count

    @admin.display(description=_("Bản scan"))
    def scan_link(self, obj):
        if not obj.scan:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("privacy:school_consent_scan", args=[obj.pk]),
                           _("Bản scan"))
