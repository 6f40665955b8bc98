from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from fablab_ops import notifications
from fablab_ops.accounts.models import ApiToken, Notification, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["full_name"]
    list_display = ["email", "full_name", "phone", "role", "is_active", "date_joined"]
    list_filter = ["role", "is_active", "is_staff", "language"]
    search_fields = ["email", "full_name", "phone"]
    readonly_fields = ["date_joined", "last_login"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Thông tin"), {"fields": ["full_name", "phone", "language", "role"]}),
        (_("Quyền"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Thời gian"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "role", "password1", "password2"]}),
    ]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__email"]
    readonly_fields = ["prefix", "digest", "created_at", "last_used_at"]
    autocomplete_fields = ["user"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """The e-mail outbox as staff see it: what is due, sent or failed and why; failed rows can be retried."""

    list_display = ["created_at", "user", "kind", "subject", "state", "attempts", "next_attempt_at", "sent_at",
                    "last_error"]
    list_filter = ["state", "kind"]
    search_fields = ["user__email", "user__full_name", "subject", "dedup_key"]
    list_select_related = ["user"]
    actions = ["retry_sending"]
    fields = ["user", "kind", "dedup_key", "subject", "body", "attachment_name", "state", "attempts",
              "next_attempt_at", "claimed_until", "sent_at", "last_error", "message_id", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Gửi lại các thông báo đã chọn"), permissions=["view"])
    def retry_sending(self, request, queryset):
        retried = notifications.retry(queryset.values_list("pk", flat=True))
        self.message_user(request, _("Đã xếp %(n)d thông báo để gửi lại.") % {"n": retried})
