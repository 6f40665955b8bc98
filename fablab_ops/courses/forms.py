from datetime import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fablab_ops.courses.models import Course, CourseKind, Session
from fablab_ops.machines.models import Lab
from fablab_ops.validation import PlanDateField, PlanDateTimeField, in_calendar

RULE_HELP = _("Quy tắc lặp RFC 5545. Ví dụ: thứ Bảy tuần 2 và 4 mỗi tháng, 12 buổi: "
              "FREQ=MONTHLY;BYDAY=SA;BYSETPOS=2,4;COUNT=12")


class DateListField(forms.CharField):
    """Dates written dd/mm/yyyy, separated by commas or new lines."""

    def to_python(self, value):
        text = super().to_python(value)
        dates = []
        for part in text.replace("\n", ",").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                day = datetime.strptime(part, "%d/%m/%Y").date()
            except ValueError as error:
                raise forms.ValidationError(_("Ngày không hợp lệ: %(value)s (dd/mm/yyyy)"),
                                            params={"value": part}) from error
            if not in_calendar(day):
                raise forms.ValidationError(_("Ngày không hợp lệ: %(value)s (dd/mm/yyyy)"), params={"value": part})
            dates.append(day)
        return dates


class SessionFilterForm(forms.Form):
    """The filters of the classes page; each one that does not parse is ignored with a message."""

    IGNORED = {
        "lab": _("Phòng lab không hợp lệ: đã bỏ qua bộ lọc phòng lab."),
        "kind": _("Loại khóa học không hợp lệ: đã bỏ qua bộ lọc loại khóa học."),
        "date": _("Ngày không hợp lệ: đã bỏ qua bộ lọc ngày."),
    }

    lab = forms.SlugField(required=False, max_length=40)
    kind = forms.ChoiceField(required=False, choices=[("", "")] + list(CourseKind.choices))
    date = PlanDateField(required=False, input_formats=["%Y-%m-%d"])


class SeriesForm(forms.Form):
    course = forms.ModelChoiceField(label=_("Khóa học"), queryset=Course.objects.all())
    rule = forms.CharField(label=_("Quy tắc lặp"), help_text=RULE_HELP,
                           initial="FREQ=MONTHLY;BYDAY=SA;BYSETPOS=2,4;COUNT=12")
    first_date = PlanDateField(label=_("Từ ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label=_("Giờ bắt đầu"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=_("Giờ kết thúc"), widget=forms.TimeInput(attrs={"type": "time"}))
    capacity = forms.IntegerField(label=_("Số chỗ"), min_value=1, max_value=10_000)
    lab = forms.ModelChoiceField(label=_("Phòng lab"), queryset=Lab.objects.filter(is_active=True), required=False,
                                 empty_label=_("Trực tuyến"))
    place = forms.CharField(label=_("Địa điểm / đường dẫn"), required=False)
    exception_dates = DateListField(label=_("Ngày nghỉ (dd/mm/yyyy, cách nhau bởi dấu phẩy)"), required=False,
                                    widget=forms.Textarea(attrs={"rows": 2}))


class SessionForm(forms.Form):
    SCOPES = [("this", _("Chỉ buổi này")), ("rest", _("Buổi này và các buổi sau trong chuỗi"))]

    start = PlanDateTimeField(label=_("Bắt đầu"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = PlanDateTimeField(label=_("Kết thúc"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    capacity = forms.IntegerField(label=_("Số chỗ"), min_value=1, max_value=10_000)
    place = forms.CharField(label=_("Địa điểm / đường dẫn"), required=False)
    scope = forms.ChoiceField(label=_("Áp dụng cho"), choices=SCOPES, initial="this")

    def __init__(self, *args, session: Session, **kwargs):
        local = timezone.localtime
        kwargs.setdefault("initial", {
            "start": local(session.start).strftime("%Y-%m-%dT%H:%M"),
            "end": local(session.end).strftime("%Y-%m-%dT%H:%M"),
            "capacity": session.capacity, "place": session.place,
        })
        super().__init__(*args, **kwargs)
        if not session.series_id:
            self.fields["scope"].choices = self.SCOPES[:1]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start"):
            cleaned["start_time"] = timezone.localtime(cleaned["start"]).time()
        if cleaned.get("end"):
            cleaned["end_time"] = timezone.localtime(cleaned["end"]).time()
        return cleaned


class CourseForm(forms.ModelForm):
    """A course as coordinators write it; the rules (capacities in order, only inductions certify) are the
    service's."""

    class Meta:
        model = Course
        fields = ["kind", "title_vi", "title_en", "slug", "description", "description_en", "prerequisites",
                  "prerequisites_en", "what_to_bring", "what_to_bring_en", "instructor", "lab", "certifies",
                  "default_capacity", "min_capacity", "max_capacity", "min_learners", "decision_hours_before",
                  "is_published"]
        widgets = {name: forms.Textarea(attrs={"rows": 3}) for name in (
            "description", "description_en", "prerequisites", "prerequisites_en", "what_to_bring",
            "what_to_bring_en")}
        help_texts = {"slug": _("Để trống để tạo từ tên tiếng Việt."),
                      "lab": _("Để trống nếu học trực tuyến."),
                      "certifies": _("Chỉ với khóa hướng dẫn sử dụng thiết bị: đạt buổi hướng dẫn thì được "
                                     "cấp quyền dùng loại máy này.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["lab"].empty_label = _("Trực tuyến")
        self.fields["lab"].label_from_instance = lambda lab: f"{lab.short_name} — {lab.name}"

    def validate_unique(self):
        """The service answers a taken address; the database constraints are the service's too."""

    def _post_clean(self):
        # Keep the values in cleaned_data only: the service sets them on the course and checks the rules.
        pass


class CancelSessionForm(forms.Form):
    reason = forms.CharField(label=_("Lý do hủy (gửi tới học viên)"), max_length=300,
                             widget=forms.Textarea(attrs={"rows": 3}),
                             error_messages={"required": _("Cần ghi lý do hủy.")})


class MessageForm(forms.Form):
    key = forms.UUIDField(widget=forms.HiddenInput)
    subject = forms.CharField(label=_("Tiêu đề"), max_length=150)
    body = forms.CharField(label=_("Nội dung"), max_length=5000, widget=forms.Textarea(attrs={"rows": 6}))
    include_waitlist = forms.BooleanField(label=_("Gửi cả người trong danh sách chờ"), required=False)


class ScheduleOneForm(forms.Form):
    """A single session of a course: a series of one, with the course's default capacity unless changed."""

    course = forms.ModelChoiceField(label=_("Khóa học"), queryset=Course.objects.all())
    day = PlanDateField(label=_("Ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label=_("Giờ bắt đầu"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=_("Giờ kết thúc"), widget=forms.TimeInput(attrs={"type": "time"}))
    capacity = forms.IntegerField(label=_("Số chỗ"), min_value=1, max_value=10_000, required=False,
                                  help_text=_("Để trống để dùng số chỗ mặc định của khóa học."))
    lab = forms.ModelChoiceField(label=_("Phòng lab"), queryset=Lab.objects.filter(is_active=True), required=False,
                                 empty_label=_("Như khóa học"))
    place = forms.CharField(label=_("Địa điểm / đường dẫn"), required=False)
