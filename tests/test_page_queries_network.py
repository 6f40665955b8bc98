"""The network's pages and lists cost the same number of queries for one item as for many: labs and their
machines, a lab's machines with their state, alerts and maintenance, rejected telemetry, usage, API tokens, a
school's class, a learner's data export and the year's targets.

Each test reads a page with one item, adds more (each with every related row the page shows), reads it again
and compares the counts: a query per row (an N+1) makes the second count larger and fails here.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fablab_ops.courses.models import SeatStatus
from tests import factories
from tests.conftest import client_for
from tests.query_support import MANY, activity_in, same_cost

# --- labs and machines ----------------------------------------------------------------------------------


def labs_with_machines(n, technician=None):
    """Labs with their machines (each of its own type) and opening hours; the technician staffs every other one."""
    for i in range(n):
        lab = factories.LabFactory()
        for _ in range(2):
            factories.MachineFactory(lab=lab)
        if technician is not None and i % 2 == 0:
            lab.technicians.add(technician)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["learner", "technician", "coordinator"])
def test_the_labs_and_their_machines(request, lab, role):
    user = request.getfixturevalue(role)
    factories.MachineFactory(lab=lab)
    staff = user if role == "technician" else None
    same_cost(client_for(user), "/machines/", lambda: labs_with_machines(MANY, staff))


@pytest.mark.django_db
def test_the_labs_api(lab, learner):
    same_cost(client_for(learner), "/api/machines/labs", lambda: labs_with_machines(MANY))


@pytest.mark.django_db
def test_the_machines_api(lab, learner):
    factories.MachineFactory(lab=lab)
    same_cost(client_for(learner), "/api/machines/", lambda: labs_with_machines(MANY))


def machines_in_hand(lab, kind, n, technician):
    """Machines as the lab's page shows them: each running, held by someone, with an open alert a technician took
    in hand, one closed this week, maintenance planned and a maintenance done before."""
    from fablab_ops.booking.models import MachineDesiredState
    from fablab_ops.machines.models import AlertKind, MachineAlert, MachineLiveStatus, MaintenanceLog, UsageSession

    now = timezone.now()
    for _ in range(n):
        machine = factories.MachineFactory(lab=lab, machine_type=kind, has_interlock=True)
        MachineLiveStatus.objects.create(machine=machine, online=True, state="running", last_seen_at=now,
                                         desired_applied_v=1)
        MaintenanceLog.objects.create(machine=machine, done_at=now - timedelta(days=30), by=technician,
                                      note="Vệ sinh gương", running_hours=120)
        UsageSession.objects.create(machine=machine, start=now - timedelta(hours=1))
        MachineAlert.objects.create(machine=machine, kind=AlertKind.ERROR, raised_at=now, detail="E42",
                                    acknowledged_at=now, acknowledged_by=technician,
                                    acknowledgement_note="Đang kiểm tra nguồn")
        MachineAlert.objects.create(machine=machine, kind=AlertKind.OFFLINE, raised_at=now - timedelta(days=2),
                                    resolved_at=now - timedelta(days=1), resolved_by=technician,
                                    resolution_note="Cắm lại dây mạng", acknowledged_at=now - timedelta(days=2),
                                    acknowledged_by=technician)
        factories.MaintenanceWindowFactory(machine=machine, created_by=technician)
        # After the window, whose planning works the machine's desired state out again.
        MachineDesiredState.objects.update_or_create(machine=machine, defaults={
            "version": 9, "published_version": 8, "holder_name": "Võ Minh Khoa",
            "holder_user": factories.LearnerFactory(), "until": now + timedelta(hours=1)})


@pytest.mark.django_db
def test_the_lab_machines_page(lab, technician):
    kind = factories.MachineTypeFactory()
    machines_in_hand(lab, kind, 1, technician)
    same_cost(client_for(technician), f"/machines/labs/{lab.slug}/",
              lambda: machines_in_hand(lab, kind, MANY, technician))


def rejected_messages(lab, n, start=0):
    from fablab_ops.machines.models import QuarantinedMessage

    now = timezone.now()
    QuarantinedMessage.objects.bulk_create([
        QuarantinedMessage(received_at=now - timedelta(seconds=i), topic=f"fablab/{lab.slug}/machine-{i}/state",
                           payload=f'{{"state": "running", "seq": {i}}}', payload_size=30, reason=f"reason_{i}",
                           detail="Expecting value")
        for i in range(start, start + n)])


@pytest.mark.django_db
def test_the_rejected_telemetry_of_a_lab(lab, technician):
    rejected_messages(lab, 1)
    same_cost(client_for(technician), f"/machines/labs/{lab.slug}/quarantine/",
              lambda: rejected_messages(lab, MANY, start=1))


def usage(lab, n, day):
    """Machines of the lab that ran on `day` and were booked that day."""
    from fablab_ops.machines.models import MachineUsageDay

    start = timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time())) + timedelta(hours=9)
    for _ in range(n):
        machine = factories.MachineFactory(lab=lab)
        MachineUsageDay.objects.create(machine=machine, day=day, running_seconds=5400)
        factories.UsageSessionFactory(machine=machine, start=start, end=start + timedelta(hours=1, minutes=30))
        factories.ReservationFactory(machine=machine, start=start, end=start + timedelta(hours=2))


@pytest.mark.django_db
def test_the_usage_summary(lab, technician):
    day = timezone.localdate() - timedelta(days=3)
    usage(lab, 1, day)
    same_cost(client_for(technician), "/api/machines/usage", lambda: usage(lab, MANY, day),
              {"date_from": f"{day - timedelta(days=7):%Y-%m-%d}", "date_to": f"{timezone.localdate():%Y-%m-%d}"})


# --- accounts -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_my_api_tokens(learner):
    def issue(n):
        for _ in range(n):
            factories.ApiTokenFactory(user=learner, last_used_at=timezone.now())

    issue(1)
    same_cost(client_for(learner), "/accounts/tokens/", lambda: issue(MANY))


@pytest.mark.django_db
def test_who_is_asking(technician):
    same_cost(client_for(technician), "/api/accounts/me", lambda: labs_with_machines(MANY, technician))


# --- personal data ----------------------------------------------------------------------------------------------


def a_class_of_pupils(lab, coordinator, n):
    """A school's consent with its pupils, and upcoming sessions (each of its own course) to book them into."""
    from fablab_ops.accounts.models import Role, User
    from fablab_ops.privacy.models import Consent, PersonalData, Purpose, SchoolConsent

    now = timezone.now()
    number = SchoolConsent.objects.count() + 1
    consent = SchoolConsent.objects.create(
        school=f"Trường THCS số {number}", reference=f"{number}/CV", document_date=timezone.localdate(),
        signatory="Nguyễn Văn Hiệu, Hiệu trưởng", purposes=[Purpose.BOOKINGS], recorded_by=coordinator,
        recorded_at=now, scan=f"scan-{number}.pdf")
    start = now.replace(microsecond=0) + timedelta(days=10)
    for i in range(n):
        pupil = User.objects.create(email=f"pupil-{number}-{i}@no-email.invalid", full_name=f"Học Sinh {number} {i}",
                                    role=Role.LEARNER)
        PersonalData.objects.create(user=pupil, date_of_birth=timezone.localdate() - timedelta(days=365 * 12),
                                    school_consent=consent, school_class="7A")
        Consent.objects.create(user=pupil, purpose=Purpose.BOOKINGS, granted=True, notice_version="2026-11", at=now,
                               channel="school", by_guardian=True)
        session = factories.SessionFactory(course=factories.CourseFactory(lab=lab), lab=lab,
                                           start=start + timedelta(hours=number * 100 + i))
        factories.SeatBookingFactory(session=session, learner=pupil)


@pytest.mark.django_db
def test_the_school_class_page(lab, coordinator):
    a_class_of_pupils(lab, coordinator, 1)

    def more():
        for _ in range(MANY):
            a_class_of_pupils(lab, coordinator, 1)
        a_class_of_pupils(lab, coordinator, MANY)

    same_cost(client_for(coordinator), "/privacy/schools/", more)


def posted(client, url, data) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, data)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured)


@pytest.mark.django_db
def test_the_preview_of_a_class_the_school_sent_before(lab, coordinator):
    """Sending the same class again: every pupil is found, with the seats each already holds."""
    from fablab_ops.privacy import schools

    sessions = [factories.SessionFactory(course=factories.CourseFactory(lab=lab), lab=lab) for _ in range(2)]
    today = timezone.localdate()

    def pupils(n):
        born = today.replace(year=today.year - 12, day=1)
        return "".join(f"Học Sinh {chr(ord('A') + i)}; {born:%d/%m/%Y}; 7A\n" for i in range(n))

    def form(n):
        return {"school": "Trường THCS Chánh Nghĩa", "reference": "123/CV", "document_date": f"{today:%Y-%m-%d}",
                "signatory": "Nguyễn Văn Hiệu", "purposes": ["bookings"], "sessions": [s.pk for s in sessions],
                "pupils": pupils(n), "children_agreed": "on", "preview": "1"}

    schools.register(by=coordinator, school="Trường THCS Chánh Nghĩa", reference="123/CV", document_date=today,
                     signatory="Nguyễn Văn Hiệu", purposes=["bookings"], pupils_text=pupils(MANY + 1),
                     sessions=sessions, children_agreed=True)
    client = client_for(coordinator)
    one, many = posted(client, "/privacy/schools/", form(1)), posted(client, "/privacy/schools/", form(MANY + 1))
    assert many == one, f"preview: {one} queries for one pupil, {many} for {MANY + 1}"


def a_learners_history(learner, lab, technician, n):
    """What the export lists, n of each: bookings checked in at the door, reservations used, certifications,
    consents, e-mails, usage sessions and API tokens."""
    from fablab_ops.accounts.models import Notification
    from fablab_ops.booking.models import CheckInOutcome, CheckInRecord
    from fablab_ops.privacy.models import Consent, Purpose

    now = timezone.now()
    for _ in range(n):
        course = factories.CourseFactory(lab=factories.LabFactory())
        session = factories.SessionFactory(course=course, start=now - timedelta(days=3))
        booking = factories.SeatBookingFactory(session=session, learner=learner, status=SeatStatus.ATTENDED,
                                               checked_in_at=now - timedelta(days=3))
        machine = factories.MachineFactory(lab=factories.LabFactory())
        reservation = factories.ReservationFactory(machine=machine, user=learner, start=now - timedelta(days=2),
                                                   end=now - timedelta(days=2) + timedelta(hours=1))
        for kwargs in ({"seat_booking": booking, "lab": course.lab}, {"reservation": reservation, "lab": machine.lab}):
            CheckInRecord.objects.create(at=now, by=technician, outcome=CheckInOutcome.CHECKED_IN, method="qr",
                                         **kwargs)
        factories.CertificationFactory(user=learner)
        factories.UsageSessionFactory(machine=machine, user=learner, reservation=reservation)
        Consent.objects.create(user=learner, purpose=Purpose.REMINDERS, granted=True, notice_version="2026-11",
                               at=now, channel="profile")
        Notification.objects.create(user=learner, kind="booking_confirmed", dedup_key=f"export-{booking.pk}",
                                    subject="Đã xác nhận chỗ", body="…")
        factories.ApiTokenFactory(user=learner)


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/privacy/export/", "/privacy/export.json"])
def test_my_data_export(lab, learner, technician, url):
    a_learners_history(learner, lab, technician, 1)
    same_cost(client_for(learner), url, lambda: a_learners_history(learner, lab, technician, MANY))


# --- reports -------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_year_targets(lab, coordinator):
    from fablab_ops.reports.models import YearTarget

    year = timezone.localdate().year

    def labs_with_targets(n):
        for _ in range(n):
            YearTarget.objects.create(year=year, lab=factories.LabFactory(), classes=10, participant_turns=200,
                                      machine_hours=500)

    labs_with_targets(1)
    same_cost(client_for(coordinator), "/reports/targets/", lambda: labs_with_targets(MANY), {"year": year})


@pytest.mark.django_db
def test_the_monthly_report_api(lab, coordinator):
    from fablab_ops.reports import services as reports

    month = reports.last_month()
    activity_in(month, 1)
    same_cost(client_for(coordinator), "/api/reports/monthly", lambda: activity_in(month, MANY),
              {"month": f"{month:%Y-%m}"})
