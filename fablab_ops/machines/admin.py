from django.contrib import admin

from fablab_ops.admin_forms import ReadOnlyAdmin, ReadOnlyInline
from fablab_ops.machines.models import (
    IngestHealth,
    Lab,
    Machine,
    MachineAlert,
    MachineCommand,
    MachineCredential,
    MachineLiveStatus,
    MachineType,
    MachineUsageDay,
    MaintenanceLog,
    MaintenanceWindow,
    OpeningHours,
    QuarantinedMessage,
    TelemetryMessage,
    UsageCounter,
    UsageSession,
)


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = ["short_name", "name_vi", "host", "field", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["slug", "name_vi", "name_en", "short_name", "host"]
    prepopulated_fields = {"slug": ["short_name"]}
    filter_horizontal = ["technicians"]
    inlines = [OpeningHoursInline]


@admin.register(MachineType)
class MachineTypeAdmin(admin.ModelAdmin):
    list_display = ["name_vi", "slug", "requires_induction", "max_reservation_minutes", "weekly_hours_limit"]
    list_filter = ["requires_induction"]
    search_fields = ["slug", "name_vi", "name_en"]


class MaintenanceWindowInline(ReadOnlyInline):
    """Windows are scheduled through their own add page, which flags and tells the reservations they hit."""

    model = MaintenanceWindow
    fields = ["start", "end", "reason", "created_by", "created_at"]
    readonly_fields = fields


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "lab", "machine_type", "status", "has_interlock"]
    list_filter = ["lab", "machine_type", "status", "has_interlock"]
    search_fields = ["slug", "name", "model_name"]
    list_select_related = ["lab", "machine_type"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MaintenanceWindowInline]


@admin.register(UsageSession)
class UsageSessionAdmin(ReadOnlyAdmin):
    list_display = ["machine", "start", "end", "user", "reservation", "energy_wh"]
    list_filter = ["machine__lab", "machine__machine_type"]
    search_fields = ["machine__name", "user__full_name", "job"]
    date_hierarchy = "start"
    list_select_related = ["machine__lab", "user"]


@admin.register(MachineCommand)
class MachineCommandAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "machine", "action", "user_display", "until", "published_at", "acked_at", "ack_ok",
                    "error"]
    list_filter = ["action", "machine__lab", "ack_ok"]
    search_fields = ["command_id", "machine__name", "user_display"]
    readonly_fields = [f.name for f in MachineCommand._meta.fields]


@admin.register(QuarantinedMessage)
class QuarantinedMessageAdmin(ReadOnlyAdmin):
    """Messages the ingest refused, by reason, for a technician to see what a device sends."""

    list_display = ["received_at", "reason", "topic", "payload_size", "detail"]
    list_filter = ["reason"]
    search_fields = ["topic", "detail", "payload"]
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in QuarantinedMessage._meta.fields]


@admin.register(MachineLiveStatus)
class MachineLiveStatusAdmin(ReadOnlyAdmin):
    list_display = ["machine", "online", "state", "power_w", "last_seen_at", "messages", "lost_messages", "clock_skews",
                    "restarts", "maintenance_due"]
    list_filter = ["online", "state", "maintenance_due", "machine__lab"]
    search_fields = ["machine__name", "machine__slug"]
    readonly_fields = [f.name for f in MachineLiveStatus._meta.fields]


@admin.register(MachineAlert)
class MachineAlertAdmin(ReadOnlyAdmin):
    list_display = ["raised_at", "machine", "kind", "detail", "acknowledged_at", "acknowledged_by", "resolved_at",
                    "resolved_by"]
    list_filter = ["kind", "machine__lab", "resolved_at"]
    search_fields = ["machine__name", "detail"]
    readonly_fields = ["machine", "kind", "raised_at", "detail"]


@admin.register(MaintenanceLog)
class MaintenanceLogAdmin(ReadOnlyAdmin):
    list_display = ["done_at", "machine", "by", "note", "running_hours"]
    list_filter = ["machine__lab"]
    search_fields = ["machine__name", "note"]
    readonly_fields = ["running_hours", "by"]


@admin.register(MachineCredential)
class MachineCredentialAdmin(admin.ModelAdmin):
    list_display = ["username", "machine", "rotated_at"]
    search_fields = ["username"]
    readonly_fields = ["username", "password_hash", "rotated_at", "machine"]

    def has_add_permission(self, request):
        return False


@admin.register(TelemetryMessage)
class TelemetryMessageAdmin(ReadOnlyAdmin):
    list_display = ["at", "machine", "boot", "seq", "state", "power_w", "clock_skewed"]
    list_filter = ["state", "clock_skewed", "machine__lab"]
    search_fields = ["machine__slug", "boot"]
    list_select_related = ["machine__lab"]
    show_full_result_count = False
    readonly_fields = [f.name for f in TelemetryMessage._meta.fields]


@admin.register(MachineUsageDay)
class MachineUsageDayAdmin(ReadOnlyAdmin):
    list_display = ["day", "machine", "running_seconds", "energy_wh"]
    list_filter = ["machine__lab"]
    date_hierarchy = "day"
    readonly_fields = ["machine", "day", "running_seconds", "energy_wh"]


@admin.register(UsageCounter)
class UsageCounterAdmin(admin.ModelAdmin):
    list_display = ["machine", "boot", "seq", "at", "run_s", "energy_wh"]
    list_filter = ["machine__lab"]
    search_fields = ["machine__slug", "boot"]
    list_select_related = ["machine__lab"]
    readonly_fields = [f.name for f in UsageCounter._meta.fields]


@admin.register(IngestHealth)
class IngestHealthAdmin(admin.ModelAdmin):
    """Each ingest replica's figures (also: `manage.py ingest_health`)."""

    list_display = ["client_id", "stored", "duplicates", "quarantined", "last_commit_at", "newest_received_at",
                    "alive_at", "queued"]
    readonly_fields = [f.name for f in IngestHealth._meta.fields]

    def has_add_permission(self, request):
        return False
