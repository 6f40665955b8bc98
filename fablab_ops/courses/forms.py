from datetime import datetime

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fablab_ops.courses import services
from fablab_ops.courses.models import Course, CourseKind, Session
from fablab_ops.errors import DomainError
from fablab_ops.machines.models import Lab, Weekday
from fablab_ops.validation import PlanDateField, PlanDateTimeField, in_calendar

RULE_HELP = _("Quy tắc lặp RFC 5545, thay cho các lựa chọn ở trên. Ví dụ: thứ Bảy tuần 2 và 4 mỗi tháng, 12 buổi: "
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
    """A series of sittings: the weekdays, how often and until when (the picker), or a raw RFC 5545 rule for
    those who want one. The picker's choices become the rule in courses.services.weekly_rule."""

    ENDS = [("count", _("Sau một số buổi")), ("until", _("Đến một ngày"))]
    # Which field a refusal of the picker belongs to.
    FIELD_OF = {"no_weekday": "weekdays", "invalid_interval": "interval", "until_before_start": "until",
                "invalid_count": "count", "no_end": "ends", "invalid_rule": "rule"}

    course = forms.ModelChoiceField(label=_("Khóa học"), queryset=Course.objects.all())
    first_date = PlanDateField(label=_("Từ ngày"), widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(label=_("Giờ bắt đầu"), widget=forms.TimeInput(attrs={"type": "time"}))
    end_time = forms.TimeField(label=_("Giờ kết thúc"), widget=forms.TimeInput(attrs={"type": "time"}))
    weekdays = forms.TypedMultipleChoiceField(label=_("Học vào các ngày"), choices=Weekday.choices, coerce=int,
                                              required=False, initial=[Weekday.SATURDAY],
                                              widget=forms.CheckboxSelectMultiple)
    interval = forms.IntegerField(label=_("Lặp lại mỗi (tuần)"), min_value=1, max_value=52, initial=1,
                                  required=False, help_text=_("1: mỗi tuần; 2: cách một tuần học một lần."))
    ends = forms.ChoiceField(label=_("Kết thúc"), choices=ENDS, initial="count", widget=forms.RadioSelect,
                             required=False)
    count = forms.IntegerField(label=_("Số buổi"), min_value=1, max_value=200, initial=12, required=False,
                               help_text=_("Không tính các ngày nghỉ bên dưới."))
    until = PlanDateField(label=_("Đến ngày"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    exception_dates = DateListField(label=_("Ngày nghỉ (dd/mm/yyyy, cách nhau bởi dấu phẩy)"), required=False,
                                    widget=forms.Textarea(attrs={"rows": 2}))
    rule = forms.CharField(label=_("Quy tắc lặp (RRULE)"), help_text=RULE_HELP, required=False, max_length=300)
    capacity = forms.IntegerField(label=_("Số chỗ"), min_value=1, max_value=10_000)
    lab = forms.ModelChoiceField(label=_("Phòng lab"), queryset=Lab.objects.filter(is_active=True), required=False,
                                 empty_label=_("Trực tuyến"))
    place = forms.CharField(label=_("Địa điểm / đường dẫn"), required=False)

    PICKER = ("weekdays", "interval", "ends", "count", "until")
    WHEN = ("course", "first_date", "start_time", "end_time")
    WHERE = ("capacity", "lab", "place")

    def _fields(self, names):
        return [self[name] for name in names]

    def when_fields(self):
        return self._fields(self.WHEN)

    def picker_fields(self):
        return self._fields(self.PICKER)

    def where_fields(self):
        return self._fields(self.WHERE)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("rule"):  # the coordinator wrote the rule: the picker is not used
            return cleaned
        if not self.is_valid_so_far("first_date", "weekdays", "interval", "ends", "count", "until",
                                    "exception_dates"):
            return cleaned
        ends = cleaned.get("ends") or "count"
        if ends == "count" and cleaned.get("count") is None:
            self.add_error("count", _("Nhập số buổi."))
            return cleaned
        if ends == "until" and cleaned.get("until") is None:
            self.add_error("until", _("Chọn ngày kết thúc."))
            return cleaned
        try:
            cleaned["rule"] = services.weekly_rule(
                weekdays=cleaned.get("weekdays") or [], first_date=cleaned["first_date"],
                interval=cleaned.get("interval") or 1, until=cleaned.get("until") if ends == "until" else None,
                count=cleaned.get("count") if ends == "count" else None,
                exception_dates=cleaned.get("exception_dates"))
        except DomainError as error:
            self.add_error(self.FIELD_OF.get(error.code), error.message)
        return cleaned

    def is_valid_so_far(self, *names) -> bool:
        return not any(name in self.errors for name in names) and "first_date" in self.cleaned_data


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
