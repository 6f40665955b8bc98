"""Which personal fields of a learner each role reads, page by page and endpoint by endpoint.

Distinctive values are planted in BIIC's learner's record (name, e-mail, phone, date of birth, school, class,
guardian's name and e-mail; the service holds no postal address of learners), then every page of the URL
resolver and every API GET endpoint of the OpenAPI schema is opened as each role of the role walk
(tests/test_role_walk.py: its world, routes and path values), with the browser session and, for the API, the
role's personal token. Responses are read as a person would get them: HTML and JSON as text (JSON decoded,
so escaped Vietnamese is found), spreadsheets cell by cell, PDFs page by page. The fields found are compared
with ALLOWED below: the test fails naming the role, the field and the page when a role sees a field not on
its list, and prints the table it observed.

Coordinators act for the whole network (fablab_ops/policy.py: `is_network_staff`); there is no coordinator
"of a course" and one "not of it", so one coordinator role stands for both. Allowed, per role:

| role | sees of BIIC's learner |
|---|---|
| visitor | nothing |
| the learner | everything, on their own pages (profile, bookings, export) |
| another learner | nothing |
| technician of BIIC | name (roster, sign-in sheet, day sheet, door, certifications, inductions); phone only |
|   | at the door (policy: a technician finds a learner by phone there); no e-mail, birth date, school, guardian |
| technician of TDMU, technician without a lab | nothing |
| coordinator, administrator | name; e-mail and phone on the roster with contacts (logged) and at the door; |
|   | everything in the staff export of one learner (logged) |
| everyone, reports and their downloads | nothing: aggregates only |
"""

import io
import json
import re

import pytest
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from fablab_ops.accounts.models import ApiToken
from fablab_ops.privacy.models import PersonalData
from tests.test_role_walk import (  # noqa: F401  (world: the fixture)
    API,
    CAPABILITY,
    PAGE_QUERIES,
    PAGES,
    PATH_OVERRIDES,
    api_get_paths,
    clients,
    fill,
    page_routes,
    path_values,
    query_values,
    world,
)

SCHOOL = "Trường THCS Riêng Tư Số 9"
SCHOOL_CLASS = "Lớp 7Q9"
BORN = "2011-03-14"
GUARDIAN_NAME = "Phạm Giám Hộ Riêng"
GUARDIAN_EMAIL = "giamho.rieng@phuhuynh.vn"

EVERYWHERE = "everywhere"
OWN_PAGES = EVERYWHERE
DOOR = {"/booking/labs/<slug:lab>/scanner/", "/api/booking/labs/{lab}/door"}
ROSTER = {"/courses/manage/sessions/<int:session_id>/roster/"}
STAFF_EXPORT = {"/privacy/learners/<int:user_id>/export/"}
REPORTS = {"/reports/", "/reports/download/", "/reports/targets/", "/api/reports/monthly",
           "/api/reports/monthly/file"}
ALL_FIELDS = ("name", "e-mail", "phone", "date of birth", "school", "class", "guardian name", "guardian e-mail")

ALLOWED = {
    "anonymous": {},
    "learner": dict.fromkeys(ALL_FIELDS, OWN_PAGES),
    "other learner": {},
    "BIIC technician": {"name": EVERYWHERE, "phone": DOOR},
    "TDMU technician": {},
    "technician without a lab": {},
    "coordinator": {"name": EVERYWHERE, "e-mail": ROSTER | DOOR | STAFF_EXPORT, "phone": ROSTER | DOOR | STAFF_EXPORT,
                    **dict.fromkeys(("date of birth", "school", "class", "guardian name", "guardian e-mail"),
                                    STAFF_EXPORT)},
}
ALLOWED["admin"] = ALLOWED["coordinator"]


def plant(w) -> dict:
    """The learner's distinctive values, and the ways each can be written."""
    owner = w.owner
    owner.organisation = SCHOOL
    owner.save(update_fields=["organisation"])
    PersonalData.objects.create(user=owner, date_of_birth=BORN, school_class=SCHOOL_CLASS,
                                guardian_name=GUARDIAN_NAME, guardian_email=GUARDIAN_EMAIL, guardian_relation="bố",
                                guardian_confirmed_at=timezone.now(), child_agreed_at=timezone.now())
    return {
        "name": [owner.full_name], "e-mail": [owner.email], "phone": [owner.phone],
        "date of birth": ["14/03/2011", "2011-03-14", "14/3/2011", "14-03-2011"],
        "school": [SCHOOL], "class": [SCHOOL_CLASS], "guardian name": [GUARDIAN_NAME],
        "guardian e-mail": [GUARDIAN_EMAIL],
    }


def readable(response) -> str:
    """The response as text a person would read from it."""
    kind = response.get("Content-Type", "")
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if "json" in kind:
        try:
            return json.dumps(json.loads(content), ensure_ascii=False)
        except ValueError:
            return content.decode(errors="replace")
    if "spreadsheet" in kind:
        book = load_workbook(io.BytesIO(content), read_only=True)
        return "\n".join(str(cell) for sheet in book for row in sheet.iter_rows(values_only=True) for cell in row
                         if cell is not None)
    if "pdf" in kind:
        try:
            return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)
        except PdfReadError:  # not a PDF made here (a school's scanned document): read its bytes
            pass
    return content.decode(errors="replace")


def found(text: str, marks: dict) -> set:
    return {field for field, spellings in marks.items() if any(s in text for s in spellings)}


def observe(w) -> dict:
    """{role: {field: {route}}}: what each role was shown, where."""
    marks = plant(w)
    values, queries, by_role = path_values(w), query_values(w), clients(w)
    bearer = {role: ApiToken.issue(user, "personal fields")[1] for role, user in w.users.items()
              if user.is_authenticated}
    seen = {role: {} for role in w.users}

    def note(role, route, response):
        if response.status_code != 200:
            return
        for field in found(readable(response), marks):
            seen[role].setdefault(field, set()).add(route)

    for route in page_routes():
        if route not in PAGES or "/" + route in CAPABILITY:
            continue  # a capability address is the owner's own key: whoever holds it is the owner
        address = "/" + fill(route, values, PATH_OVERRIDES.get(route, {}), w)
        query = PAGE_QUERIES.get(route, lambda w: {})(w)
        for role, client in by_role.items():
            note(role, "/" + route, client.get(address, query))
    for path, operation in api_get_paths(by_role["anonymous"]).items():
        if path not in API:
            continue
        address = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        query = {p["name"]: queries[p["name"]] for p in operation.get("parameters", ())
                 if p["in"] == "query" and (p.get("required") or p["name"] == "lab") and p["name"] in queries}
        for role, client in by_role.items():
            note(role, path, client.get(address, query))
            if role in bearer:
                note(role, path, Client().get(address, query, HTTP_AUTHORIZATION=f"Bearer {bearer[role]}"))
    return seen


def table(seen: dict) -> str:
    lines = []
    for role, fields in seen.items():
        lines.append(f"{role}:")
        for field in ALL_FIELDS:
            if field in fields:
                lines.append(f"  {field}: {', '.join(sorted(fields[field]))}")
        if not fields:
            lines.append("  nothing")
    return "\n".join(lines)


def violations(seen: dict) -> list:
    problems = []
    for role, fields in seen.items():
        for field, routes in fields.items():
            for route in sorted(routes):
                if route in REPORTS:
                    problems.append(f"{role} reads the learner's {field} in the report {route}: aggregates only")
                    continue
                allowed = ALLOWED[role].get(field)
                if allowed is None or (allowed != EVERYWHERE and route not in allowed):
                    problems.append(f"{role} reads the learner's {field} on {route}")
    return problems


@pytest.mark.django_db
def test_each_role_reads_only_the_personal_fields_on_its_list(world):  # noqa: F811
    seen = observe(world)
    print("\nPersonal fields of BIIC's learner, per role and where:\n" + table(seen))
    problems = violations(seen)
    assert not problems, f"{len(problems)} personal fields where the role may not read them:\n" + "\n".join(problems)
    # The walk did reach the learner's data: the owner and the staff who may read it see it.
    assert set(seen["learner"]) == set(ALL_FIELDS)
    assert set(seen["coordinator"]) == set(ALL_FIELDS)
    assert seen["BIIC technician"].get("name")


def test_a_field_a_role_may_not_read_fails_the_test_by_name():
    seen = {"BIIC technician": {"name": {"/courses/manage/sessions/<int:session_id>/roster/"},
                                "date of birth": {"/booking/labs/<slug:lab>/scanner/"}},
            "coordinator": {"name": {"/reports/download/"}}}
    assert violations(seen) == [
        "BIIC technician reads the learner's date of birth on /booking/labs/<slug:lab>/scanner/",
        "coordinator reads the learner's name in the report /reports/download/: aggregates only"]
