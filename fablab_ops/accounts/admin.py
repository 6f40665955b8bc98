from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from fablab_ops import notifications
from fablab_ops.accounts import hooks, services
from fablab_ops.accounts.models import ApiToken, Notification, Role, User
from fablab_ops.errors import DomainError


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["full_name"]
    list_display = ["email", "full_name", "phone", "role", "is_active", "date_joined"]
    list_filter = ["role", "is_active", "is_staff", "language"]
    search_fields = ["email", "full_name", "phone"]
    readonly_fields = ["date_joined", "last_login", "email_verified_at", "personal_data_links"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Thông tin"), {"fields": ["full_name", "phone", "organisation", "language", "role"]}),
        (_("Quyền"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Thời gian"), {"fields": ["last_login", "date_joined", "email_verified_at"]}),
        (_("Dữ liệu cá nhân"), {"fields": ["personal_data_links"]}),
    ]
    actions = ["mark_email_verified"]

    @admin.display(description=_("Nhật ký và bản xuất"))
    def personal_data_links(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        log = reverse("admin:privacy_accesslogentry_changelist") + f"?subject__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a> · <a href="{}">{}</a>', log, _("Ai đã xem dữ liệu của người này"),
                           reverse("privacy:staff_export", args=[obj.pk]), _("Bản xuất toàn bộ dữ liệu"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """A learner's record shows their personal data: who opened it is logged (Law 91/2025/QH15)."""
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            subject = self.get_object(request, unquote(object_id))
            if subject is not None and subject.role == Role.LEARNER:
                hooks.call("record_access", request.user, subject, "admin")
        return response

    @admin.action(description=_("Đánh dấu email đã xác nhận"), permissions=["change"])
    def mark_email_verified(self, request, queryset):
        for user in queryset.filter(email_verified_at__isnull=True):
            services.mark_email_verified(user)
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "full_name", "role", "password1", "password2"]}),
    ]


class ApiTokenAddForm(forms.ModelForm):
    """Who and what for; the secret and its digest are made by the service, never typed."""

    class Meta:
        model = ApiToken
        fields = ["user", "name"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("user") and not services.may_issue_token(cleaned["user"]):
            raise forms.ValidationError(_("Người này đã có quá nhiều khóa API đang dùng."), code="too_many_tokens")
        return cleaned


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued like on the learner's tokens page: by the service, the secret shown once."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__email"]
    autocomplete_fields = ["user"]
    actions = ["revoke_tokens"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = ApiTokenAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"]
        return ["user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "prefix", "created_at", "last_used_at", "revoked_at"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        try:
            token, secret = services.issue_token(obj.user, obj.name)
        except DomainError as error:  # a race past the form's check
            raise forms.ValidationError(error.message) from error
        obj.__dict__.update({field.attname: getattr(token, field.attname) for field in ApiToken._meta.concrete_fields})
        obj._state.adding, obj._state.db = False, token._state.db
        request._issued_api_token_secret = secret

    def response_add(self, request, obj, post_url_continue=None):
        secret = getattr(request, "_issued_api_token_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(request, "admin/accounts/apitoken/issued.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "token": obj, "secret": secret,
            "title": _("Khóa API mới"),
        })
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=_("Thu hồi các khóa đã chọn"), permissions=["change"])
    def revoke_tokens(self, request, queryset):
        count = services.revoke_tokens(queryset)
        self.message_user(request, ngettext("Đã thu hồi %(n)d khóa API.", "Đã thu hồi %(n)d khóa API.", count)
                          % {"n": count}, messages.SUCCESS)


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
