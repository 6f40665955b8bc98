"""The admin translates, it does not decide.

Stateful records (sessions, seat bookings, reservations, certifications, maintenance windows, check-ins,
telemetry, notifications) cannot be added, changed or deleted by hand in the admin. What staff may do
there goes through admin actions and forms that call the same services as the pages and the API, so every
rule holds and everyone concerned is told. Reference data (labs, machine types, machines, courses) stays
editable.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.booking.models import CertificationAction, CheckInRecord, Reservation
from fablab_ops.courses import services as courses
from fablab_ops.courses.models import SeatBooking, SeatStatus, Session, SessionStatus
from fablab_ops.machines.models import MaintenanceWindow, TelemetryMessage
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def staff(admin_user):
    return client_for(admin_user)


@pytest.fixture
def small_class(lab):
    course = factories.CourseFactory(lab=lab, default_capacity=2, min_capacity=1, max_capacity=10)
    return factories.SessionFactory(course=course, capacity=2)


def session_form(session, **changes):
    local = timezone.localtime
    data = {"course": session.course_id, "start_0": local(session.start).strftime("%d/%m/%Y"),
            "start_1": local(session.start).strftime("%H:%M:%S"), "end_0": local(session.end).strftime("%d/%m/%Y"),
            "end_1": local(session.end).strftime("%H:%M:%S"), "capacity": session.capacity,
            "lab": session.lab_id or "", "place": session.place, "status": session.status,
            "cancel_reason": "", "peak_waitlist": 0, "detached": ""}
    data.update(changes)
    return data


@pytest.mark.django_db
def test_cutting_a_sessions_capacity_in_the_change_form_is_refused(staff, small_class):
    booked = [courses.book_seat(small_class.pk, factories.LearnerFactory()).booking for _ in range(2)]
    response = staff.post(f"/admin/courses/session/{small_class.pk}/change/", session_form(small_class, capacity=1))
    assert response.status_code == 403
    small_class.refresh_from_db()
    assert small_class.capacity == 2
    assert SeatBooking.objects.filter(pk__in=[b.pk for b in booked], status=SeatStatus.CONFIRMED).count() == 2


@pytest.mark.django_db
def test_cancelling_a_session_in_the_change_form_is_refused(staff, small_class):
    courses.book_seat(small_class.pk, factories.LearnerFactory())
    response = staff.post(f"/admin/courses/session/{small_class.pk}/change/",
                          session_form(small_class, status=SessionStatus.CANCELLED))
    assert response.status_code == 403
    small_class.refresh_from_db()
    assert small_class.status == SessionStatus.SCHEDULED


@pytest.mark.django_db
def test_the_cancel_action_asks_for_a_reason_and_tells_everyone_booked(staff, small_class):
    learners = [courses.book_seat(small_class.pk, factories.LearnerFactory()).booking.learner for _ in range(3)]
    action = {"action": "cancel_sessions", "_selected_action": [small_class.pk]}
    form = staff.post("/admin/courses/session/", action)
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    done = staff.post("/admin/courses/session/", {**action, "apply": "1", "reason": "Mất điện cả khu"})
    assert done.status_code == 302
    small_class.refresh_from_db()
    assert (small_class.status, small_class.cancel_reason) == (SessionStatus.CANCELLED, "Mất điện cả khu")
    told = set(Notification.objects.filter(kind="session_cancelled").values_list("user_id", flat=True))
    assert told == {learner.pk for learner in learners}
    assert not SeatBooking.objects.filter(session=small_class).exclude(status=SeatStatus.CANCELLED).exists()


@pytest.mark.django_db
def test_the_capacity_action_goes_through_the_capacity_rule(staff, small_class):
    first, _second = (courses.book_seat(small_class.pk, factories.LearnerFactory()).booking for _ in range(2))
    waiting = courses.book_seat(small_class.pk, factories.LearnerFactory()).booking
    courses.cancel_booking(first.pk, first.learner)  # the freed seat is offered to the one waiting
    action = {"action": "change_capacity", "_selected_action": [small_class.pk], "apply": "1"}

    refused = staff.post("/admin/courses/session/", {**action, "capacity": 1}, follow=True)
    assert "Đã có 2 chỗ được giữ" in refused.content.decode()
    small_class.refresh_from_db()
    assert small_class.capacity == 2, "one seat confirmed and one held for the offer"

    staff.post("/admin/courses/session/", {**action, "capacity": 4})
    small_class.refresh_from_db()
    assert small_class.capacity == 4
    courses.confirm_offer(waiting.pk, waiting.learner)
    assert courses.seats_taken(small_class) <= small_class.capacity


@pytest.mark.django_db
def test_a_maintenance_window_added_in_the_admin_flags_the_reservations_it_hits(staff, lab, admin_user):
    machine = factories.MachineFactory(lab=lab)
    reservation = factories.ReservationFactory(machine=machine)
    local = timezone.localtime
    start, end = reservation.start - timedelta(minutes=30), reservation.end + timedelta(minutes=30)
    form = staff.get("/admin/machines/maintenancewindow/add/")
    assert form.status_code == 200 and 'name="reason"' in form.content.decode()
    response = staff.post("/admin/machines/maintenancewindow/add/", {
        "machine": machine.pk, "start_0": local(start).strftime("%Y-%m-%d"), "start_1": local(start).strftime("%H:%M"),
        "end_0": local(end).strftime("%Y-%m-%d"), "end_1": local(end).strftime("%H:%M"), "reason": "Thay ống laser",
    })
    assert response.status_code == 302
    window = MaintenanceWindow.objects.get(machine=machine)
    assert window.created_by == admin_user
    reservation.refresh_from_db()
    assert reservation.maintenance_conflict
    assert Notification.objects.filter(user=reservation.user, kind="reservation_maintenance").count() == 1


@pytest.mark.django_db
def test_maintenance_windows_cannot_be_edited_or_deleted_by_hand(staff, lab):
    window = factories.MaintenanceWindowFactory(machine=factories.MachineFactory(lab=lab))
    assert staff.get(f"/admin/machines/maintenancewindow/{window.pk}/change/").status_code == 200  # to read
    assert staff.post(f"/admin/machines/maintenancewindow/{window.pk}/change/", {"reason": "x"}).status_code == 403
    assert staff.post(f"/admin/machines/maintenancewindow/{window.pk}/delete/", {"post": "yes"}).status_code == 403
    assert MaintenanceWindow.objects.filter(pk=window.pk, reason="Thay ống laser").exists()


@pytest.mark.django_db
def test_certifications_are_granted_and_revoked_through_the_service_with_a_reason(staff, admin_user):
    learner = factories.LearnerFactory()
    laser = factories.MachineTypeFactory(slug="laser")
    form = staff.get("/admin/booking/certification/add/")
    assert form.status_code == 200 and 'name="machine_type"' in form.content.decode()
    granted = staff.post("/admin/booking/certification/add/", {
        "user": learner.email, "machine_type": laser.pk, "reason": "Đã học ở xưởng khác",
    })
    assert granted.status_code == 302
    certification = learner.certifications.get(machine_type=laser)
    assert certification.granted_by == admin_user
    assert Notification.objects.filter(user=learner, kind="certification_granted").count() == 1

    action = {"action": "revoke_certifications", "_selected_action": [certification.pk], "apply": "1"}
    staff.post("/admin/booking/certification/", {**action, "reason": ""})  # a reason is required
    certification.refresh_from_db()
    assert certification.revoked_at is None
    staff.post("/admin/booking/certification/", {**action, "reason": "Vi phạm an toàn"})
    certification.refresh_from_db()
    assert certification.revoked_at is not None and certification.revoke_reason == "Vi phạm an toàn"
    assert certification.events.filter(action=CertificationAction.REVOKED).count() == 1
    assert Notification.objects.filter(user=learner, kind="certification_revoked").count() == 1


@pytest.mark.django_db
def test_stateful_records_are_read_only_in_the_admin(staff, lab, small_class):
    booking = courses.book_seat(small_class.pk, factories.LearnerFactory()).booking
    reservation = factories.ReservationFactory(machine=factories.MachineFactory(lab=lab))
    certification = factories.CertificationFactory()
    notification = Notification.objects.first()
    stateful = {
        "courses/session": small_class.pk, "courses/seatbooking": booking.pk,
        "booking/reservation": reservation.pk, "booking/certification": certification.pk,
        "accounts/notification": notification.pk,
    }
    for path, pk in stateful.items():
        assert staff.get(f"/admin/{path}/").status_code == 200, path
        assert staff.post(f"/admin/{path}/{pk}/change/", {}).status_code == 403, path
        assert staff.post(f"/admin/{path}/{pk}/delete/", {"post": "yes"}).status_code == 403, path
    for path in ["courses/session", "courses/seatbooking", "booking/reservation", "booking/checkinrecord",
                 "machines/telemetrymessage", "machines/usagesession", "machines/machinecommand",
                 "accounts/notification"]:
        assert staff.post(f"/admin/{path}/add/", {}).status_code == 403, path
    assert Session.objects.filter(pk=small_class.pk).exists()
    assert SeatBooking.objects.filter(pk=booking.pk).exists()
    assert Reservation.objects.filter(pk=reservation.pk).exists()
    assert CheckInRecord.objects.count() == 0 and TelemetryMessage.objects.count() == 0


@pytest.mark.django_db
def test_reference_data_stays_editable(staff, lab):
    machine = factories.MachineFactory(lab=lab)
    course = factories.CourseFactory(lab=lab)
    for path, pk in {"machines/lab": lab.pk, "machines/machinetype": machine.machine_type_id,
                     "machines/machine": machine.pk, "courses/course": course.pk}.items():
        page = staff.get(f"/admin/{path}/{pk}/change/")
        assert page.status_code == 200 and 'name="_save"' in page.content.decode(), path
    assert staff.get("/admin/courses/course/add/").status_code == 200
