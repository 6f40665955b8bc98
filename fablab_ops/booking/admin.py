from django.contrib import admin

from fablab_ops.booking.models import (
    Certification,
    CertificationEvent,
    CheckInRecord,
    MachineDesiredState,
    MachineOverride,
    Reservation,
)


@admin.register(Reservation)
class ReservationAdmin(admin.ModelAdmin):
    list_display = ["machine", "user", "start", "end", "status", "maintenance_conflict"]
    list_filter = ["status", "machine__lab", "machine__machine_type", "maintenance_conflict"]
    search_fields = ["user__full_name", "user__email", "machine__name"]
    date_hierarchy = "start"
    list_select_related = ["machine__lab", "user"]
    raw_id_fields = ["user", "machine"]
    readonly_fields = ["created_at", "updated_at", "cancelled_at", "checked_in_at", "checked_in_by"]


class CertificationEventInline(admin.TabularInline):
    model = CertificationEvent
    extra = 0
    readonly_fields = ["action", "at", "by", "reason"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Certification)
class CertificationAdmin(admin.ModelAdmin):
    list_display = ["user", "machine_type", "method", "granted_at", "granted_by", "revoked_at"]
    list_filter = ["machine_type", "method", "revoked_at"]
    search_fields = ["user__full_name", "user__email"]
    raw_id_fields = ["user", "seat_booking"]
    readonly_fields = ["granted_by", "revoked_by"]
    inlines = [CertificationEventInline]


@admin.register(CheckInRecord)
class CheckInRecordAdmin(admin.ModelAdmin):
    """What happened at the door, refused scans included, for coordinators to review."""

    list_display = ["at", "lab", "outcome", "reason", "method", "by", "seat_booking", "reservation", "undone_at"]
    list_filter = ["outcome", "reason", "method", "lab"]
    search_fields = ["by__full_name", "seat_booking__learner__full_name", "reservation__user__full_name",
                     "token_fingerprint"]
    date_hierarchy = "at"
    list_select_related = ["lab", "by"]
    readonly_fields = [f.name for f in CheckInRecord._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(MachineDesiredState)
class MachineDesiredStateAdmin(admin.ModelAdmin):
    """Read-only: the interlock decides, the technicians' pages override."""

    list_display = ["machine", "version", "holder_name", "valid_from", "until", "published_version", "published_at",
                    "last_error"]
    list_filter = ["machine__lab"]
    list_select_related = ["machine__lab"]
    readonly_fields = [f.name for f in MachineDesiredState._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MachineOverride)
class MachineOverrideAdmin(admin.ModelAdmin):
    list_display = ["machine", "kind", "by", "start", "end", "ended_at", "reason"]
    list_filter = ["kind", "machine__lab"]
    list_select_related = ["machine__lab", "by"]
    readonly_fields = [f.name for f in MachineOverride._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
