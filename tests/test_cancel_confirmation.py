"""Cancelling a seat or a machine reservation asks once more and says what will happen; looking changes nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.booking.models import ReservationStatus
from fablab_ops.courses.models import SeatStatus
from tests import factories
from tests.conftest import client_for


def full_session_with_a_waiting_list(capacity=2):
    session = factories.SessionFactory(capacity=capacity, course__title_vi="Lập trình Arduino ứng dụng",
                                       course__min_capacity=1, course__default_capacity=capacity)
    seats = [factories.SeatBookingFactory(session=session) for _ in range(capacity)]
    waiter = factories.SeatBookingFactory(session=session, status=SeatStatus.WAITLISTED, waitlist_position=1,
                                          confirmed_at=None)
    return session, seats, waiter


@pytest.mark.django_db
def test_cancelling_a_seat_in_a_full_class_says_the_first_person_waiting_gets_it_then_does_it():
    session, seats, waiter = full_session_with_a_waiting_list()
    mine = seats[0]
    client = client_for(mine.learner)

    page = client.get(f"/courses/bookings/{mine.pk}/cancel/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Hủy chỗ trong Lập trình Arduino ứng dụng?" in text
    assert "người đầu tiên trong danh sách chờ" in text
    assert "Vé QR của bạn sẽ không còn dùng được" in text
    assert f'action="/courses/bookings/{mine.pk}/cancel/"' in text
    mine.refresh_from_db()
    assert mine.status == SeatStatus.CONFIRMED  # looking is not cancelling

    response = client.post(f"/courses/bookings/{mine.pk}/cancel/")
    assert response.status_code == 302
    mine.refresh_from_db()
    waiter.refresh_from_db()
    assert mine.status == SeatStatus.CANCELLED
    assert waiter.offer_expires_at is not None


@pytest.mark.django_db
def test_cancelling_a_seat_nobody_waits_for_says_it_opens_to_others():
    booking = factories.SeatBookingFactory()
    text = client_for(booking.learner).get(f"/courses/bookings/{booking.pk}/cancel/").content.decode()
    assert "Chỗ của bạn sẽ mở cho người khác đăng ký" in text
    assert "người đầu tiên trong danh sách chờ" not in text


@pytest.mark.django_db
def test_after_the_deadline_the_page_says_cancelling_is_no_longer_possible_and_offers_no_button():
    soon = timezone.now() + timedelta(hours=3)
    booking = factories.SeatBookingFactory(session__start=soon, session__end=soon + timedelta(hours=3))
    client = client_for(booking.learner)
    text = client.get(f"/courses/bookings/{booking.pk}/cancel/").content.decode()
    assert "Đã quá hạn hủy" in text
    assert 'method="post" action="/courses/bookings/' not in text
    client.post(f"/courses/bookings/{booking.pk}/cancel/")
    booking.refresh_from_db()
    assert booking.status == SeatStatus.CONFIRMED


@pytest.mark.django_db
def test_leaving_the_waiting_list_says_so():
    session, _seats, waiter = full_session_with_a_waiting_list()
    text = client_for(waiter.learner).get(f"/courses/bookings/{waiter.pk}/cancel/").content.decode()
    assert "Bạn sẽ rời danh sách chờ (đang đứng thứ 1)" in text


@pytest.mark.django_db
def test_the_cancel_buttons_of_my_classes_lead_to_the_confirmation():
    booking = factories.SeatBookingFactory()
    client = client_for(booking.learner)
    for path in ("/courses/my/", f"/courses/sessions/{booking.session.pk}/"):
        text = client.get(path).content.decode()
        assert f'href="/courses/bookings/{booking.pk}/cancel/"' in text
        assert f'action="/courses/bookings/{booking.pk}/cancel/"' not in text


@pytest.mark.django_db
def test_nobody_sees_the_cancellation_page_of_another_learners_seat():
    booking = factories.SeatBookingFactory()
    assert client_for(factories.LearnerFactory()).get(f"/courses/bookings/{booking.pk}/cancel/").status_code == 404


@pytest.mark.django_db
def test_cancelling_a_reservation_says_the_time_opens_to_others_then_does_it():
    machine = factories.MachineFactory(name="Máy cắt laser Trotec")
    reservation = factories.ReservationFactory(machine=machine)
    client = client_for(reservation.user)
    page = client.get(f"/booking/reservations/{reservation.pk}/cancel/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "Hủy lượt đặt Máy cắt laser Trotec?" in text
    assert "sẽ mở cho người khác đặt" in text
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED

    assert client.post(f"/booking/reservations/{reservation.pk}/cancel/").status_code == 302
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CANCELLED


@pytest.mark.django_db
def test_a_reservation_that_has_started_cannot_be_cancelled_and_the_page_says_so():
    start = timezone.now() - timedelta(minutes=10)
    reservation = factories.ReservationFactory(start=start, end=start + timedelta(hours=1))
    text = client_for(reservation.user).get(f"/booking/reservations/{reservation.pk}/cancel/").content.decode()
    assert "Chỉ hủy được lượt đặt máy chưa bắt đầu" in text
    assert 'method="post" action="/booking/reservations/' not in text


@pytest.mark.django_db
def test_the_cancel_buttons_of_my_reservations_lead_to_the_confirmation():
    reservation = factories.ReservationFactory()
    client = client_for(reservation.user)
    for path in ("/booking/reservations/", f"/booking/reservations/{reservation.pk}/"):
        text = client.get(path).content.decode()
        assert f'href="/booking/reservations/{reservation.pk}/cancel/"' in text
        assert f'action="/booking/reservations/{reservation.pk}/cancel/"' not in text


@pytest.mark.django_db
def test_nobody_sees_the_cancellation_page_of_another_persons_reservation():
    reservation = factories.ReservationFactory()
    other = client_for(factories.LearnerFactory())
    assert other.get(f"/booking/reservations/{reservation.pk}/cancel/").status_code == 404
