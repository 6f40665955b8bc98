from django.contrib import admin

from fablab_ops.reports.models import GeneratedReport, YearTarget


@admin.register(YearTarget)
class YearTargetAdmin(admin.ModelAdmin):
    list_display = ["year", "lab", "classes", "participant_turns", "machine_hours"]
    list_filter = ["year", "lab"]


@admin.register(GeneratedReport)
class GeneratedReportAdmin(admin.ModelAdmin):
    list_display = ["month", "generated_at", "sent_to"]
    readonly_fields = ["month", "generated_at", "sent_to"]

    def has_add_permission(self, request):
        return False
