from django import forms
from django.contrib import admin
from django.contrib.admin import widgets
from django.utils.translation import gettext_lazy as _

from fablab_ops.accounts.models import User
from fablab_ops.admin_forms import ReadOnlyAdmin, ReadOnlyInline, ServiceAddAdmin, service_action
from fablab_ops.booking import services
from fablab_ops.booking.models import (
    Certification,
    CertificationEvent,
    CheckInRecord,
    MachineDesiredState,
    MachineOverride,
    Reservation,
)
from fablab_ops.machines.models import Machine, MachineType, MaintenanceWindow


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ["machine", "user", "start", "end", "status", "maintenance_conflict"]
    list_filter = ["status", "machine__lab", "machine__machine_type", "maintenance_conflict"]
    search_fields = ["user__full_name", "user__email", "machine__name"]
    date_hierarchy = "start"
    list_select_related = ["machine__lab", "user"]


class CertificationEventInline(ReadOnlyInline):
    model = CertificationEvent
    readonly_fields = ["action", "at", "by", "reason"]


class GrantForm(forms.Form):
    user = forms.EmailField(label=_("Email người được cấp"))
    machine_type = forms.ModelChoiceField(label=_("Loại máy"), queryset=MachineType.objects.all())
    reason = forms.CharField(label=_("Lý do"), max_length=300)

    def clean_user(self):
        user = User.objects.filter(email__iexact=self.cleaned_data["user"]).first()
        if user is None:
            raise forms.ValidationError(_("Không có người dùng với email này."))
        return user


class RevokeForm(forms.Form):
    reason = forms.CharField(label=_("Lý do thu hồi"), max_length=300)


@admin.register(Certification)
class CertificationAdmin(ServiceAddAdmin):
    """Granted and revoked only through the booking services: with a reason, an event and a notification."""

    list_display = ["user", "machine_type", "method", "granted_at", "granted_by", "revoked_at"]
    list_filter = ["machine_type", "method", "revoked_at"]
    search_fields = ["user__full_name", "user__email"]
    inlines = [CertificationEventInline]
    add_form = GrantForm
    add_title = _("Cấp quyền sử dụng loại máy")
    actions = ["revoke_certifications"]

    def create(self, request, data):
        return services.grant_certification(user=data["user"], machine_type=data["machine_type"], by=request.user,
                                            reason=data["reason"])

    revoke_certifications = service_action(
        "revoke_certifications", form_class=RevokeForm, description=_("Thu hồi các chứng nhận đã chọn"),
        apply=lambda request, certification, data: services.revoke_certification(
            certification.pk, by=request.user, reason=data["reason"]),
        done_message=_("Đã thu hồi %(n)d chứng nhận."),
    )


@admin.register(CheckInRecord)
class CheckInRecordAdmin(ReadOnlyAdmin):
    """What happened at the door, refused scans included, for coordinators to review."""

    list_display = ["at", "lab", "outcome", "reason", "method", "by", "seat_booking", "reservation", "undone_at"]
    list_filter = ["outcome", "reason", "method", "lab"]
    search_fields = ["by__full_name", "seat_booking__learner__full_name", "reservation__user__full_name",
                     "token_fingerprint"]
    date_hierarchy = "at"
    list_select_related = ["lab", "by"]


@admin.register(MachineDesiredState)
class MachineDesiredStateAdmin(ReadOnlyAdmin):
    """The interlock decides (booking/interlock.py); technicians override from the lab's day page."""

    list_display = ["machine", "version", "holder_name", "valid_from", "until", "published_version", "published_at",
                    "last_error"]
    list_filter = ["machine__lab"]
    list_select_related = ["machine__lab"]


@admin.register(MachineOverride)
class MachineOverrideAdmin(ReadOnlyAdmin):
    list_display = ["machine", "kind", "by", "start", "end", "ended_at", "reason"]
    list_filter = ["kind", "machine__lab"]
    list_select_related = ["machine__lab", "by"]


# A machine's maintenance window is registered here: scheduling one flags the reservations it hits.
class MaintenanceForm(forms.Form):
    machine = forms.ModelChoiceField(label=_("Máy"), queryset=Machine.objects.select_related("lab"))
    start = forms.SplitDateTimeField(label=_("Bắt đầu"), widget=widgets.AdminSplitDateTime)
    end = forms.SplitDateTimeField(label=_("Kết thúc"), widget=widgets.AdminSplitDateTime)
    reason = forms.CharField(label=_("Lý do"), max_length=300)


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(ServiceAddAdmin):
    """Scheduled through services.schedule_maintenance: the reservations it hits are flagged and their
    holders told. Read-only once scheduled."""

    list_display = ["machine", "start", "end", "reason", "created_by"]
    list_filter = ["machine__lab"]
    search_fields = ["machine__name", "reason"]
    date_hierarchy = "start"
    add_form = MaintenanceForm
    add_title = _("Lên lịch bảo trì")

    def create(self, request, data):
        return services.schedule_maintenance(data["machine"], data["start"], data["end"], reason=data["reason"],
                                            by=request.user)
