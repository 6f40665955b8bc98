"""A technician sees the people of their own lab only; certifications are granted by the labs that teach them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.booking import tickets
from fablab_ops.booking.models import Certification, CheckInRecord, ReservationStatus
from fablab_ops.courses.models import SeatStatus
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def tdmu():
    return factories.LabFactory(slug="tdmu-bio", short_name="TDMU", name_vi="Phòng thí nghiệm TDMU")


@pytest.fixture
def biosafety_cabinet(tdmu):
    return factories.MachineFactory(lab=tdmu, slug="cabinet-01", name="Tủ an toàn sinh học",
                                    machine_type=factories.MachineTypeFactory(slug="biosafety-cabinet"))


@pytest.fixture
def stranger_in_tdmu(tdmu):
    """A learner of another lab, checked in at their class there a few minutes ago."""
    start = timezone.now() - timedelta(minutes=20)
    session = factories.SessionFactory(course=factories.CourseFactory(lab=tdmu), start=start,
                                       end=start + timedelta(hours=2))
    learner = factories.LearnerFactory(full_name="Phạm Thị Bí Mật", email="bimat@example.vn")
    return factories.SeatBookingFactory(session=session, learner=learner, status=SeatStatus.ATTENDED,
                                        checked_in_at=start)


@pytest.mark.django_db
def test_manual_check_in_of_another_labs_booking_names_no_one_and_records_nothing(technician, lab,
                                                                                   stranger_in_tdmu):
    before = CheckInRecord.objects.count()
    response = client_for(technician).post("/api/booking/checkin/manual",
                                           {"lab": lab.slug, "kind": "seat", "id": stranger_in_tdmu.pk},
                                           content_type="application/json")
    assert response.status_code == 404
    assert "Bí Mật" not in response.content.decode()
    assert CheckInRecord.objects.count() == before


@pytest.mark.django_db
def test_manual_check_in_of_another_labs_reservation_names_no_one(technician, lab, tdmu, biosafety_cabinet):
    reservation = factories.ReservationFactory(
        machine=biosafety_cabinet, user=factories.LearnerFactory(full_name="Đỗ Văn Riêng Tư"),
        start=timezone.now() - timedelta(minutes=5), status=ReservationStatus.CHECKED_IN,
        checked_in_at=timezone.now() - timedelta(minutes=5))
    response = client_for(technician).post("/api/booking/checkin/manual",
                                           {"lab": lab.slug, "kind": "reservation", "id": reservation.pk},
                                           content_type="application/json")
    assert response.status_code == 404
    assert "Riêng Tư" not in response.content.decode()


@pytest.mark.django_db
def test_a_ticket_used_at_one_lab_shown_at_another_labs_door_is_wrong_lab_without_a_name(technician, lab,
                                                                                         stranger_in_tdmu):
    token = tickets.sign(tickets.SEAT, stranger_in_tdmu.ticket_code)
    response = client_for(technician).post("/api/booking/checkin", {"token": token, "lab": lab.slug},
                                           content_type="application/json")
    body = response.json()
    assert (response.status_code, body["outcome"], body["code"]) == (409, "refused", "wrong_lab")
    assert body["person"] == "" and body["what"] == "" and body["checked_in_at"] is None
    record = CheckInRecord.objects.get(pk=body["record_id"])
    # The refusal is kept at this door, but not tied to the other lab's learner.
    assert (record.lab, record.reason, record.seat_booking) == (lab, "wrong_lab", None)


@pytest.mark.django_db
def test_searching_certifications_for_at_shows_a_technician_no_addresses_of_the_network(technician, lab, tdmu,
                                                                                       biosafety_cabinet):
    for n in range(6):
        factories.CertificationFactory(user=factories.LearnerFactory(email=f"hs{n}@truong.edu.vn"),
                                       machine_type=biosafety_cabinet.machine_type)
    page = client_for(technician).get("/booking/certifications/", {"q": "@"}).content.decode()
    assert "@truong.edu.vn" not in page


@pytest.mark.django_db
def test_a_coordinator_finds_a_learners_certifications_by_email(coordinator, biosafety_cabinet):
    factories.CertificationFactory(user=factories.LearnerFactory(email="lan.nguyen@truong.edu.vn",
                                                                 full_name="Nguyễn Lan"),
                                   machine_type=biosafety_cabinet.machine_type)
    page = client_for(coordinator).get("/booking/certifications/", {"q": "lan.nguyen"}).content.decode()
    assert "Nguyễn Lan" in page


@pytest.mark.django_db
def test_a_technician_may_grant_only_what_their_lab_teaches(technician, learner, tdmu, biosafety_cabinet):
    response = client_for(technician).post("/api/booking/certifications", {
        "user_email": learner.email, "machine_type": "biosafety-cabinet", "reason": "Đã học ở trường",
    }, content_type="application/json")
    assert (response.status_code, response.json()["code"]) == (403, "not_certifier")
    assert not Certification.objects.exists()

    tdmu_technician = factories.TechnicianFactory(labs=[tdmu])
    response = client_for(tdmu_technician).post("/api/booking/certifications", {
        "user_email": learner.email, "machine_type": "biosafety-cabinet", "reason": "Đã học ở trường",
    }, content_type="application/json")
    assert response.status_code == 201


@pytest.mark.django_db
def test_a_technician_may_not_revoke_a_certification_another_lab_teaches(technician, learner, biosafety_cabinet):
    certification = factories.CertificationFactory(user=learner, machine_type=biosafety_cabinet.machine_type)
    response = client_for(technician).post(f"/api/booking/certifications/{certification.pk}/revoke",
                                           {"reason": "thử"}, content_type="application/json")
    assert response.status_code == 403
    certification.refresh_from_db()
    assert certification.revoked_at is None
