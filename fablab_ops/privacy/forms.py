from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from fablab_ops.privacy.models import Purpose

# What the school-class page lets a coordinator choose from: sessions still to come, for half a year.
SCHOOL_SESSIONS_AHEAD = timedelta(days=183)


class SessionChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, session):
        start = timezone.localtime(session.start)
        lab = f" · {session.lab.short_name}" if session.lab_id else ""
        return f"{start:%d/%m/%Y %H:%M} · {session.course}{lab}"


def upcoming_sessions():
    from fablab_ops.courses.models import Session, SessionStatus

    now = timezone.now()
    return (Session.objects.filter(start__gt=now, start__lt=now + SCHOOL_SESSIONS_AHEAD,
                                   status=SessionStatus.SCHEDULED, course__is_published=True)
            .select_related("course", "lab").order_by("start"))


class SchoolClassForm(forms.Form):
    school = forms.CharField(label=_("Trường"), max_length=200)
    reference = forms.CharField(label=_("Số văn bản đồng ý của trường"), max_length=100)
    document_date = forms.DateField(label=_("Ngày văn bản"), widget=forms.DateInput(attrs={"type": "date"}))
    signatory = forms.CharField(label=_("Người ký (họ tên, chức vụ)"), max_length=150)
    purposes = forms.MultipleChoiceField(
        label=_("Mục đích trường đồng ý"), choices=Purpose.choices, widget=forms.CheckboxSelectMultiple,
        initial=[Purpose.BOOKINGS],
        help_text=_("Đăng ký lớp và check-in là bắt buộc; học sinh không có email riêng nên không nhận email nhắc."))
    sessions = SessionChoices(label=_("Buổi học"), queryset=None, widget=forms.CheckboxSelectMultiple)
    pupils = forms.CharField(
        label=_("Danh sách học sinh"), required=False, widget=forms.Textarea(attrs={"rows": 10}),
        help_text=_("Mỗi dòng một học sinh: họ tên; ngày sinh (dd/mm/yyyy); lớp. Có thể dán từ bảng tính."))
    pupils_file = forms.FileField(label=_("Hoặc tải lên tệp CSV (UTF-8)"), required=False)
    scan = forms.FileField(label=_("Bản scan văn bản (PDF, JPG, PNG; không bắt buộc)"), required=False,
                           widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}))
    children_agreed = forms.BooleanField(
        label=_("Các em từ 7 tuổi đã được hỏi và tự đồng ý (theo văn bản của trường)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sessions"].queryset = upcoming_sessions()

    def clean_scan(self):
        scan = self.cleaned_data.get("scan")
        if scan and scan.size > 10 * 1024 * 1024:
            raise forms.ValidationError(_("Tệp quá lớn (tối đa 10 MB)."))
        if scan and not scan.name.lower().endswith((".pdf", ".jpg", ".jpeg", ".png")):
            raise forms.ValidationError(_("Chỉ nhận tệp PDF, JPG hoặc PNG."))
        return scan


class LegacyConsentForm(forms.Form):
    """An account older than the consent question answers it, as sign-up asks it."""

    date_of_birth = forms.DateField(label=_("Ngày sinh"), widget=forms.DateInput(attrs={"type": "date"}))
    guardian_name = forms.CharField(label=_("Họ tên cha mẹ hoặc người giám hộ (dưới 16 tuổi)"), max_length=150,
                                    required=False)
    guardian_email = forms.EmailField(label=_("Email cha mẹ hoặc người giám hộ (dưới 16 tuổi)"), required=False)
    guardian_relation = forms.CharField(label=_("Quan hệ với em (ví dụ: mẹ, bố, ông, bà)"), max_length=40,
                                        required=False)
    child_agrees = forms.BooleanField(label=_("Em đồng ý (từ 7 tuổi)"), required=False)
    consent_bookings = forms.BooleanField(
        label=_("Tôi đồng ý để Fablab xử lý dữ liệu của tôi để đăng ký lớp, đặt máy, check-in và cấp chứng nhận "
                "sử dụng máy (bắt buộc)"))
    consent_reminders = forms.BooleanField(label=_("Gửi cho tôi email nhắc lịch và nhắc chứng nhận sắp hết hạn"),
                                           required=False)
