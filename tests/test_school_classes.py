"""A coordinator registers a class of pupils from a school, on the school's written consent: a preview with
errors per line, the pupils' accounts (no e-mail of their own), consent rows with channel "school", seats
through the booking rules, and a re-submission that books nobody twice."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from fablab_ops import notifications
from fablab_ops.accounts.models import Notification, User
from fablab_ops.courses.models import SeatStatus
from fablab_ops.privacy import services as privacy
from fablab_ops.privacy.models import AccessLogEntry, Consent, PersonalData, SchoolConsent
from tests import factories
from tests.conftest import client_for


def born(age: int) -> str:
    """A date of birth, dd/mm/yyyy, of someone `age` years old today (their birthday was a month ago)."""
    today = timezone.localdate()
    return (today.replace(year=today.year - age, day=min(today.day, 28)) - timedelta(days=30)).strftime("%d/%m/%Y")


@pytest.fixture
def summer(lab):
    return factories.SessionFactory(course__lab=lab, course__title_vi="Trại hè sáng tạo", capacity=3, lab=lab)


def form(summer, pupils, **fields):
    return {"school": "Trường THCS Chánh Nghĩa", "reference": "123/CV-THCSCN", "document_date": "2026-11-20",
            "signatory": "Nguyễn Văn Hiệu, Hiệu trưởng", "purposes": ["bookings"], "sessions": [summer.pk],
            "pupils": pupils, "children_agreed": "on", **fields}


PUPILS = "Họ tên; Ngày sinh; Lớp\nLê Minh An; {a}; 7A\nPhạm Thu Bình; {b}; 7A\n"


@pytest.mark.django_db
def test_the_coordinator_previews_the_class_with_errors_per_line_and_nothing_is_saved(coordinator_client, summer):
    pupils = (PUPILS.format(a=born(12), b=born(12)) + "Trần Văn Cường; 31/02/2014; 7B\n; 01/01/2014; 7B\n"
              + f"Lê Minh An; {born(12)}; 7A\nĐỗ Thị Dung; {born(17)}; 11A\n")
    response = coordinator_client.post("/privacy/schools/", {**form(summer, pupils), "preview": "1"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Ngày sinh không hợp lệ: 31/02/2014" in page
    assert "Thiếu họ tên học sinh" in page
    assert "Trùng với dòng 2." in page
    assert "Từ 16 tuổi, học sinh tự đồng ý" in page
    assert "Lưu và đăng ký chỗ" not in page  # nothing to save while a line is wrong
    assert not User.objects.filter(organisation="Trường THCS Chánh Nghĩa").exists()
    assert not SchoolConsent.objects.exists()

    response = coordinator_client.post("/privacy/schools/", {**form(summer, PUPILS.format(a=born(12), b=born(9))),
                                                             "preview": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Sẽ tạo 2 học sinh mới và đăng ký 2 chỗ" in page and "Lưu và đăng ký chỗ" in page
    assert not summer.bookings.exists()


@pytest.mark.django_db
def test_saving_creates_pupils_without_email_with_the_schools_consent_and_books_their_seats(
        coordinator, coordinator_client, summer):
    mail.outbox.clear()
    scan = SimpleUploadedFile("cong-van.pdf", b"%PDF-1.4 van ban", content_type="application/pdf")
    response = coordinator_client.post("/privacy/schools/", {**form(summer, PUPILS.format(a=born(12), b=born(6))),
                                                             "save": "1", "scan": scan})
    assert response.status_code == 200
    assert "2 chỗ đã xác nhận, 0 vào danh sách chờ, 0 đã có từ trước." in response.content.decode()

    document = SchoolConsent.objects.get()
    assert (document.school, document.reference, document.document_date, document.recorded_by) == (
        "Trường THCS Chánh Nghĩa", "123/CV-THCSCN", date(2026, 11, 20), coordinator)
    an = User.objects.get(full_name="Lê Minh An")
    assert an.email.endswith("@no-email.invalid") and not an.has_usable_password()
    data = PersonalData.objects.get(user=an)
    assert (data.school_consent, data.school_class) == (document, "7A")
    assert data.child_agreed_at is not None  # 12: asked too
    assert PersonalData.objects.get(user__full_name="Phạm Thu Bình").child_agreed_at is None  # 6: the school alone
    consent = Consent.objects.get(user=an, purpose="bookings")
    assert consent.granted and consent.channel == "school" and consent.notice_version == "2026-11"
    assert not Consent.objects.get(user=an, purpose="reminders").granted  # not among the stated purposes
    assert not privacy.awaits_guardian(an)
    assert set(summer.bookings.values_list("status", flat=True)) == {SeatStatus.CONFIRMED}
    # Nobody is mailed: the pupils have no address of their own.
    notifications.sweep()
    assert mail.outbox == [] and not privacy.may_send(an, "seat_confirmed")
    assert set(Notification.objects.filter(user=an).values_list("state", flat=True)) == {"failed"}

    # The scan is kept out of the public media, readable by coordinators only.
    assert "/media/" not in document.scan.path and document.scan.read() == b"%PDF-1.4 van ban"
    assert coordinator_client.get(f"/privacy/schools/consents/{document.pk}/scan/").status_code == 200
    assert client_for(factories.TechnicianFactory()).get(
        f"/privacy/schools/consents/{document.pk}/scan/").status_code == 404
    assert Client().get(f"/privacy/schools/consents/{document.pk}/scan/").status_code == 302
    # The admin lists the document with its pupils, and links the scan through the same checked page.
    page = client_for(factories.AdminFactory()).get(f"/admin/privacy/schoolconsent/{document.pk}/change/")
    assert f"/privacy/schools/consents/{document.pk}/scan/" in page.content.decode()
    assert "2</td>" in client_for(factories.AdminFactory()).get("/admin/privacy/schoolconsent/").content.decode()


@pytest.mark.django_db
def test_submitting_the_same_class_again_books_nobody_twice(coordinator_client, summer, lab):
    pupils = PUPILS.format(a=born(12), b=born(12))
    coordinator_client.post("/privacy/schools/", {**form(summer, pupils), "save": "1"})
    second = factories.SessionFactory(course__lab=lab, lab=lab, start=summer.start + timedelta(days=1))
    # Again, with one more pupil, an extra session, names typed a little differently.
    again = pupils.replace("Lê Minh An", "lê  minh an") + f"Võ Gia Huy; {born(11)}; 7B\n"
    preview = coordinator_client.post("/privacy/schools/", {**form(summer, again, sessions=[summer.pk, second.pk]),
                                                            "preview": "1"}).content.decode()
    assert "Sẽ tạo 1 học sinh mới và đăng ký 4 chỗ" in preview and "Đã có từ trước" in preview
    response = coordinator_client.post("/privacy/schools/", {**form(summer, again, sessions=[summer.pk, second.pk]),
                                                             "save": "1"})
    assert "4 chỗ đã xác nhận, 0 vào danh sách chờ, 2 đã có từ trước." in response.content.decode()
    assert User.objects.filter(organisation="Trường THCS Chánh Nghĩa").count() == 3
    assert summer.bookings.exclude(status="cancelled").count() == 3
    assert second.bookings.exclude(status="cancelled").count() == 3
    assert SchoolConsent.objects.count() == 1


@pytest.mark.django_db
def test_a_full_session_puts_the_rest_of_the_class_on_the_waiting_list(coordinator_client, summer):
    factories.SeatBookingFactory(session=summer)
    pupils = PUPILS.format(a=born(12), b=born(12)) + f"Võ Gia Huy; {born(11)}; 7B\n"
    response = coordinator_client.post("/privacy/schools/", {**form(summer, pupils), "save": "1"})
    assert "2 chỗ đã xác nhận, 1 vào danh sách chờ, 0 đã có từ trước." in response.content.decode()
    assert summer.bookings.get(learner__full_name="Võ Gia Huy").status == SeatStatus.WAITLISTED


@pytest.mark.django_db
def test_a_csv_upload_is_read_like_a_pasted_list(coordinator_client, summer):
    csv_file = SimpleUploadedFile("lop-7a.csv", ("\ufeffHọ tên,Ngày sinh,Lớp\nLê Minh An," + born(12) + ",7A\n")
                                  .encode("utf-8"), content_type="text/csv")
    response = coordinator_client.post("/privacy/schools/", {**form(summer, ""), "pupils_file": csv_file,
                                                             "preview": "1"})
    assert "Sẽ tạo 1 học sinh mới và đăng ký 1 chỗ" in response.content.decode()


@pytest.mark.django_db
def test_pupils_from_seven_need_their_own_agreement_recorded(coordinator_client, summer):
    response = coordinator_client.post("/privacy/schools/", {**form(summer, PUPILS.format(a=born(12), b=born(12)),
                                                                    children_agreed=""), "save": "1"})
    assert response.status_code == 400
    assert "Từ 7 tuổi, học sinh cũng cần tự đồng ý" in response.content.decode()
    assert not User.objects.filter(organisation="Trường THCS Chánh Nghĩa").exists()


@pytest.mark.django_db
def test_only_coordinators_register_school_classes(technician_client, learner_client, summer):
    for client in (technician_client, learner_client):
        assert client.get("/privacy/schools/").status_code == 403
        client.post("/privacy/schools/", {**form(summer, PUPILS.format(a=born(12), b=born(12))), "save": "1"})
    assert not SchoolConsent.objects.exists()


@pytest.mark.django_db
def test_the_school_asks_for_a_pupils_data_to_be_erased_and_a_coordinator_does_it(coordinator, coordinator_client,
                                                                                  summer, technician_client):
    coordinator_client.post("/privacy/schools/", {**form(summer, PUPILS.format(a=born(12), b=born(12))), "save": "1"})
    an = User.objects.get(full_name="Lê Minh An")
    page = coordinator_client.get(f"/privacy/learners/{an.pk}/export/").content.decode()
    assert "Xóa dữ liệu theo yêu cầu" in page and "Trường THCS Chánh Nghĩa" in page and "7A" in page

    assert technician_client.post(f"/privacy/learners/{an.pk}/erase/", {"confirm": "yes"}).status_code == 404
    coordinator_client.post(f"/privacy/learners/{an.pk}/erase/")  # not confirmed: nothing happens
    assert User.objects.get(pk=an.pk).full_name == "Lê Minh An"
    coordinator_client.post(f"/privacy/learners/{an.pk}/erase/", {"confirm": "yes"})
    an.refresh_from_db()
    assert (an.full_name, an.is_active, an.personal_data.school_class, an.personal_data.date_of_birth) == (
        "—", False, "", None)
    assert summer.bookings.get(learner=an).status == SeatStatus.CANCELLED
    assert AccessLogEntry.objects.filter(viewer=coordinator, subject=an, what="erasure").exists()
