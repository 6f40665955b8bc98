from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from fablab_ops.admin_forms import ReadOnlyAdmin, service_action
from fablab_ops.courses import services
from fablab_ops.courses.models import Course, SeatBooking, Session, SessionMessage


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title_vi", "kind", "lab", "default_capacity", "min_capacity", "max_capacity", "is_published"]
    list_filter = ["kind", "lab", "is_published"]
    search_fields = ["slug", "title_vi", "title_en"]
    prepopulated_fields = {"slug": ["title_vi"]}
    readonly_fields = ["created_at", "updated_at"]


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Lý do hủy"), max_length=300)


class CapacityForm(forms.Form):
    capacity = forms.IntegerField(label=_("Số chỗ"), min_value=1)


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    """Sessions are scheduled on the coordinators' pages; here they are read, cancelled or resized through
    the same services (learners are told, the capacity rule holds)."""

    list_display = ["course", "start", "end", "lab", "capacity", "status"]
    list_filter = ["status", "lab", "course__kind"]
    search_fields = ["course__title_vi", "place"]
    date_hierarchy = "start"
    list_select_related = ["course", "lab"]
    actions = ["cancel_sessions", "change_capacity"]

    cancel_sessions = service_action(
        "cancel_sessions", form_class=CancelForm, description=_("Hủy các buổi học đã chọn (báo cho học viên)"),
        apply=lambda request, session, data: services.cancel_session(session.pk, by=request.user,
                                                                     reason=data["reason"]),
        done_message=_("Đã hủy %(n)d buổi học và báo cho học viên."),
    )
    change_capacity = service_action(
        "change_capacity", form_class=CapacityForm, description=_("Đổi số chỗ của các buổi học đã chọn"),
        apply=lambda request, session, data: services.update_session(session.pk, by=request.user,
                                                                     capacity=data["capacity"]),
        done_message=_("Đã đổi số chỗ của %(n)d buổi học."),
    )


@admin.register(SeatBooking)
class SeatBookingAdmin(ReadOnlyAdmin):
    list_display = ["learner", "session", "status", "waitlist_position", "created_at", "checked_in_at"]
    list_filter = ["status", "session__lab", "session__course__kind"]
    search_fields = ["learner__full_name", "learner__email", "learner__phone", "session__course__title_vi"]
    list_select_related = ["learner", "session__course"]


@admin.register(SessionMessage)
class SessionMessageAdmin(ReadOnlyAdmin):
    """Messages coordinators sent from a session's roster (each learner got it once, through the outbox)."""

    list_display = ["session", "subject", "recipients", "sent_by", "sent_at"]
    search_fields = ["subject", "session__course__title_vi"]
    list_select_related = ["session__course", "sent_by"]
