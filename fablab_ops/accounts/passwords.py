"""Password rules that know Vietnamese: common Vietnamese passwords, and passwords made of the person's name.

Django's own validators compare against an English list and against attributes as
typed; "matkhau123" or "PhamThiHong2026" for Phạm Thị Hồng pass both. Here a
password is folded (diacritics removed, đ → d, case and punctuation dropped, a
trailing run of digits ignored) before it is compared.
"""

import re
import unicodedata
from functools import cache
from pathlib import Path

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

COMMON_LIST = Path(__file__).with_name("common_passwords_vi.txt")
MIN_PART = 4


def fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: 'Phạm Thị Hồng' → 'phamthihong'."""
    text = unicodedata.normalize("NFKD", (text or "").replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", text.casefold())


def _stem(folded: str) -> str:
    """Without a trailing year or counter: 'matkhau123' → 'matkhau'."""
    return re.sub(r"\d+$", "", folded) or folded


@cache
def _common() -> frozenset[str]:
    words = (line.strip() for line in COMMON_LIST.read_text(encoding="utf-8").splitlines())
    return frozenset(fold(word) for word in words if word and not word.startswith("#"))


class VietnameseCommonPasswordValidator:
    def validate(self, password, user=None):
        folded = fold(password)
        if folded in _common() or _stem(folded) in _common():
            raise ValidationError(_("Mật khẩu này quá phổ biến, rất dễ bị đoán."), code="password_too_common")

    def get_help_text(self):
        return _("Mật khẩu không được là một mật khẩu phổ biến (như “matkhau123”).")


class PersonalPasswordValidator:
    """Refuses a password that is, or is built around, the person's name, e-mail or phone number."""

    def validate(self, password, user=None):
        if user is None:
            return
        folded = fold(password)
        stem = _stem(folded)
        email = getattr(user, "email", "") or ""
        parts = {fold(getattr(user, "full_name", "")), fold(email), fold(email.partition("@")[0]),
                 fold(getattr(user, "phone", ""))}
        parts |= {fold(word) for word in re.split(r"\s+", getattr(user, "full_name", "") or "")}
        for part in parts:
            if len(part) < MIN_PART:
                continue
            if part in folded and len(part) * 2 >= len(stem):
                raise ValidationError(_("Mật khẩu không được dựa trên tên, email hay số điện thoại của bạn."),
                                      code="password_too_personal")
            if stem and len(stem) >= MIN_PART and stem in part:
                raise ValidationError(_("Mật khẩu không được dựa trên tên, email hay số điện thoại của bạn."),
                                      code="password_too_personal")

    def get_help_text(self):
        return _("Mật khẩu không được dựa trên tên, email hay số điện thoại của bạn.")


class MinimumLengthValidator(password_validation.MinimumLengthValidator):
    """Django's length rule, said in Vietnamese first (Django's own Vietnamese catalogue lacks this sentence)."""

    def get_error_message(self):
        return _("Mật khẩu quá ngắn: cần ít nhất %(min_length)d ký tự.") % {"min_length": self.min_length}

    def get_help_text(self):
        return _("Mật khẩu cần ít nhất %(min_length)d ký tự.") % {"min_length": self.min_length}
