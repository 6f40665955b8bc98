"""Inductions certify when they are passed: the trainer marks each attendee after the session.

Checking in at the door only records attendance; only the lab that ran the induction (its technicians)
and coordinators may mark, every grant keeps who, when and why, and "not passed" grants nothing.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.booking import services as booking
from fablab_ops.booking import tickets
from fablab_ops.booking.models import CertificationAction, CertificationEvent
from fablab_ops.courses import services
from fablab_ops.courses.models import InductionResult, SeatBooking, SeatStatus
from fablab_ops.door import services as door
from fablab_ops.errors import DomainError
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def induction(lab):
    start = timezone.now() - timedelta(minutes=5)
    course = factories.InductionCourseFactory(lab=lab, title_vi="Hướng dẫn sử dụng máy cắt laser")
    factories.MachineFactory(lab=lab, machine_type=course.certifies)
    return factories.SessionFactory(course=course, start=start, end=start + timedelta(hours=2))


def checked_in(session, technician, name):
    learner = factories.LearnerFactory(full_name=name)
    seat = factories.SeatBookingFactory(session=session, learner=learner)
    result = door.check_in_token(tickets.sign(tickets.SEAT, seat.ticket_code), lab=session.lab, by=technician)
    assert result.accepted
    return SeatBooking.objects.get(pk=seat.pk)


@pytest.mark.django_db
def test_checking_in_at_an_induction_grants_nothing(induction, technician):
    seat = checked_in(induction, technician, "Nguyễn Thị Lan")
    assert seat.status == SeatStatus.ATTENDED
    assert not booking.is_certified(seat.learner, induction.course.certifies)
    assert not seat.learner.certifications.exists()


@pytest.mark.django_db
def test_marking_passed_grants_with_an_event_and_not_passed_grants_nothing(induction, technician):
    passed = checked_in(induction, technician, "Nguyễn Thị Lan")
    failed = checked_in(induction, technician, "Trần Văn Khoa")
    absent = factories.SeatBookingFactory(session=induction, learner__full_name="Lê Văn Vắng")
    client = client_for(technician)
    url = f"/courses/inductions/{induction.pk}/"
    page = client.get(url).content.decode()
    assert "Nguyễn Thị Lan" in page and f'name="result-{absent.pk}"' not in page

    response = client.post(url, {f"result-{passed.pk}": "passed", f"note-{passed.pk}": "Vận hành an toàn",
                                 f"result-{failed.pk}": "not_passed", f"note-{failed.pk}": "Chưa nắm quy trình",
                                 f"result-{absent.pk}": "passed"})
    assert response.status_code == 302
    machine_type = induction.course.certifies
    certification = passed.learner.certifications.get(machine_type=machine_type)
    event = CertificationEvent.objects.get(certification=certification)
    assert (event.action, event.by, certification.seat_booking_id) == (
        CertificationAction.GRANTED, technician, passed.pk)
    assert "Vận hành an toàn" in event.reason and event.at is not None
    failed.refresh_from_db()
    assert (failed.induction_result, failed.induction_marked_by, failed.induction_note) == (
        InductionResult.NOT_PASSED, technician, "Chưa nắm quy trình")
    assert not failed.learner.certifications.exists()
    assert not absent.learner.certifications.exists()  # never checked in: cannot pass

    # A pass corrected to "not passed" takes back what it granted, with its reason kept.
    services.mark_induction(passed.pk, passed=False, by=technician, note="Nhầm người")
    certification.refresh_from_db()
    assert certification.revoked_at is not None and certification.revoke_reason == "Nhầm người"


@pytest.mark.django_db
def test_a_technician_of_another_lab_cannot_mark_an_induction(induction, technician, other_lab, coordinator):
    seat = checked_in(induction, technician, "Nguyễn Thị Lan")
    outsider = factories.TechnicianFactory(labs=[other_lab])
    assert client_for(outsider).get(f"/courses/inductions/{induction.pk}/").status_code == 403
    assert client_for(outsider).post(f"/courses/inductions/{induction.pk}/",
                                     {f"result-{seat.pk}": "passed"}).status_code == 403
    with pytest.raises(DomainError) as refused:
        services.mark_induction(seat.pk, passed=True, by=outsider)
    assert refused.value.code == "not_induction_trainer"
    assert client_for(seat.learner).get(f"/courses/inductions/{induction.pk}/").status_code == 403
    assert not seat.learner.certifications.exists()
    assert "Hướng dẫn sử dụng máy cắt laser" not in client_for(outsider).get("/courses/inductions/").content.decode()
    # A coordinator may.
    services.mark_induction(seat.pk, passed=True, by=coordinator)
    assert booking.is_certified(seat.learner, induction.course.certifies)


@pytest.mark.django_db
def test_an_induction_cannot_be_marked_before_it_starts(lab, technician):
    start = timezone.now() + timedelta(days=1)
    seat = factories.SeatBookingFactory(session__course=factories.InductionCourseFactory(lab=lab), session__lab=lab,
                                        session__start=start, session__end=start + timedelta(hours=2),
                                        status=SeatStatus.ATTENDED)
    with pytest.raises(DomainError) as refused:
        services.mark_induction(seat.pk, passed=True, by=technician)
    assert refused.value.code == "induction_not_started"


@pytest.mark.django_db
def test_a_learner_sees_certifications_with_expiry_and_the_next_induction_with_seats(learner, lab):
    laser = factories.MachineTypeFactory(name_vi="Máy cắt laser", certification_lapse_days=365)
    printer = factories.MachineTypeFactory(name_vi="Máy in 3D")
    for kind in (laser, printer):
        factories.MachineFactory(lab=lab, machine_type=kind)
    granted = timezone.now() - timedelta(days=10)
    factories.CertificationFactory(user=learner, machine_type=laser, granted_at=granted)
    full = factories.SessionFactory(course=factories.InductionCourseFactory(lab=lab, certifies=printer),
                                    start=timezone.now() + timedelta(days=2), capacity=1)
    factories.SeatBookingFactory(session=full)
    later = factories.SessionFactory(course=full.course, start=timezone.now() + timedelta(days=9))
    page = client_for(learner).get("/courses/my/certifications/").content.decode()
    held, missing = page.split('id="held"')[1].split('id="missing"')
    expiry = timezone.localtime(granted + timedelta(days=365)).strftime("%d/%m/%Y")
    assert "Máy cắt laser" in held and expiry in held
    assert "Máy in 3D" in missing and f"/courses/sessions/{later.pk}/" in missing
    assert f"/courses/sessions/{full.pk}/" not in missing  # no seat left there


@pytest.mark.django_db
def test_the_api_asks_the_same_policy(induction, technician, other_lab):
    seat = checked_in(induction, technician, "Nguyễn Thị Lan")
    outsider = factories.TechnicianFactory(labs=[other_lab])
    url = f"/api/courses/inductions/{seat.pk}/result"
    refused = client_for(outsider).post(url, {"passed": True}, content_type="application/json")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_induction_trainer")
    done = client_for(technician).post(url, {"passed": True, "note": "Tốt"}, content_type="application/json")
    assert done.json() == {"booking": seat.pk, "result": "passed", "certified": True}
