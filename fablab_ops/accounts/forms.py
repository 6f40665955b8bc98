import re

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.password_validation import validate_password
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from fablab_ops.accounts import hooks
from fablab_ops.accounts.models import User

PHONE = re.compile(r"^\+?[0-9]{8,15}$")


def clean_phone(value: str) -> str:
    """Spaces, dots, dashes and brackets dropped: '0912 345 678' → '0912345678'."""
    phone = re.sub(r"[\s.\-()]", "", value or "")
    if phone and not PHONE.match(phone):
        raise forms.ValidationError(_("Số điện thoại không hợp lệ."), code="invalid_phone")
    return phone


class SignupForm(forms.Form):
    full_name = forms.CharField(label=_("Họ và tên"), max_length=150)
    email = forms.EmailField(label=_("Email"))
    phone = forms.CharField(label=_("Số điện thoại (không bắt buộc)"), max_length=20, required=False)
    password = forms.CharField(label=_("Mật khẩu"), widget=forms.PasswordInput, strip=False)
    date_of_birth = forms.DateField(label=_("Ngày sinh"), widget=forms.DateInput(attrs={"type": "date"}),
                                    help_text=_("Dưới 16 tuổi, cha mẹ hoặc người giám hộ cần xác nhận qua email."))
    guardian_name = forms.CharField(label=_("Họ tên cha mẹ hoặc người giám hộ (dưới 16 tuổi)"), max_length=150,
                                    required=False)
    guardian_email = forms.EmailField(label=_("Email cha mẹ hoặc người giám hộ (dưới 16 tuổi)"), required=False)
    guardian_relation = forms.CharField(label=_("Quan hệ với em (ví dụ: mẹ, bố, ông, bà)"), max_length=40,
                                        required=False)
    child_agrees = forms.BooleanField(
        label=_("Em đã đọc thông báo về dữ liệu cá nhân và đồng ý (từ 7 tuổi trở lên)."), required=False)
    consent_bookings = forms.BooleanField(
        label=_("Tôi đồng ý để Fablab xử lý họ tên, email, số điện thoại, ngày sinh và lịch sử học của tôi để "
                "đăng ký lớp, đặt máy, check-in và cấp chứng nhận sử dụng máy (bắt buộc)."),
        error_messages={"required": _("Không có sự đồng ý này chúng tôi không thể phục vụ bạn.")})
    consent_reminders = forms.BooleanField(
        label=_("Tôi muốn nhận email nhắc lịch học và nhắc chứng nhận sắp hết hạn (không bắt buộc)."),
        required=False)

    def clean_phone(self):
        return clean_phone(self.cleaned_data["phone"])

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("Email này đã được đăng ký."))
        return email

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password"):
            candidate = User(email=cleaned.get("email", ""), full_name=cleaned.get("full_name", ""))
            try:
                validate_password(cleaned["password"], candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        if "date_of_birth" not in self.errors:
            for errors in hooks.call("signup_errors", cleaned):
                for field, message in errors:
                    if field not in self.errors:
                        self.add_error(field, message)
        return cleaned


class ProfileForm(forms.Form):
    full_name = forms.CharField(label=_("Họ và tên"), max_length=150)
    phone = forms.CharField(label=_("Số điện thoại (không bắt buộc)"), max_length=20, required=False,
                            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}))
    organisation = forms.CharField(label=_("Trường hoặc tổ chức (không bắt buộc)"), max_length=200, required=False)
    language = forms.ChoiceField(label=_("Ngôn ngữ"), choices=User._meta.get_field("language").choices,
                                 help_text=_("Ngôn ngữ của trang web và của email gửi cho bạn."))

    def clean_phone(self):
        return clean_phone(self.cleaned_data["phone"])


class EmailChangeForm(forms.Form):
    new_email = forms.EmailField(label=_("Email mới"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password = forms.CharField(label=_("Mật khẩu hiện tại"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self):
        password = self.cleaned_data["password"]
        # Through authentication, so wrong guesses count in the login throttle like any other.
        if authenticate(self.request, username=self.request.user.email, password=password) is None:
            if getattr(self.request, "login_throttled", False):
                raise forms.ValidationError(
                    _("Bạn đã thử đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút."), code="throttled")
            raise forms.ValidationError(_("Mật khẩu không đúng."), code="wrong_password")
        return password


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Tên khóa"), max_length=100,
                           help_text=_("Để nhớ khóa này dùng ở đâu, ví dụ “Home Assistant” hay “Máy tính ở trường”."))


class ThrottleAwareAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin's login form, saying so when the throttle (accounts/throttle.py) refused the attempt."""

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if getattr(self.request, "login_throttled", False):
                raise forms.ValidationError(
                    _("Bạn đã thử đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút."), code="throttled"
                ) from None
            raise


class LocalisedPasswordResetForm(PasswordResetForm):
    """Django's reset form; the e-mail is written in the language the person chose, not the page's."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email,
                  html_email_template_name=None):
        with translation.override(getattr(context.get("user"), "language", None) or "vi"):
            super().send_mail(subject_template_name, email_template_name, context, from_email, to_email,
                              html_email_template_name)
