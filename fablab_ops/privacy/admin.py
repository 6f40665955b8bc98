from django.contrib import admin

from fablab_ops.privacy.models import AccessLogEntry, Consent


class ReadOnly(admin.ModelAdmin):
    """A record of what happened: nobody edits or deletes it here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessLogEntry)
class AccessLogAdmin(ReadOnly):
    list_display = ["at", "subject", "viewer", "what", "context"]
    list_filter = ["what"]
    # Per learner: ?subject__id__exact=<id>, or search by their e-mail.
    search_fields = ["subject__email", "subject__full_name"]
    date_hierarchy = "at"
    list_select_related = ["subject", "viewer"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser


@admin.register(Consent)
class ConsentAdmin(ReadOnly):
    list_display = ["at", "user", "purpose", "granted", "notice_version", "channel", "by_guardian"]
    list_filter = ["purpose", "granted", "channel"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
