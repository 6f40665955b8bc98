"""A school registers a class of its pupils, on its written consent (many summer-programme pupils come so).

A coordinator names the school, the consent document (number, date, signatory, optionally a scan kept in
private storage), the purposes it covers, the session(s), and the pupils (name, date of birth, class) pasted
or uploaded as CSV. `preview` checks every line and says what saving would do, changing nothing; `register`
does it in one transaction:

- each pupil gets an account with no e-mail of their own (an address in NO_EMAIL_DOMAIN, which is never
  mailed) and no password: they do not sign in; the coordinator and the school speak for them;
- their personal data records the date of birth, the class and the school's document; consent rows per
  purpose, channel "school", given on the pupils' behalf (`by_guardian`), with the notice version;
- their seats are booked through the booking rules (capacity, waiting list) by `book_seat_for_pupil`.

Submitting the same list again changes nothing: a pupil is the same pupil when the school, the name and the
date of birth are (compared without case and extra spaces), and a session already booked is not booked again.
A pupil of 16 or more consents for themselves, so the line is refused: they sign up on their own.
"""

import csv
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from fablab_ops import policy
from fablab_ops.accounts.models import Role, User
from fablab_ops.errors import DomainError, PermissionDenied
from fablab_ops.privacy.models import REQUIRED_PURPOSES, Channel, PersonalData, Purpose, SchoolConsent
from fablab_ops.privacy.services import (
    ADULT_AGE,
    CHILD_OWN_CONSENT_AGE,
    NO_EMAIL_DOMAIN,
    age_on,
    record_consent,
)

MAX_PUPILS = 200
DATE_FORMATS = ("%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d")
HEADER_WORDS = ("họ tên", "họ và tên", "name", "ngày sinh", "date of birth")


@dataclass
class PupilLine:
    number: int  # the line's number in what the coordinator pasted (1-based)
    text: str
    name: str = ""
    born: date | None = None
    school_class: str = ""
    errors: list = field(default_factory=list)
    existing: User | None = None  # the same pupil, registered before
    booked: set = field(default_factory=set)  # sessions this pupil already holds a live booking in

    @property
    def age(self) -> int | None:
        return age_on(self.born, timezone.localdate()) if self.born else None


@dataclass
class ClassPreview:
    lines: list
    sessions: list
    errors: list  # errors of the whole form (not of one line)

    @property
    def valid(self) -> bool:
        return not self.errors and bool(self.lines) and not any(line.errors for line in self.lines)

    @property
    def new_pupils(self) -> int:
        return sum(1 for line in self.lines if line.existing is None and not line.errors)

    @property
    def seats_to_book(self) -> int:
        return sum(len({s.pk for s in self.sessions} - line.booked) for line in self.lines if not line.errors)

    @property
    def has_children_from_seven(self) -> bool:
        return any(line.age is not None and line.age >= CHILD_OWN_CONSENT_AGE for line in self.lines)


def _clean(text: str) -> str:
    return " ".join((text or "").split())


def _parse_date(text: str) -> date | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date()
        except ValueError:
            continue
    return None


def parse_pupils(text: str) -> list[PupilLine]:
    """One pupil a line: name, date of birth (dd/mm/yyyy), class; separated by tabs (pasted from a
    spreadsheet), semicolons or commas. A header line is skipped; blank lines are ignored."""
    lines = []
    rows = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for number, raw in enumerate(rows, start=1):
        if not raw.strip():
            continue
        delimiter = "\t" if "\t" in raw else ";" if ";" in raw else ","
        cells = [_clean(cell) for cell in next(csv.reader([raw], delimiter=delimiter))]
        if not lines and cells and any(cells[0].lower().startswith(word) for word in HEADER_WORDS):
            continue
        line = PupilLine(number=number, text=_clean(raw)[:200])
        line.name = cells[0] if cells else ""
        line.school_class = cells[2][:40] if len(cells) > 2 else ""
        if not line.name or re.search(r"\d", line.name):
            line.errors.append(_("Thiếu họ tên học sinh (cột thứ nhất)."))
        elif len(line.name) > 150:
            line.errors.append(_("Họ tên quá dài."))
        born_text = cells[1] if len(cells) > 1 else ""
        line.born = _parse_date(born_text) if born_text else None
        if not born_text:
            line.errors.append(_("Thiếu ngày sinh (cột thứ hai, dd/mm/yyyy)."))
        elif line.born is None or line.born > timezone.localdate() or line.age > 120:
            line.errors.append(_("Ngày sinh không hợp lệ: %(text)s (dd/mm/yyyy).") % {"text": born_text})
        elif line.age >= ADULT_AGE:
            line.errors.append(_("Từ 16 tuổi, học sinh tự đồng ý: em cần tự đăng ký tài khoản."))
        lines.append(line)
    return lines


def read_csv_upload(upload) -> str:
    """An uploaded CSV as text (UTF-8, with or without the mark spreadsheets add)."""
    raw = upload.read(512 * 1024 + 1)
    if len(raw) > 512 * 1024:
        raise DomainError(_("Tệp quá lớn (tối đa 512 KB)."), code="file_too_large")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DomainError(_("Tệp CSV phải được lưu với mã UTF-8."), code="not_utf8") from error


def _key(school: str, name: str, born: date) -> tuple:
    return (_clean(school).casefold(), _clean(name).casefold(), born)


def _existing_pupils(school: str) -> dict:
    pupils = (PersonalData.objects.select_related("user", "school_consent")
              .filter(school_consent__school__iexact=_clean(school), erased_at__isnull=True))
    return {_key(data.school_consent.school, data.user.full_name, data.date_of_birth): data.user for data in pupils}


def preview(*, by, school: str, pupils_text: str, sessions) -> ClassPreview:
    """What saving would do, line by line; changes nothing."""
    from fablab_ops.courses.models import SeatBooking, SeatStatus

    require_school_registrar(by)
    errors = []
    sessions = list(sessions)
    if not _clean(school):
        errors.append(_("Hãy nhập tên trường."))
    if not sessions:
        errors.append(_("Hãy chọn ít nhất một buổi học."))
    lines = parse_pupils(pupils_text or "")
    if not lines:
        errors.append(_("Danh sách học sinh đang trống."))
    if len(lines) > MAX_PUPILS:
        errors.append(_("Tối đa %(n)d học sinh một lần.") % {"n": MAX_PUPILS})
    seen = {}
    existing = _existing_pupils(school) if _clean(school) else {}
    for line in lines:
        if line.errors:
            continue
        key = _key(school, line.name, line.born)
        if key in seen:
            line.errors.append(_("Trùng với dòng %(n)d.") % {"n": seen[key]})
            continue
        seen[key] = line.number
        line.existing = existing.get(key)
    # The seats the pupils found already hold, read at once for the whole class.
    found = {line.existing.pk: line for line in lines if line.existing is not None}
    if found and sessions:
        for learner_id, session_id in (SeatBooking.objects.filter(learner_id__in=found, session__in=sessions)
                                       .exclude(status=SeatStatus.CANCELLED).values_list("learner_id", "session_id")):
            found[learner_id].booked.add(session_id)
    return ClassPreview(lines=lines, sessions=sessions, errors=errors)


@dataclass
class ClassRegistration:
    consent: SchoolConsent
    pupils: list  # (User, created)
    results: list  # (User, session, BookingResult)

    @property
    def confirmed(self) -> int:
        return sum(1 for _u, _s, r in self.results if r.created and r.position is None)

    @property
    def waitlisted(self) -> int:
        return sum(1 for _u, _s, r in self.results if r.created and r.position is not None)

    @property
    def already(self) -> int:
        return sum(1 for _u, _s, r in self.results if not r.created)


def require_school_registrar(user) -> None:
    if not policy.may_register_school_classes(user):
        raise PermissionDenied(_("Chỉ điều phối viên mới được đăng ký lớp cho trường."), code="coordinators_only")


def register(*, by, school: str, reference: str, document_date: date, signatory: str, purposes, pupils_text: str,
             sessions, children_agreed: bool = False, scan=None, now: datetime | None = None) -> ClassRegistration:
    """Record the school's consent, the pupils and their seats, all or nothing (see the module)."""
    from fablab_ops.courses import services as courses

    now = now or timezone.now()
    checked = preview(by=by, school=school, pupils_text=pupils_text, sessions=sessions)
    if not checked.valid:
        raise DomainError(_("Danh sách còn lỗi: hãy sửa các dòng được đánh dấu rồi xem trước lại."),
                          code="pupil_list_invalid")
    school, reference, signatory = _clean(school)[:200], _clean(reference)[:100], _clean(signatory)[:150]
    if not reference or not signatory or document_date is None:
        raise DomainError(_("Hãy nhập số văn bản, ngày văn bản và người ký."), code="document_required")
    purposes = sorted(set(purposes) | set(REQUIRED_PURPOSES))
    if any(purpose not in Purpose.values for purpose in purposes):
        raise DomainError(_("Mục đích không hợp lệ."), code="invalid_purpose")
    if checked.has_children_from_seven and not children_agreed:
        raise DomainError(_("Từ 7 tuổi, học sinh cũng cần tự đồng ý: hãy xác nhận các em đã được hỏi."),
                          code="child_agreement_required")
    pupils, results = [], []
    with transaction.atomic():
        consent, created = SchoolConsent.objects.get_or_create(
            school=school, reference=reference,
            defaults={"document_date": document_date, "signatory": signatory, "purposes": purposes,
                      "recorded_by": by, "recorded_at": now})
        if not created and set(purposes) - set(consent.purposes):
            consent.purposes = sorted(set(consent.purposes) | set(purposes))
            consent.save(update_fields=["purposes"])
        if scan is not None and not consent.scan:
            consent.scan.save(f"{secrets.token_hex(8)}{extension(scan.name)}", scan, save=True)
        for line in checked.lines:
            pupil = line.existing
            if pupil is None:
                pupil = User(email=f"pupil-{secrets.token_hex(8)}@{NO_EMAIL_DOMAIN}", full_name=line.name,
                             organisation=school, role=Role.LEARNER)
                pupil.set_unusable_password()
                pupil.save()
                PersonalData.objects.create(
                    user=pupil, date_of_birth=line.born, school_consent=consent, school_class=line.school_class,
                    child_agreed_at=now if line.age >= CHILD_OWN_CONSENT_AGE else None)
                for purpose in Purpose.values:
                    record_consent(pupil, purpose, purpose in purposes, channel=Channel.SCHOOL, by_guardian=True,
                                   now=now)
            pupils.append((pupil, line.existing is None))
            for session in checked.sessions:
                results.append((pupil, session, courses.book_seat_for_pupil(session.pk, pupil, by=by, now=now)))
    return ClassRegistration(consent=consent, pupils=pupils, results=results)


def extension(name: str) -> str:
    match = re.search(r"\.(pdf|jpe?g|png)$", (name or "").lower())
    return "." + match.group(1) if match else ""


def school_consents():
    return SchoolConsent.objects.order_by("-recorded_at", "-pk")
