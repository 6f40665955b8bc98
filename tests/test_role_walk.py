"""The role walk: every page and every API GET endpoint, opened as every role, answers what the policy says.

The pages come from the URL resolver and the endpoints from the published OpenAPI schema, so a page or an
endpoint added later without an expected answer per role makes this test fail by name. Expectations are
computed from fablab_ops/policy.py (and, where a rule lives in a service, from that service), not written
out per role. Path parameters are filled with objects of BIIC, or of the learner who owns them.

Roles: a visitor, the learner who owns the bookings, another learner, a technician of BIIC, one of TDMU,
one not yet given a lab, a coordinator and an administrator. Endpoints are asked with the browser's session
and with the role's personal API token.

Least data: nobody outside BIIC's staff (a visitor, another learner, TDMU's technician) sees the name or
address of BIIC's learner anywhere, and no technician sees a learner's e-mail address
(fablab_ops.policy.sees_contact_details), nor a phone number except at the door.
"""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from fablab_ops import policy
from fablab_ops.accounts.models import ApiToken
from fablab_ops.booking import services as booking
from fablab_ops.booking import tickets
from fablab_ops.booking.models import CheckInRecord, ReservationStatus
from fablab_ops.courses.models import SeatStatus
from fablab_ops.machines.models import AlertKind, MachineAlert, QuarantinedMessage
from fablab_ops.privacy.models import SchoolConsent
from fablab_ops.reports import services as reports
from tests import factories

LOGIN = "login redirect"
REDIRECT = "redirect"
PARAM = re.compile(r"<(?:\w+:)?(\w+)>")
NOT_WALKED = ("admin/", "api/", "i18n/", "static/")
# Pages reached only through a signed link in an e-mail: their token, not a role, decides.
SIGNED = {"accounts/email/confirm/<str:token>/", "accounts/verify/<str:token>/", "accounts/reset/<uidb64>/<token>/",
          "privacy/guardian/<str:token>/"}
# Pages whose address holds the owner's own secret: whoever has it is the owner's guest, whatever their role.
CAPABILITY = {"/courses/calendar/<str:secret>.ics"}
OWNER_NAME, OWNER_EMAIL, OWNER_PHONE = "Nguyễn Thị Chủ Riêng", "chu.rieng@hocvien.vn", "0912345678"
OTHER_NAME, OTHER_EMAIL, OTHER_PHONE = "Trần Văn Người Khác", "nguoi.khac@hocvien.vn", "0987654321"
# The door is where a technician finds a learner by phone (door.services.search_today), so it shows phones to the
# lab's technicians; no other page or endpoint shows a technician a learner's phone.
DOOR = {"/booking/labs/<slug:lab>/scanner/", "/api/booking/labs/{lab}/door"}


@dataclass
class World:
    biic: object
    tdmu: object
    laser: object
    cabinet: object
    course: object
    session: object
    induction: object
    seat: object
    reservation: object
    certification: object
    alert: object
    token: object
    school_consent: object
    users: dict

    @property
    def owner(self):
        return self.users["learner"]


@pytest.fixture
def world(db):
    biic = factories.LabFactory(slug="biic", short_name="BIIC", name_vi="Fablab đa ngành BIIC")
    tdmu = factories.LabFactory(slug="tdmu", short_name="TDMU", name_vi="Phòng thí nghiệm TDMU")
    laser_type = factories.MachineTypeFactory(slug="laser", name_vi="Máy cắt laser")
    laser = factories.MachineFactory(lab=biic, slug="laser-01", name="Máy cắt laser CO2", machine_type=laser_type)
    cabinet = factories.MachineFactory(lab=tdmu, slug="cabinet-01", name="Tủ an toàn sinh học",
                                       machine_type=factories.MachineTypeFactory(slug="biosafety-cabinet"))
    owner = factories.LearnerFactory(full_name=OWNER_NAME, email=OWNER_EMAIL, phone=OWNER_PHONE)
    other = factories.LearnerFactory(full_name=OTHER_NAME, email=OTHER_EMAIL, phone=OTHER_PHONE)
    users = {
        "anonymous": AnonymousUser(),
        "learner": owner,
        "other learner": other,
        "BIIC technician": factories.TechnicianFactory(labs=[biic], full_name="Kỹ Thuật BIIC"),
        "TDMU technician": factories.TechnicianFactory(labs=[tdmu], full_name="Kỹ Thuật TDMU"),
        "technician without a lab": factories.TechnicianFactory(full_name="Kỹ Thuật Mới"),
        "coordinator": factories.CoordinatorFactory(full_name="Lê Thị Điều Phối"),
        "admin": factories.AdminFactory(full_name="Quản Trị"),
    }
    course = factories.CourseFactory(lab=biic, slug="arduino-biic")
    session = factories.SessionFactory(course=course)
    tdmu_session = factories.SessionFactory(course=factories.CourseFactory(lab=tdmu, slug="sinh-hoc-tdmu"))
    started = timezone.now() - timedelta(hours=2)
    induction = factories.SessionFactory(
        course=factories.InductionCourseFactory(lab=biic, slug="huong-dan-laser", certifies=laser_type),
        start=started, end=started + timedelta(hours=1))
    seat = factories.SeatBookingFactory(session=session, learner=owner)
    factories.SeatBookingFactory(session=induction, learner=owner, status=SeatStatus.ATTENDED,
                                 checked_in_at=started)
    factories.SeatBookingFactory(session=tdmu_session, learner=other)
    soon = timezone.now().replace(microsecond=0) + timedelta(minutes=30)
    reservation = factories.ReservationFactory(machine=laser, user=owner, start=soon, end=soon + timedelta(hours=1))
    factories.ReservationFactory(machine=cabinet, user=other, start=soon, end=soon + timedelta(hours=1))
    certification = factories.CertificationFactory(user=owner, machine_type=laser_type)
    alert = MachineAlert.objects.create(machine=laser, kind=AlertKind.OFFLINE, raised_at=timezone.now(),
                                        detail="Máy mất kết nối")
    QuarantinedMessage.objects.create(received_at=timezone.now(), topic="fablab/biic/laser-01/state",
                                      payload='{"holder": "x"', payload_size=14, reason="bad_json",
                                      detail="Expecting value")
    token, _secret = ApiToken.issue(owner, "điện thoại")
    school_consent = SchoolConsent.objects.create(
        school="Trường THCS Chánh Nghĩa", reference="12/CV", document_date=timezone.localdate(),
        signatory="Hiệu trưởng", purposes=["bookings"], recorded_at=timezone.now())
    school_consent.scan.save("cong-van.pdf", ContentFile(b"%PDF-1.4"), save=True)
    return World(biic=biic, tdmu=tdmu, laser=laser, cabinet=cabinet, course=course, session=session,
                 induction=induction, seat=seat, reservation=reservation, certification=certification,
                 alert=alert, token=token, school_consent=school_consent, users=users)


# --- expectations, from the policy -----------------------------------------------------------------

def anonymous(user) -> bool:
    return not user.is_authenticated


def public(w, user):
    return 200


def signed_in(rule):
    """Pages behind login: anonymous visitors are sent to log in, everyone else gets what `rule` says."""
    return lambda w, user: LOGIN if anonymous(user) else rule(w, user)


def everyone(w, user):
    return 200


def post_only(w, user):
    return 405


def owner_only(w, user):
    """A learner acts for themselves only: someone else's booking does not exist for anybody else."""
    return 200 if user == w.owner else 404


def biic_staff(w, user):
    return 200 if policy.staffs_lab(user, w.biic) else 403


def any_staff(w, user):
    return 200 if policy.staffed_labs(user).exists() else 403


def course_manager(w, user):
    return 200 if policy.may_manage_courses(user) else 403


def roster_reader(w, user):
    return 200 if policy.may_see_roster(user, w.session) else 403


def induction_marker(w, user):
    return 200 if policy.may_mark_induction(user, w.induction) else 403


def marks_some_inductions(w, user):
    return 200 if policy.may_mark_inductions(user) else 403


def certifier(w, user):
    return 200 if policy.may_certify(user, w.certification.machine_type) else 403


def target_setter(w, user):
    return 200 if policy.may_set_targets(user) else 403


def certified_for_laser(w, user):
    return 200 if booking.is_certified(user, w.laser.machine_type) else 409


def learner_exporter(w, user):
    """A learner's whole data, copied by staff: network staff only; to anyone else the learner is not there."""
    return 200 if policy.may_export_for(user) else 404


def school_registrar(w, user):
    return 200 if policy.may_register_school_classes(user) else 403


def school_document_reader(w, user):
    """A school's scanned consent: coordinators; to anyone else it is not there."""
    return 200 if policy.may_register_school_classes(user) else 404


def same_for_everyone(w, user):
    """Operators' endpoints: a login changes nothing; the answer is the anonymous one."""
    return None


PAGES = {
    "healthz": same_for_everyone,
    "readyz": same_for_everyone,
    "metrics": same_for_everyone,
    "": lambda w, user: REDIRECT,
    "favicon.ico": lambda w, user: REDIRECT,
    # accounts
    "accounts/login/": public,
    "accounts/logout/": post_only,  # logging out is a POST
    "accounts/signup/": public,
    "accounts/calendar-feed/rotate/": signed_in(post_only),
    "accounts/profile/": signed_in(everyone),
    # personal data
    "privacy/": public,
    "privacy/consents/<str:purpose>/<str:action>/": signed_in(post_only),
    "privacy/export/": signed_in(everyone),
    "privacy/export.json": signed_in(everyone),
    "privacy/erase/": signed_in(everyone),
    "privacy/guardian-resend/": signed_in(post_only),
    "privacy/learners/<int:user_id>/export/": signed_in(learner_exporter),
    "privacy/learners/<int:user_id>/erase/": signed_in(post_only),
    # asked of accounts older than the consent question; everyone here has answered it, so is sent on
    "privacy/confirm/": signed_in(lambda w, user: REDIRECT),
    "privacy/schools/": signed_in(school_registrar),
    "privacy/schools/consents/<int:consent_id>/scan/": signed_in(school_document_reader),
    "accounts/profile/email/": signed_in(post_only),
    "accounts/verify/resend/": signed_in(post_only),
    "accounts/tokens/": signed_in(everyone),
    "accounts/tokens/<int:token_id>/revoke/": signed_in(owner_only),
    "accounts/password_reset/": public,
    "accounts/password_reset/done/": public,
    "accounts/reset/done/": public,
    "accounts/password_change/": signed_in(everyone),
    "accounts/password_change/done/": signed_in(everyone),
    # courses
    "courses/": public,
    "courses/sessions/<int:session_id>/": public,
    "courses/sessions/<int:session_id>/book/": signed_in(post_only),
    "courses/my/": signed_in(everyone),
    "courses/bookings/<int:booking_id>/": signed_in(owner_only),
    "courses/bookings/<int:booking_id>/cancel/": signed_in(owner_only),
    "courses/bookings/<int:booking_id>/confirm/": signed_in(post_only),
    "courses/bookings/<int:booking_id>/calendar.ics": signed_in(owner_only),
    "courses/calendar/labs/<slug:slug>.ics": public,
    "courses/calendar/courses/<slug:slug>.ics": public,
    "courses/calendar/<str:secret>.ics": public,  # the secret in the address is the key
    "courses/manage/": signed_in(course_manager),
    "courses/manage/schedule/": signed_in(course_manager),
    "courses/manage/sessions/<int:session_id>/": signed_in(course_manager),
    "courses/manage/schedule/one/": signed_in(course_manager),
    "courses/manage/courses/": signed_in(course_manager),
    "courses/manage/courses/new/": signed_in(course_manager),
    "courses/manage/courses/<int:course_id>/": signed_in(course_manager),
    "courses/manage/sessions/<int:session_id>/roster/": signed_in(roster_reader),
    "courses/manage/sessions/<int:session_id>/message/": signed_in(course_manager),
    "courses/manage/sessions/<int:session_id>/cancel/": signed_in(course_manager),
    "courses/manage/sign-in.pdf": signed_in(roster_reader),
    "courses/inductions/": signed_in(marks_some_inductions),
    "courses/inductions/<int:session_id>/": signed_in(induction_marker),
    "courses/my/certifications/": signed_in(everyone),
    # machines
    "machines/": public,
    "machines/live/": signed_in(any_staff),
    "machines/live/board/": signed_in(any_staff),
    "machines/labs/<slug:lab>/": signed_in(biic_staff),
    "machines/labs/<slug:lab>/alerts/<int:alert_id>/acknowledge/": signed_in(post_only),
    "machines/labs/<slug:lab>/alerts/<int:alert_id>/resolve/": signed_in(post_only),
    "machines/labs/<slug:lab>/machines/<slug:machine>/maintenance-done/": signed_in(post_only),
    "booking/labs/<slug:lab>/maintenance/": signed_in(biic_staff),
    "machines/labs/<slug:lab>/quarantine/": signed_in(biic_staff),
    # booking
    "booking/reservations/": signed_in(everyone),
    "booking/reservations/<int:reservation_id>/": signed_in(owner_only),
    "booking/reservations/<int:reservation_id>/cancel/": signed_in(owner_only),
    "booking/reservations/<int:reservation_id>/calendar.ics": signed_in(owner_only),
    "booking/search/": signed_in(everyone),
    "booking/reserve/": signed_in(post_only),
    "booking/machines/<slug:lab>/<slug:machine>/": public,
    "booking/labs/<slug:lab>/day/": signed_in(biic_staff),
    "booking/labs/<slug:lab>/scanner/": signed_in(biic_staff),
    "booking/labs/<slug:lab>/absences/": signed_in(biic_staff),
    "booking/certifications/": signed_in(everyone),
    "booking/certifications/<int:certification_id>/revoke/": signed_in(certifier),
    # reports: a technician's report is of their own lab, a coordinator's of the network
    "reports/": signed_in(biic_staff),  # asked with ?lab=biic
    "reports/download/": signed_in(biic_staff),
    "reports/targets/": signed_in(target_setter),
}

# Query strings a page needs to show something rather than send the user back.
PAGE_QUERIES = {"courses/manage/sign-in.pdf": lambda w: {"session": w.session.pk},
                "reports/": lambda w: {"lab": w.biic.slug}, "reports/download/": lambda w: {"lab": w.biic.slug}}

API = {
    "/api/health": public,
    "/api/accounts/me": signed_in(everyone),
    "/api/courses/sessions": public,
    "/api/courses/sessions/{session_id}": public,
    "/api/courses/bookings/mine": signed_in(everyone),
    "/api/courses/bookings/{booking_id}": signed_in(owner_only),
    "/api/courses/bookings/{booking_id}/ticket.svg": signed_in(owner_only),
    "/api/courses/bookings/{booking_id}/calendar.ics": signed_in(owner_only),
    "/api/courses/courses": public,
    "/api/machines/labs": public,
    "/api/machines/labs/{slug}": public,
    "/api/machines/": public,
    "/api/machines/live": signed_in(biic_staff),  # asked with ?lab=biic
    "/api/machines/usage": signed_in(biic_staff),
    "/api/booking/machines/{lab}/{machine}/availability": public,
    "/api/booking/reservations/mine": signed_in(everyone),
    "/api/booking/reservations/{reservation_id}": signed_in(owner_only),
    "/api/booking/reservations/{reservation_id}/ticket.svg": signed_in(owner_only),
    "/api/booking/reservations/{reservation_id}/calendar.ics": signed_in(owner_only),
    "/api/booking/search": signed_in(certified_for_laser),
    "/api/booking/certifications/mine": signed_in(everyone),
    "/api/booking/labs/{lab}/timeline": signed_in(biic_staff),
    "/api/booking/labs/{lab}/door": signed_in(biic_staff),
    "/api/booking/checkin/refused": signed_in(biic_staff),
    "/api/reports/monthly": signed_in(biic_staff),
    "/api/reports/monthly/file": signed_in(biic_staff),
}


def path_values(w: World) -> dict:
    """What fills each path parameter: BIIC's objects, or those of the learner who owns them."""
    return {
        "lab": w.biic.slug, "machine": w.laser.slug, "session_id": w.session.pk, "booking_id": w.seat.pk,
        "reservation_id": w.reservation.pk, "course_id": w.course.pk, "token_id": w.token.pk,
        "certification_id": w.certification.pk, "alert_id": w.alert.pk, "secret": w.owner.feed_secret,
        "slug": w.biic.slug, "user_id": w.owner.pk, "purpose": "reminders", "action": "withdraw",
        "consent_id": w.school_consent.pk,
    }


PATH_OVERRIDES = {
    "courses/inductions/<int:session_id>/": {"session_id": lambda w: w.induction.pk},
    "courses/calendar/courses/<slug:slug>.ics": {"slug": lambda w: w.course.slug},
}


def query_values(w: World) -> dict:
    """Query parameters an endpoint requires, and `lab` (BIIC) wherever it takes one."""
    today = timezone.localdate().isoformat()
    return {"lab": w.biic.slug, "machine_type": w.laser.machine_type.slug, "date_from": today, "date_to": today,
            "month": f"{reports.last_month():%Y-%m}"}


def page_routes(patterns=None, prefix=""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if not route.lstrip("^").startswith(NOT_WALKED):
                yield from page_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and not route.lstrip("^").startswith(NOT_WALKED) and route not in SIGNED:
            yield route


def fill(route: str, values: dict, overrides: dict, w: World) -> str:
    def value(match):
        name = match.group(1)
        if name in overrides:
            return str(overrides[name](w))
        if name not in values:
            raise KeyError(name)
        return str(values[name])
    return PARAM.sub(value, route)


def outcome(response, *, api: bool):
    """A page sends an anonymous visitor to log in; the API answers 401, which the table calls the same."""
    status = response.status_code
    if status == 401 and api:
        return LOGIN
    if status == 302 and not api and response["Location"].startswith("/accounts/login/"):
        return LOGIN
    if status in (301, 302) and not api:
        return REDIRECT
    return status


def clients(w: World) -> dict:
    made = {}
    for role, user in w.users.items():
        client = Client()
        if user.is_authenticated:
            client.force_login(user)
        made[role] = client
    return made


def learner_marks(w: World) -> dict:
    """What of BIIC's learner must not reach anyone outside BIIC's staff."""
    return {"name": w.owner.full_name, "e-mail": w.owner.email}


def api_get_paths(client) -> dict:
    schema = client.get("/api/openapi.json").json()
    return {path: operations["get"] for path, operations in schema["paths"].items() if "get" in operations}


def unlisted(pages, endpoints) -> list[str]:
    """Pages and endpoints served without an expectation, and expectations of what is no longer served."""
    return ([f"page /{route}: a new page needs its expected access per role in PAGES"
             for route in pages if route not in PAGES]
            + [f"endpoint GET {path}: a new endpoint needs its expected access per role in API"
               for path in endpoints if path not in API]
            + [f"{entry}: in the table but no longer served"
               for entry in sorted(set(PAGES) - set(pages)) + sorted(set(API) - set(endpoints))])


# --- the walk ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_every_page_and_endpoint_answers_every_role_as_the_policy_says(world):
    w = world
    values = path_values(w)
    queries = query_values(w)
    by_role = clients(w)
    mismatches, leaks, covered = [], [], dict.fromkeys(w.users, 0)
    bearer = {role: ApiToken.issue(user, "role walk")[1] for role, user in w.users.items() if user.is_authenticated}

    def check(kind, address, expect, query, *, api, capability=False, door=False):
        for role, user in w.users.items():
            client = by_role[role]
            response = client.get(address, query)
            got = outcome(response, api=api)
            wanted = expect(w, user)
            if wanted is None:  # the same answer as for an anonymous visitor
                wanted = outcome(by_role["anonymous"].get(address, query), api=api)
            covered[role] += 1
            if got != wanted:
                mismatches.append(f"{kind} {address} as {role}: expected {wanted}, got {got}")
            if api and role in bearer:
                # An integration with the role's personal API token gets what the browser gets.
                by_token = outcome(Client().get(address, query, HTTP_AUTHORIZATION=f"Bearer {bearer[role]}"), api=True)
                if by_token != wanted:
                    mismatches.append(f"{kind} {address} as {role} with an API token: "
                                      f"expected {wanted}, got {by_token}")
            if got != 200 or capability or user == w.owner:
                continue
            body = response.content.decode(errors="replace")
            if not policy.staffs_lab(user, w.biic):
                # Nobody outside BIIC's staff reads BIIC's learner: not a visitor, not another learner,
                # not another lab's technician.
                for what, mark in learner_marks(w).items():
                    if mark in body:
                        leaks.append(f"{kind} {address} shows {role} the {what} of BIIC's learner")
            if user.is_authenticated and user.is_technician and not policy.sees_contact_details(user):
                for email in (w.owner.email, w.users["other learner"].email):
                    if email in body:
                        leaks.append(f"{kind} {address} shows {role} the learner e-mail {email}")
                for phone in (() if door else (OWNER_PHONE, OTHER_PHONE)):
                    if phone in body:
                        leaks.append(f"{kind} {address} shows {role} the learner phone {phone}")

    pages = list(page_routes())
    endpoints = api_get_paths(by_role["anonymous"])
    unknown = unlisted(pages, endpoints)
    for route in pages:
        if route not in PAGES:
            continue
        try:
            address = "/" + fill(route, values, PATH_OVERRIDES.get(route, {}), w)
        except KeyError as missing:
            unknown.append(f"page /{route}: no object of BIIC fills <{missing.args[0]}>")
            continue
        check("page", address, PAGES[route], PAGE_QUERIES.get(route, lambda w: {})(w), api=False,
              capability="/" + route in CAPABILITY, door="/" + route in DOOR)

    for path, operation in endpoints.items():
        if path not in API:
            continue
        try:
            address = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        except KeyError as missing:
            unknown.append(f"endpoint GET {path}: no object of BIIC fills {{{missing.args[0]}}}")
            continue
        query = {p["name"]: queries[p["name"]] for p in operation.get("parameters", ())
                 if p["in"] == "query" and (p.get("required") or p["name"] == "lab") and p["name"] in queries}
        check("endpoint", address, API[path], query, api=True, door=path in DOOR)

    problems = unknown + mismatches + leaks
    assert not problems, f"{len(problems)} problems in the role walk:\n" + "\n".join(problems)
    assert len(pages) == len(PAGES) and len(endpoints) == len(API)
    assert set(covered.values()) == {len(PAGES) + len(API)}


def test_a_page_or_endpoint_without_expectations_fails_the_walk_by_name(monkeypatch, client):
    pages, endpoints = list(page_routes()), api_get_paths(client)
    assert unlisted(pages, endpoints) == []
    monkeypatch.delitem(PAGES, "courses/my/")
    monkeypatch.delitem(API, "/api/booking/search")
    assert unlisted(pages, endpoints) == [
        "page /courses/my/: a new page needs its expected access per role in PAGES",
        "endpoint GET /api/booking/search: a new endpoint needs its expected access per role in API"]


# --- the leaks of issue 13, kept fixed ------------------------------------------------------------

@pytest.mark.django_db
def test_a_technician_of_another_lab_learns_nothing_of_biics_learners_at_the_door(world):
    w = world
    tdmu_technician = Client()
    tdmu_technician.force_login(w.users["TDMU technician"])
    before = CheckInRecord.objects.count()

    # Manual check-in by booking id, at one's own door, of a BIIC booking (already checked in or not).
    for kind, pk in (("seat", w.seat.pk), ("reservation", w.reservation.pk)):
        response = tdmu_technician.post("/api/booking/checkin/manual", {"lab": w.tdmu.slug, "kind": kind, "id": pk},
                                        content_type="application/json")
        assert response.status_code == 404, kind
        assert OWNER_NAME not in response.content.decode()
    assert CheckInRecord.objects.count() == before

    # A BIIC ticket already used at BIIC, shown at TDMU's door.
    w.reservation.status, w.reservation.checked_in_at = ReservationStatus.CHECKED_IN, timezone.now()
    w.reservation.save()
    token = tickets.sign(tickets.RESERVATION, w.reservation.ticket_code)
    body = tdmu_technician.post("/api/booking/checkin", {"token": token, "lab": w.tdmu.slug},
                                content_type="application/json").json()
    assert (body["code"], body["person"], body["what"]) == ("wrong_lab", "", "")

    # The certification search for "@" lists no address of the network to any technician.
    for role in ("BIIC technician", "TDMU technician"):
        client = Client()
        client.force_login(w.users[role])
        page = client.get("/booking/certifications/", {"q": "@"}).content.decode()
        assert OWNER_EMAIL not in page and OTHER_EMAIL not in page, role
        if role == "TDMU technician":
            assert OWNER_NAME not in client.get("/booking/certifications/", {"q": "Chủ Riêng"}).content.decode()


# --- the menu ------------------------------------------------------------------------------------

NAV = re.compile(r'<nav aria-label="[^"]*">(.*?)</nav>', re.S)
HREF = re.compile(r'<a href="([^"]+)"')


@pytest.mark.django_db
def test_the_menu_links_only_to_pages_the_user_may_open(world):
    refused = []
    for role, client in clients(world).items():
        page = client.get("/courses/").content.decode()
        navs = NAV.findall(page)
        assert navs, f"no main navigation on /courses/ for {role}"
        links = HREF.findall(navs[0])
        assert links, role
        for href in links:
            response = client.get(href)
            if response.status_code != 200:
                refused.append(f"{role}: menu links {href}, which answers {response.status_code}")
    assert not refused, "\n".join(refused)


# --- found by the walk ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_technician_not_yet_given_a_lab_has_no_inductions_to_mark(world):
    newcomer = Client()
    newcomer.force_login(factories.TechnicianFactory(full_name="Kỹ Thuật Mới"))
    assert newcomer.get("/courses/inductions/").status_code == 403
    assert newcomer.get(f"/courses/inductions/{world.induction.pk}/").status_code == 403


@pytest.mark.django_db
def test_the_admin_opens_to_whom_the_policy_shows_it(world):
    answers = []
    for role, client in clients(world).items():
        response = client.get("/admin/")
        got = 200 if response.status_code == 200 else response.status_code
        wanted = 200 if policy.may_open_admin(world.users[role]) else 302  # to the admin's login
        if got != wanted:
            answers.append(f"/admin/ as {role}: expected {wanted}, got {got}")
    assert not answers, "\n".join(answers)
