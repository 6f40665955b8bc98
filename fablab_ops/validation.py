"""The one validation layer for everything a client sends: the API and the pages alike.

`fablab_ops.middleware.InputGuardMiddleware` applies the generic rules to every
request before anything reaches the database (path, query, form fields, cookies,
headers), the API's JSON parser applies them to every string of a JSON body, and
the typed fields below (ninja schema types and Django form fields) carry the
specific ranges: dates the Fablabs can plan for, ids the database can hold,
strings no longer than their column.
"""

import json
import re
import unicodedata
from datetime import date, datetime, time
from typing import Annotated, Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema

from fablab_ops.errors import DomainError

# Tab, line feed and carriage return are text; every other control character (C0, DEL, C1)
# and every lone UTF-16 surrogate is not, and PostgreSQL refuses NUL outright.
ALLOWED_CONTROLS = frozenset("\t\n\r")

# Dates a booking, a session or a report may fall on. Nothing before 1900 is ever accepted:
# before 1906 Asia/Ho_Chi_Minh had a local-mean-time offset (+07:06:30) that no client expects.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)

MAX_QUERY_VALUE_LENGTH = 1000
MAX_PATH_LENGTH = 2000
MAX_HEADER_LENGTH = 8000
DB_ID_MAX = 2**63 - 1  # BigAutoField
DB_INT_MAX = 2**31 - 1  # PositiveIntegerField


class InvalidInput(DomainError):
    status = 400
    code = "invalid_input"
    default_message = _("Dữ liệu gửi lên không hợp lệ.")


class InvalidCharacters(InvalidInput):
    code = "invalid_characters"
    default_message = _("Dữ liệu gửi lên chứa ký tự điều khiển không được phép.")


class TooLong(InvalidInput):
    code = "too_long"
    default_message = _("Dữ liệu gửi lên quá dài.")


class TooLarge(InvalidInput):
    status = 413
    code = "too_large"
    default_message = _("Nội dung gửi lên quá lớn.")


class MalformedJson(InvalidInput):
    code = "malformed_json"
    default_message = _("Nội dung gửi lên không phải JSON hợp lệ.")


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"
    default_message = _("Hãy gửi nội dung dạng JSON (Content-Type: application/json).")


def bad_character(text: str) -> str | None:
    """The first character of `text` no client may send, or None."""
    for char in text:
        if char in ALLOWED_CONTROLS:
            continue
        category = unicodedata.category(char)
        if category == "Cc" or category == "Cs":
            return char
    return None


def has_bad_character(text: str) -> bool:
    # Fast path: most text is printable ASCII or ordinary letters.
    if text.isprintable():
        return False
    return bad_character(text) is not None


def check_text(text: str, *, where: str = "") -> str:
    if has_bad_character(text):
        raise InvalidCharacters(where=where) if where else InvalidCharacters()
    return text


def check_json_strings(value: Any, where: str = "body") -> None:
    """Every key and string of a decoded JSON document, however deep."""
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            check_text(item, where=path)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(key, where=path)
                stack.append((child, f"{path}.{key}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{index}]") for index, child in enumerate(item))


def is_json_media_type(content_type: str) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def parse_json_body(request) -> Any:
    """The API's body parser: JSON only, UTF-8 only, no control characters in any string."""
    if not is_json_media_type(request.content_type or request.META.get("CONTENT_TYPE", "")):
        raise UnsupportedMediaType()
    try:
        text = request.body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedJson() from error
    check_json_strings(data)
    return data


# --- dates ---------------------------------------------------------------------------------------

def in_calendar(day: date) -> bool:
    return FIRST_DAY <= day <= LAST_DAY


def _check_day(day: date) -> date:
    if not in_calendar(day):
        raise ValueError(f"date must be between {FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}")
    return day


def _check_moment(moment: datetime) -> datetime:
    if timezone.is_naive(moment):
        # A time without an offset is a time in the labs' own zone.
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    _check_day(moment.date())
    return moment


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date and time within the planning calendar, aware (local time when no offset is given)."""
    return _check_moment(datetime.fromisoformat(text))


def parse_id(text: str | None) -> int | None:
    """A database id written in a form field, or None for anything else."""
    text = (text or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if 1 <= value <= DB_ID_MAX else None


def parse_day(text: str | None) -> date | None:
    """A YYYY-MM-DD date within the planning calendar, or None for anything else."""
    try:
        day = datetime.strptime((text or "").strip(), "%Y-%m-%d").date()
    except ValueError:
        return None
    return day if in_calendar(day) else None


# Types for ninja schemas and operation parameters. The bounds appear in the OpenAPI schema.
_DAY_RANGE = {"ge": FIRST_DAY, "le": LAST_DAY,
              "description": f"A date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"}
PlanDate = Annotated[date, Field(**_DAY_RANGE), AfterValidator(_check_day)]
PlanDateTime = Annotated[datetime, AfterValidator(_check_moment), Field(
    description=f"ISO 8601 with an offset, between {FIRST_DAY.year} and {LAST_DAY.year}; "
                "a time without an offset is read in Asia/Ho_Chi_Minh")]
WALL_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?")


def _wall_clock(value):
    if isinstance(value, str) and not WALL_CLOCK.fullmatch(value):
        raise ValueError("a time of day in local time, HH:MM or HH:MM:SS, without an offset")
    return value


# A time of day on the labs' wall clocks (opening hours, the start of a class): not an instant,
# so it carries no offset, and the schema says so instead of promising RFC 3339's `time`.
LocalTime = Annotated[
    time, BeforeValidator(_wall_clock),
    PlainSerializer(lambda value: value.strftime("%H:%M:%S"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
                    "description": "Time of day in Asia/Ho_Chi_Minh, HH:MM or HH:MM:SS, no offset",
                    "examples": ["08:00", "17:30:00"]}),
]
DbId = Annotated[int, Field(ge=1, le=DB_ID_MAX)]
Count = Annotated[int, Field(ge=0, le=DB_INT_MAX)]


def text(max_length: int, **field) -> Any:
    """A string type bounded like the column it ends up in."""
    return Annotated[str, Field(max_length=max_length, **field)]


Slug = text(80)


# --- form fields (pages) --------------------------------------------------------------------------

class PlanDateField(forms.DateField):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("min", FIRST_DAY.isoformat())
        self.widget.attrs.setdefault("max", LAST_DAY.isoformat())

    def validate(self, value):
        super().validate(value)
        if value and not in_calendar(value):
            raise forms.ValidationError(_("Ngày phải nằm trong khoảng %(first)s – %(last)s."),
                                        code="out_of_range",
                                        params={"first": FIRST_DAY.year, "last": LAST_DAY.year})


class PlanDateTimeField(forms.DateTimeField):
    def validate(self, value):
        super().validate(value)
        if value and not in_calendar(timezone.localtime(value).date() if timezone.is_aware(value) else value.date()):
            raise forms.ValidationError(_("Ngày phải nằm trong khoảng %(first)s – %(last)s."),
                                        code="out_of_range",
                                        params={"first": FIRST_DAY.year, "last": LAST_DAY.year})


def upload_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
