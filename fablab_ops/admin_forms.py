"""How the admin handles stateful records: it shows them, and it translates staff requests into services.

`ReadOnlyAdmin` lets staff see a model but not add, change or delete rows by hand.
`service_action` turns a form (a reason, a new capacity, …) into calls of a service
function for each selected row, with the service's refusals shown as messages.
`ServiceAddAdmin` replaces the add page by a form whose valid submission calls a
service (scheduling maintenance, granting a certification), so every rule applies
and everyone concerned is told.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from fablab_ops.errors import DomainError

FORM_TEMPLATE = "admin/fablab_ops/service_form.html"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _render(modeladmin, request, *, title: str, form, queryset=None, action: str = "", submit: str = ""):
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title, "form": form, "queryset": queryset, "action": action,
        "submit": submit or _("Thực hiện"), "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, FORM_TEMPLATE, context)


def service_action(name: str, *, form_class: type[forms.Form], description, apply, done_message):
    """An admin action with a form: `apply(request, obj, cleaned_data)` calls the service for each row.

    Staff who may view the rows may ask; the service decides (it checks the user's role and every rule).
    """

    def action(modeladmin, request, queryset):
        if "apply" in request.POST:
            form = form_class(request.POST)
            if form.is_valid():
                done = 0
                for obj in queryset:
                    try:
                        apply(request, obj, form.cleaned_data)
                    except DomainError as error:
                        modeladmin.message_user(request, f"{obj}: {error.message}", messages.ERROR)
                    else:
                        done += 1
                if done:
                    modeladmin.message_user(request, done_message % {"n": done}, messages.SUCCESS)
                return None
        else:
            form = form_class()
        return _render(modeladmin, request, title=str(description), form=form, queryset=queryset, action=name)

    action.__name__ = name
    action.short_description = description
    action.allowed_permissions = ("view",)
    return action


class ServiceAddAdmin(ReadOnlyAdmin):
    """Read-only rows; the add page is a form whose submission calls `create(request, cleaned_data)`."""

    add_form: type[forms.Form]
    add_title = ""

    def has_add_permission(self, request, obj=None):
        return self.has_view_permission(request)

    def create(self, request, data):  # pragma: no cover - each admin defines it
        raise NotImplementedError

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = self.add_form(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                created = self.create(request, form.cleaned_data)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.log_addition(request, created, [{"added": {}}])
                self.message_user(request, _("Đã lưu: %(obj)s") % {"obj": created}, messages.SUCCESS)
                info = self.model._meta.app_label, self.model._meta.model_name
                return HttpResponseRedirect(reverse("admin:{}_{}_changelist".format(*info)))
        return _render(self, request, title=str(self.add_title), form=form, submit=_("Lưu"))
