"""Coordinators' daily work in the product's own pages: courses, a session's roster and waiting list, the
sign-in sheet, messages to learners, cancelling with a reason, and the year's targets."""

import io
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from fablab_ops.accounts.models import Notification
from fablab_ops.courses import services
from fablab_ops.courses.models import Course, CourseKind, SeatStatus, Session, SessionStatus
from fablab_ops.notifications import send_due
from fablab_ops.reports import services as reports
from fablab_ops.reports.models import YearTarget
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def small_class(lab):
    course = factories.CourseFactory(lab=lab, title_vi="Lập trình Arduino ứng dụng", default_capacity=2,
                                     min_capacity=1, max_capacity=10)
    return factories.SessionFactory(course=course, capacity=2)


def learners(*names):
    return [factories.LearnerFactory(full_name=name) for name in names]


@pytest.mark.django_db
def test_a_coordinator_creates_a_course_and_schedules_a_session(coordinator_client, lab):
    created = coordinator_client.post("/courses/manage/courses/new/", {
        "kind": CourseKind.ARDUINO, "title_vi": "Điện tử cơ bản cho học sinh", "title_en": "Basic electronics",
        "description": "Làm quen với mạch điện.", "description_en": "Getting to know circuits.",
        "prerequisites": "Biết dùng máy tính", "what_to_bring": "Máy tính xách tay", "instructor": "Trần Minh Khoa",
        "lab": lab.pk, "default_capacity": 16, "min_capacity": 8, "max_capacity": 20, "min_learners": 0,
        "decision_hours_before": 48, "is_published": "on",
    })
    assert created.status_code == 302, created.content.decode()
    course = Course.objects.get(title_vi="Điện tử cơ bản cho học sinh")
    assert (course.slug, course.instructor, course.what_to_bring) == (
        "dien-tu-co-ban-cho-hoc-sinh", "Trần Minh Khoa", "Máy tính xách tay")
    assert "Điện tử cơ bản cho học sinh" in coordinator_client.get("/courses/manage/courses/").content.decode()

    # Capacities out of order are refused by the rule, not saved.
    refused = coordinator_client.post(f"/courses/manage/courses/{course.pk}/", {
        "kind": CourseKind.ARDUINO, "title_vi": course.title_vi, "slug": course.slug, "lab": lab.pk,
        "default_capacity": 30, "min_capacity": 8, "max_capacity": 20, "min_learners": 0,
        "decision_hours_before": 48})
    assert refused.status_code == 200 and "tối thiểu ≤ mặc định ≤ tối đa" in refused.content.decode()

    day = timezone.localdate() + timedelta(days=10)
    scheduled = coordinator_client.post("/courses/manage/schedule/one/", {
        "course": course.pk, "day": day.isoformat(), "start_time": "08:30", "end_time": "11:30"})
    session = Session.objects.get(course=course)
    assert scheduled.status_code == 302 and scheduled["Location"] == f"/courses/manage/sessions/{session.pk}/roster/"
    assert (session.capacity, session.lab, timezone.localtime(session.start).strftime("%d/%m %H:%M")) == (
        16, lab, f"{day:%d/%m} 08:30")
    page = client_for(factories.LearnerFactory()).get(f"/courses/sessions/{session.pk}/").content.decode()
    assert "Máy tính xách tay" in page and "Trần Minh Khoa" in page


@pytest.mark.django_db
def test_only_coordinators_manage_courses(technician, learner):
    for user in (technician, learner):
        client = client_for(user)
        assert client.get("/courses/manage/courses/new/").status_code == 403
        assert client.post("/courses/manage/courses/new/", {"title_vi": "x"}).status_code == 403
        assert client.get("/reports/targets/").status_code == 403
    assert not Course.objects.exists()


@pytest.mark.django_db
def test_the_roster_lists_attendance_and_the_waiting_list_in_order(small_class, coordinator, technician, other_lab):
    an, binh, chi, dung, em = learners("An Thị Ánh", "Bùi Văn Bình", "Cao Thị Chi", "Đỗ Văn Dũng", "Lê Thị Em")
    for person in (binh, an, dung, chi, em):
        services.book_seat(small_class.pk, person)
    small_class.bookings.filter(learner=binh).update(status=SeatStatus.ATTENDED, checked_in_at=timezone.now())
    services.cancel_booking(small_class.bookings.get(learner=chi).pk, chi)  # Chi leaves the waiting list

    page = client_for(coordinator).get(f"/courses/manage/sessions/{small_class.pk}/roster/").content.decode()
    booked, waiting = page.split('id="booked"')[1].split('id="waiting"')
    assert booked.index("An Thị Ánh") < booked.index("Bùi Văn Bình")
    assert "Có mặt" in booked and "Chưa check-in" in booked
    assert waiting.index("Đỗ Văn Dũng") < waiting.index("Lê Thị Em") and "Cao Thị Chi" not in waiting
    assert an.email in booked and dung.email in waiting  # contact data for coordinators

    # The lab's technician sees names, never contact data; another lab's technician sees nothing.
    page = client_for(technician).get(f"/courses/manage/sessions/{small_class.pk}/roster/").content.decode()
    assert "An Thị Ánh" in page and an.email not in page and an.phone not in page
    outsider = factories.TechnicianFactory(labs=[other_lab])
    assert client_for(outsider).get(f"/courses/manage/sessions/{small_class.pk}/roster/").status_code == 403
    assert client_for(an).get(f"/courses/manage/sessions/{small_class.pk}/roster/").status_code == 403


@pytest.mark.django_db
def test_the_sign_in_sheet_has_one_page_per_session_with_the_learners_names(small_class, coordinator, lab):
    other = factories.SessionFactory(course=small_class.course, start=small_class.start + timedelta(days=14),
                                     end=small_class.end + timedelta(days=14), capacity=2)
    for person in learners("Nguyễn Thị Hồng Nhung", "Trần Đức Lưỡng"):
        services.book_seat(small_class.pk, person)
    waiting = factories.LearnerFactory(full_name="Phạm Văn Chờ Đợi")
    services.book_seat(small_class.pk, waiting)
    services.book_seat(other.pk, factories.LearnerFactory(full_name="Võ Thị Ngọc Ánh"))

    response = client_for(coordinator).get("/courses/manage/sign-in.pdf",
                                           {"session": [small_class.pk, other.pk]})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    assert len(reader.pages) == 2
    first, second = (page.extract_text() for page in reader.pages)
    assert "DANH SÁCH KÝ TÊN" in first and "Chữ ký" in first
    assert "Nguyễn Thị Hồng Nhung" in first and "Trần Đức Lưỡng" in first
    assert "Phạm Văn Chờ Đợi" not in first  # the waiting list does not sign in
    assert "Võ Thị Ngọc Ánh" in second and "Nguyễn Thị Hồng Nhung" not in second
    assert "@" not in first + second  # names only


@pytest.mark.django_db
def test_cancelling_a_session_needs_a_reason_which_every_learner_receives(small_class, coordinator):
    for person in learners("Hà Thị Thu", "Mai Thị Hai", "Lý Văn Chờ"):  # the third one waits
        services.book_seat(small_class.pk, person)
    Notification.objects.all().delete()
    client = client_for(coordinator)
    url = f"/courses/manage/sessions/{small_class.pk}/cancel/"

    confirmation = client.get(url).content.decode()
    told = confirmation.split('id="to-be-told"')[1]
    assert all(name in told for name in ("Hà Thị Thu", "Mai Thị Hai", "Lý Văn Chờ"))
    assert "3 học viên sẽ nhận email" in confirmation

    # The old one-click button on the edit page cancels nothing any more.
    client.post(f"/courses/manage/sessions/{small_class.pk}/", {"cancel_session": "1", "start": "x"})
    without_reason = client.post(url, {"reason": "  "})
    assert without_reason.status_code == 200 and "Cần ghi lý do hủy" in without_reason.content.decode()
    small_class.refresh_from_db()
    assert small_class.status == SessionStatus.SCHEDULED and not Notification.objects.exists()
    api = client.post(f"/api/courses/sessions/{small_class.pk}/cancel", {"reason": ""},
                      content_type="application/json")
    assert (api.status_code, api.json()["code"]) == (400, "reason_required")

    done = client.post(url, {"reason": "Giảng viên bị ốm & phòng lab mất điện"})
    assert done.status_code == 302
    small_class.refresh_from_db()
    assert small_class.status == SessionStatus.CANCELLED
    send_due(limit=100)  # the worker renders what the outbox holds
    mails = Notification.objects.filter(kind="session_cancelled")
    assert {m.user.full_name for m in mails} == {"Hà Thị Thu", "Mai Thị Hai", "Lý Văn Chờ"}
    assert all("Giảng viên bị ốm & phòng lab mất điện" in m.body for m in mails)


@pytest.mark.django_db
def test_a_message_goes_to_each_booked_learner_once(small_class, coordinator):
    for person in learners("Hà Thị Thu", "Mai Thị Hai", "Lý Văn Chờ"):
        services.book_seat(small_class.pk, person)
    Notification.objects.all().delete()
    client = client_for(coordinator)
    url = f"/courses/manage/sessions/{small_class.pk}/message/"
    assert client.get(url).status_code == 200
    form = {"key": str(uuid.uuid4()), "subject": "Đổi phòng học", "body": "Buổi học chuyển sang phòng 204."}
    assert client.post(url, form).status_code == 302
    assert client.post(url, form).status_code == 302  # a double submit sends nothing more
    send_due(limit=100)  # the worker renders what the outbox holds
    mails = Notification.objects.filter(kind="session_message")
    assert sorted(m.user.full_name for m in mails) == ["Hà Thị Thu", "Mai Thị Hai"]
    assert all("Buổi học chuyển sang phòng 204." in m.body and m.subject.startswith("Đổi phòng học")
               for m in mails)
    client.post(url, {**form, "key": str(uuid.uuid4()), "include_waitlist": "on"})
    assert Notification.objects.filter(kind="session_message").count() == 5


@pytest.mark.django_db
def test_the_years_targets_are_set_per_lab_and_for_the_network_and_the_report_reads_them(
        coordinator_client, lab, other_lab):
    year = timezone.localdate().year
    page = coordinator_client.get("/reports/targets/", {"year": year}).content.decode()
    assert "BIIC" in page and "EIU" in page and "Toàn mạng lưới" in page
    form = {"year": year}
    for prefix, numbers in ((f"lab-{lab.pk}", (24, 400, 1200)), (f"lab-{other_lab.pk}", (12, 200, 600)),
                            ("network", (40, 700, 2000))):
        form.update(dict(zip([f"{prefix}-classes", f"{prefix}-participant_turns", f"{prefix}-machine_hours"],
                             numbers, strict=True)))
    assert coordinator_client.post("/reports/targets/", form).status_code == 302
    assert YearTarget.objects.get(year=year, lab=lab).participant_turns == 400
    assert YearTarget.objects.get(year=year, lab__isnull=True).classes == 40
    report = reports.monthly_report(timezone.localdate().replace(day=1))
    by_slug = {row.slug: row for row in report.labs}
    assert by_slug["biic"].progress.target_classes == 24 and by_slug["eiu"].progress.target_turns == 200
    assert report.network.progress.target_classes == 40
    form[f"lab-{lab.pk}-classes"] = "-1"
    assert coordinator_client.post("/reports/targets/", form).status_code == 200
    assert YearTarget.objects.get(year=year, lab=lab).classes == 24


@pytest.mark.django_db
def test_the_menu_shows_coordinators_their_pages(coordinator_client, technician_client, learner_client):
    menu = coordinator_client.get("/courses/").content.decode()
    for url in ("/courses/manage/", "/courses/manage/courses/", "/reports/targets/", "/courses/inductions/"):
        assert f'href="{url}"' in menu
    technician_menu = technician_client.get("/courses/").content.decode()
    assert 'href="/courses/inductions/"' in technician_menu and 'href="/reports/targets/"' not in technician_menu
    learner_menu = learner_client.get("/courses/").content.decode()
    assert 'href="/courses/inductions/"' not in learner_menu and 'href="/courses/manage/"' not in learner_menu
