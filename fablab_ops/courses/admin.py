from django.contrib import admin

from fablab_ops.courses.models import Course, SeatBooking, Session


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title_vi", "kind", "lab", "default_capacity", "min_capacity", "max_capacity", "is_published"]
    list_filter = ["kind", "lab", "is_published"]
    search_fields = ["slug", "title_vi", "title_en"]
    prepopulated_fields = {"slug": ["title_vi"]}
    readonly_fields = ["created_at", "updated_at"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ["course", "start", "end", "lab", "capacity", "status"]
    list_filter = ["status", "lab", "course__kind"]
    search_fields = ["course__title_vi", "place"]
    date_hierarchy = "start"
    list_select_related = ["course", "lab"]
    readonly_fields = ["created_at", "updated_at"]


@admin.register(SeatBooking)
class SeatBookingAdmin(admin.ModelAdmin):
    list_display = ["learner", "session", "status", "waitlist_position", "created_at", "checked_in_at"]
    list_filter = ["status", "session__lab", "session__course__kind"]
    search_fields = ["learner__full_name", "learner__email", "learner__phone", "session__course__title_vi"]
    list_select_related = ["learner", "session__course"]
    raw_id_fields = ["session", "learner"]
    readonly_fields = [
        "created_at", "updated_at", "confirmed_at", "cancelled_at", "checked_in_at", "checked_in_by",
    ]
