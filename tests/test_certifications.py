"""Inductions certify learners for a machine type across the network; staff grant and revoke with reasons."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification, User
from fablab_ops.booking import services
from fablab_ops.booking.models import Certification, CertificationEvent, Reservation, ReservationStatus
from fablab_ops.courses.models import SeatBooking, SeatStatus
from fablab_ops.demo import data as demo
from fablab_ops.machines.models import MachineType
from tests import factories
from tests.conftest import client_for


@pytest.mark.django_db
def test_passing_an_induction_certifies_in_every_lab(learner, technician):
    induction = factories.InductionCourseFactory()
    seat = factories.SeatBookingFactory(learner=learner, session__course=induction, status=SeatStatus.ATTENDED)
    certification = services.certify_passed_induction(seat, technician)
    assert certification.machine_type == induction.certifies
    assert services.is_certified(learner, induction.certifies)
    assert services.certify_passed_induction(seat, technician) == certification
    assert CertificationEvent.objects.filter(certification=certification, action="granted").count() == 1


@pytest.mark.django_db
def test_staff_grant_and_revoke_with_a_reason_and_every_change_is_recorded(learner, technician, lab):
    kind = factories.MachineTypeFactory(slug="cnc-router")
    factories.MachineFactory(lab=lab, machine_type=kind)  # the technician's lab teaches the CNC router
    client = client_for(technician)
    response = client.post("/api/booking/certifications", {
        "user_email": learner.email, "machine_type": "cnc-router", "reason": "Đã học CNC ở trường nghề",
    }, content_type="application/json")
    assert response.status_code == 201
    certification_id = response.json()["id"]
    assert client.post(f"/api/booking/certifications/{certification_id}/revoke", {"reason": ""},
                       content_type="application/json").json()["code"] == "reason_required"
    response = client.post(f"/api/booking/certifications/{certification_id}/revoke",
                           {"reason": "Vận hành không an toàn"}, content_type="application/json")
    assert response.status_code == 200
    assert not services.is_certified(learner, kind)
    events = list(CertificationEvent.objects.filter(certification_id=certification_id).order_by("at", "pk")
                  .values_list("action", "by_id", "reason"))
    assert events == [("granted", technician.pk, "Đã học CNC ở trường nghề"),
                      ("revoked", technician.pk, "Vận hành không an toàn")]
    assert set(Notification.objects.filter(user=learner).values_list("kind", flat=True)) == {
        "certification_granted", "certification_revoked"}


@pytest.mark.django_db
def test_a_learner_cannot_grant_certifications(learner):
    factories.MachineTypeFactory(slug="laser-cutter")
    response = client_for(learner).post("/api/booking/certifications", {
        "user_email": learner.email, "machine_type": "laser-cutter", "reason": "tự cấp",
    }, content_type="application/json")
    assert response.status_code == 403
    assert not Certification.objects.exists()


@pytest.mark.django_db
def test_an_unused_certification_lapses_after_a_reminder(learner):
    kind = factories.MachineTypeFactory(certification_lapse_days=180)
    certification = factories.CertificationFactory(user=learner, machine_type=kind,
                                                   granted_at=timezone.now() - timedelta(days=170))
    assert services.lapse_certifications() == {"lapsed": 0, "reminded": 1}
    assert services.lapse_certifications() == {"lapsed": 0, "reminded": 0}
    assert services.lapse_certifications(now=timezone.now() + timedelta(days=11)) == {"lapsed": 1, "reminded": 0}
    certification.refresh_from_db()
    assert certification.revoked_at is not None
    assert certification.events.filter(action="lapsed").exists()


@pytest.mark.django_db
def test_using_the_machine_keeps_a_certification_alive(learner):
    kind = factories.MachineTypeFactory(certification_lapse_days=180)
    factories.CertificationFactory(user=learner, machine_type=kind, granted_at=timezone.now() - timedelta(days=300))
    used_at = timezone.now() - timedelta(days=30)
    factories.ReservationFactory(user=learner, machine__machine_type=kind, status=ReservationStatus.COMPLETED,
                                 start=used_at, end=used_at + timedelta(hours=1), checked_in_at=used_at)
    assert services.lapse_certifications() == {"lapsed": 0, "reminded": 0}


@pytest.mark.django_db
def test_the_nightly_lapse_check_reads_the_network_s_certifications_in_one_query(django_assert_num_queries):
    """Each certification's last use is read with it: a network with many does not cost a query apiece."""
    kind = factories.MachineTypeFactory(certification_lapse_days=180)

    def in_use(n):
        for _ in range(n):
            holder = factories.LearnerFactory()
            factories.CertificationFactory(user=holder, machine_type=kind,
                                           granted_at=timezone.now() - timedelta(days=300))
            used_at = timezone.now() - timedelta(days=30)
            factories.ReservationFactory(user=holder, machine__machine_type=kind, start=used_at,
                                         end=used_at + timedelta(hours=1), checked_in_at=used_at,
                                         status=ReservationStatus.COMPLETED)

    in_use(1)
    with django_assert_num_queries(1):
        assert services.lapse_certifications() == {"lapsed": 0, "reminded": 0}
    in_use(12)
    with django_assert_num_queries(1):
        assert services.lapse_certifications() == {"lapsed": 0, "reminded": 0}


@pytest.mark.django_db
def test_demo_learner_refused_a_laser_before_induction_then_reserves_one_in_another_lab():
    demo.seed()
    learner = User.objects.get(email=demo.DEMO_LEARNER.email)
    laser = MachineType.objects.get(slug="laser-cutter")
    client = client_for(learner)
    day = timezone.localdate() + timedelta(days=1)
    while day.weekday() > 4:  # a weekday, when every lab is open
        day += timedelta(days=1)
    start = timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time())) + timedelta(hours=9)
    refused = client.post("/api/booking/reservations", {
        "lab": "biic", "machine": "laser-01", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
    }, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "not_certified"

    seat = SeatBooking.objects.get(learner=learner, session__course__slug="induction-laser-biic")
    seat.status = SeatStatus.ATTENDED  # the technician checks them in at the induction
    seat.save()
    technician = User.objects.get(email="ktv.biic@fablab.local")
    assert not services.is_certified(learner, laser)  # being there is not passing
    services.certify_passed_induction(seat, technician)

    slots = client.get("/api/booking/search", {"machine_type": "laser-cutter", "minutes": 60}).json()
    elsewhere = next(s for s in slots if s["lab"] != "biic")
    reserved = client.post("/api/booking/reservations", {
        "lab": elsewhere["lab"], "machine": elsewhere["machine"], "start": elsewhere["start"],
        "end": elsewhere["end"],
    }, content_type="application/json")
    assert reserved.status_code == 201
    assert Reservation.objects.get(pk=reserved.json()["id"]).machine.machine_type == laser
