"""Every visible string is translated, and pages say things in the user's words, not the code's.

Two halves:
- the catalogue: every string the code marks for translation (gettext in .py files, {% translate %} and
  {% blocktranslate %} in templates, extracted the way `makemessages` does) has an English entry that is
  neither empty nor fuzzy;
- the pages: every page of the role walk, opened as a learner, a technician, a coordinator and a visitor in
  Vietnamese and in English, shows no raw value of a model's choices (`running`, `no_show`, `held`, …) as
  text, and the English pages show no Vietnamese sentence left untranslated.
"""

import inspect
import io
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_python
from babel.messages.pofile import read_po
from django.apps import apps
from django.db import models
from django.test import Client
from django.utils import timezone, translation
from django.utils.translation.template import templatize

from fablab_ops.courses.models import SeatStatus
from fablab_ops.machines.models import MachineLiveStatus, MachineState
from tests import factories
from tests.test_numbers_in_markup import localized_numbers_in_markup
from tests.test_role_walk import PAGE_QUERIES, PAGES, PATH_OVERRIDES, fill, page_routes, path_values, world  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent / "fablab_ops"
CATALOGUE = ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"
KEYWORDS = {**DEFAULT_KEYWORDS, "gettext_lazy": None, "ngettext_lazy": (1, 2), "pgettext_lazy": ((1, "c"), 2),
            "npgettext_lazy": ((1, "c"), 2, 3), "gettext_noop": None}


# --- the catalogue ---------------------------------------------------------------------------------

def _messages(found, where):
    for lineno, funcname, message, _comments in found:
        context = None
        if isinstance(message, tuple):
            if funcname.startswith(("pgettext", "npgettext")):
                context, message = message[0], message[1]
            else:
                message = message[0]
        if message:
            yield (context, message), f"{where}:{lineno}"


def marked_strings() -> dict:
    """(context, msgid) → where, for every string marked for translation in the code and the templates."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        for key, where in _messages(extract_python(io.BytesIO(path.read_bytes()), KEYWORDS, [], {}), path):
            found.setdefault(key, where)
    for path in sorted(ROOT.glob("templates/**/*")):
        if path.suffix not in (".html", ".txt"):
            continue
        # Django's own template-to-gettext translation (as makemessages uses), indentation dropped for the parser.
        code = "\n".join(line.strip() for line in templatize(path.read_text(encoding="utf-8"), origin=str(path))
                         .splitlines())
        for key, where in _messages(extract_python(io.BytesIO(code.encode()), KEYWORDS, [], {}), path):
            found.setdefault(key, where)
    return found


def catalogue():
    with CATALOGUE.open("rb") as po:
        return read_po(po)


def django_translates(msgid: str) -> bool:
    """A string of Django's own (the admin's "Home") is translated by Django's bundled catalogues."""
    with translation.override("vi"):
        return translation.gettext(msgid) != msgid


def test_every_marked_string_has_an_english_translation():
    entries = catalogue()
    missing = [f"{where}: {msgid!r}" + (f" (context {context!r})" if context else "")
               for (context, msgid), where in marked_strings().items()
               if entries.get(msgid, context=context) is None and not django_translates(msgid)]
    assert not missing, f"{len(missing)} strings missing from {CATALOGUE.name}:\n" + "\n".join(missing)


def test_no_english_translation_is_empty_or_fuzzy():
    bad = []
    for message in catalogue():
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(strings):
            bad.append(f"line {message.lineno}: {message.id!r}{' (fuzzy)' if message.fuzzy else ''}")
    assert not bad, "\n".join(bad)


def test_the_scan_sees_strings_of_code_and_of_templates():
    found = marked_strings()
    assert (None, "Trạng thái máy") in found  # {% translate %} in machines/live.html
    assert (None, "Mật khẩu này quá phổ biến, rất dễ bị đoán.") in found  # gettext in accounts/passwords.py
    assert ("door list", "Đăng ký") in found  # pgettext in the door's template


# --- the pages -------------------------------------------------------------------------------------

def raw_values() -> set[str]:
    """The stored value of every choice of the project's models whose label says something else."""
    values = set()
    for app in apps.get_app_configs():
        if not app.name.startswith("fablab_ops") or app.models_module is None:
            continue  # not ours, or an app without models (the demo)
        module = app.models_module
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, models.Choices) and obj.__module__ == module.__name__:
                with translation.override("vi"):
                    values |= {str(value) for value, label in obj.choices
                               if isinstance(value, str) and str(label) != value}
    return values


class VisibleText(HTMLParser):
    """The text a person reads: what is between tags, outside scripts, styles and templates of code."""

    HIDDEN = {"script", "style", "template"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.HIDDEN:
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden and data.strip():
            self.chunks.append(unicodedata.normalize("NFC", data.strip()))


def visible_chunks(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.chunks


def raw_values_in(chunks: list[str], values: set[str], *, anywhere: bool = False) -> set[str]:
    """A value shown alone (a cell, a badge) or, with its underscore, anywhere; with `anywhere` (a Vietnamese
    page, where no English word belongs) any value as a word of the text."""
    seen = set()
    for chunk in chunks:
        for value in values:
            if chunk == value or (("_" in value or anywhere)
                                  and re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", chunk)):
                seen.add(value)
    return seen


# Vietnamese letters that English never uses: a chunk of an English page holding one is left untranslated,
# unless it is a name (a person's, a lab's, a course's given only in Vietnamese) the world put there.
VIETNAMESE = re.compile(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", re.I)
ROLES = ("anonymous", "learner", "BIIC technician", "coordinator")


def names_in(w) -> set[str]:
    """Words the world gives only in Vietnamese: the people's names, the labs', machines' and courses'."""
    from django.conf import settings

    from fablab_ops.accounts.models import User
    from fablab_ops.courses.models import Course
    from fablab_ops.machines.models import Lab, Machine, MachineType
    from fablab_ops.privacy.models import SchoolConsent

    words = set()
    for text in [*User.objects.values_list("full_name", flat=True), settings.PRIVACY_CONTROLLER_NAME,
                 *Lab.objects.values_list("name_vi", flat=True), *Lab.objects.values_list("address", flat=True),
                 *Lab.objects.values_list("host", flat=True), *Lab.objects.values_list("field", flat=True),
                 *Machine.objects.values_list("name", flat=True),
                 *MachineType.objects.values_list("name_vi", flat=True),
                 *Course.objects.values_list("title_vi", flat=True),
                 *Course.objects.values_list("description", flat=True),
                 *Course.objects.values_list("prerequisites", flat=True),
                 *Course.objects.values_list("what_to_bring", flat=True),
                 *SchoolConsent.objects.values_list("school", flat=True),
                 *SchoolConsent.objects.values_list("signatory", flat=True),
                 *(alert.detail for alert in [w.alert]), "điện thoại", "Tiếng Việt",
                 "NĐ-CP"]:  # a decree's number, as the law writes it
        words |= set(re.findall(r"\w+", text or ""))
    return words


def _english_leftovers(chunks, names) -> list[str]:
    return [chunk for chunk in chunks if VIETNAMESE.search(chunk)
            and any(VIETNAMESE.search(word) and word not in names for word in re.findall(r"\w+", chunk))]


@pytest.fixture
def lived_world(request):
    """The role walk's world with a machine at work and a class with a waiting list, so their states show."""
    w = request.getfixturevalue("world")
    MachineLiveStatus.objects.create(machine=w.laser, online=True, state=MachineState.RUNNING,
                                     last_seen_at=timezone.now(), power_w=120)
    MachineLiveStatus.objects.create(machine=w.cabinet, online=True, state=MachineState.IDLE,
                                     last_seen_at=timezone.now())
    factories.SeatBookingFactory(session=w.session, learner=factories.LearnerFactory(),
                                 status=SeatStatus.WAITLISTED, waitlist_position=1)
    return w


def walk(w, language):
    """(role, address, html) of every HTML page of the walk that answers 200 in `language`."""
    values = path_values(w)
    for role in ROLES:
        client = Client()
        user = w.users[role]
        if user.is_authenticated:
            user.language = language
            user.save(update_fields=["language"])
            client.force_login(user)
        client.cookies["django_language"] = language
        for route in page_routes():
            if route not in PAGES:
                continue
            address = "/" + fill(route, values, PATH_OVERRIDES.get(route, {}), w)
            response = client.get(address, PAGE_QUERIES.get(route, lambda w: {})(w), HTTP_ACCEPT_LANGUAGE=language)
            if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
                yield role, address, response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_no_page_shows_a_raw_stored_value(lived_world, language):
    values = raw_values()
    shown, pages = [], 0
    for role, address, html in walk(lived_world, language):
        pages += 1
        for value in sorted(raw_values_in(visible_chunks(html), values, anywhere=language == "vi")):
            shown.append(f"{address} as {role} ({language}) shows the raw value {value!r}")
    assert pages > 40
    assert not shown, "\n".join(shown)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["vi", "en"])
def test_no_page_writes_a_localised_number_into_its_markup(lived_world, language):
    """Every page of the walk, not only those with charts: `style`, SVG and `data-` take plain numbers."""
    found = [f"{address} as {role} ({language}): {where}" for role, address, html in walk(lived_world, language)
             for where in localized_numbers_in_markup(html)]
    assert not found, "\n".join(found)


@pytest.mark.django_db
def test_english_pages_leave_no_vietnamese_sentence_untranslated(lived_world):
    names = names_in(lived_world)
    left = []
    for role, address, html in walk(lived_world, "en"):
        for chunk in _english_leftovers(visible_chunks(html), names):
            left.append(f"{address} as {role}: {chunk[:120]!r}")
    assert not left, f"{len(left)} Vietnamese strings on English pages:\n" + "\n".join(sorted(set(left)))


def test_the_checks_catch_what_they_look_for():
    assert raw_values_in(visible_chunks("<td>running</td><p>no_show là vắng</p>"), {"running", "no_show"}) == {
        "running", "no_show"}
    assert raw_values_in(visible_chunks("<p>Switch the machine off</p><script>x='running'</script>"),
                         {"running", "off"}) == set()
    assert {"running", "idle", "off", "no_show", "waitlisted"} <= raw_values()
    assert _english_leftovers(["Đã xác nhận", "Confirmed", "Fablab đa ngành BIIC"], {"đa", "ngành"}) == [
        "Đã xác nhận"]


# --- the sign-up speaks the user's language -------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("language, said, not_said", [
    ("vi", "Mật khẩu quá ngắn: cần ít nhất 8 ký tự.", "This password is too short"),
    ("en", "This password is too short: it needs at least 8 characters.", "Mật khẩu quá ngắn"),
])
def test_a_short_password_at_sign_up_is_refused_in_the_pages_language(client, language, said, not_said):
    client.cookies["django_language"] = language
    response = client.post("/accounts/signup/", {"full_name": "Phạm Thị Hồng", "email": "hong@hocvien.vn",
                                                 "password": "x7#Qz", "date_of_birth": "2000-01-01",
                                                 "consent_bookings": "on"})
    page = response.content.decode()
    assert response.status_code == 200
    assert said in page and not_said not in page


@pytest.mark.django_db
def test_the_language_menu_names_english_in_english_on_a_vietnamese_page(client, settings):
    # Whatever lists the languages (the menu, {% get_available_languages %}, a profile), each is named in itself.
    with translation.override("vi"):
        assert [str(name) for _code, name in settings.LANGUAGES] == ["Tiếng Việt", "English"]
    page = client.get("/courses/").content.decode()
    assert ">English</option>" in page and "Tiếng Anh" not in page


@pytest.mark.parametrize("status", [405, 413, 429, 418])
def test_an_api_refusal_of_the_framework_is_said_in_our_words_not_its_own(rf, status):
    import json

    from ninja.errors import HttpError

    from fablab_ops.api import on_http_error

    request = rf.get("/api/courses/sessions")
    with translation.override("vi"):
        body = json.loads(on_http_error(request, HttpError(status, "Method not allowed by the framework")).content)
    assert body["message"] and "framework" not in body["message"]
    assert VIETNAMESE.search(body["message"])


@pytest.mark.django_db
def test_a_refused_scan_is_listed_in_words_without_its_code(lab, technician):
    from fablab_ops.booking.models import CheckInOutcome, CheckInRecord

    CheckInRecord.objects.create(lab=lab, by=technician, at=timezone.now(), outcome=CheckInOutcome.REFUSED,
                                 reason="too_early", method="qr")
    page = Client()
    page.force_login(technician)
    chunks = visible_chunks(page.get(f"/booking/labs/{lab.slug}/absences/").content.decode())
    assert any("Chưa đến giờ check-in." in chunk for chunk in chunks)
    assert not raw_values_in(chunks, {"too_early"})
