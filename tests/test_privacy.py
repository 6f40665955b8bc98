"""Learners' personal data as Law 91/2025/QH15 asks: the notice, consent per purpose, export, erasure,
children and their guardians, and the log of staff looking at a learner's data."""

import json
import re
from dataclasses import asdict
from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from fablab_ops.accounts.models import ApiToken, Notification, User
from fablab_ops.courses import services as courses
from fablab_ops.courses.models import SeatStatus
from fablab_ops.errors import PermissionDenied
from fablab_ops.machines.models import UsageSession
from fablab_ops.notifications import notify
from fablab_ops.privacy import services as privacy
from fablab_ops.privacy.models import AccessLogEntry, Channel, Consent, Purpose
from fablab_ops.reports import services as reports
from tests import factories
from tests.conftest import client_for
from tests.test_reports import OCTOBER, local, october  # noqa: F401  (the fixture)

PASSWORD = "m4y-in-3d-rat-vui"


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()


def years_ago(years: int, days: int = 0) -> date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - timedelta(days=days)


def sign_up(client, email="hong@example.vn", **fields):
    form = {"full_name": "Phạm Thị Hồng", "email": email, "phone": "", "password": PASSWORD,
            "date_of_birth": years_ago(25).isoformat(), "consent_bookings": "on", **fields}
    return client.post("/accounts/signup/", {k: v for k, v in form.items() if v is not None})


def link_path(message) -> str:
    return re.sub(r"^https?://[^/]+", "", re.search(r"https?://\S+", message.body).group(0))


# --- 1. the privacy notice -----------------------------------------------------------

@pytest.mark.django_db
def test_the_privacy_notice_names_the_controller_in_vietnamese_and_english(client, settings):
    settings.PRIVACY_CONTROLLER_NAME = "Sở Khoa học và Công nghệ Thành phố Hồ Chí Minh"
    settings.PRIVACY_CONTROLLER_EMAIL = "dulieu@example.gov.vn"
    page = client.get("/privacy/").content.decode()
    for words in ("Sở Khoa học và Công nghệ Thành phố Hồ Chí Minh", "dulieu@example.gov.vn", "Để làm gì",
                  "Giữ trong bao lâu", "Ai được xem", "Quyền của bạn", "dưới 16 tuổi"):
        assert words in page
    client.cookies["django_language"] = "en"
    english = client.get("/privacy/").content.decode()
    assert "Who is responsible" in english and "Your rights" in english
    assert "dulieu@example.gov.vn" in english


@pytest.mark.django_db
def test_every_page_links_to_the_notice_and_sign_up_does_too(client, learner):
    for path in ("/courses/", "/accounts/login/"):
        assert 'href="/privacy/"' in client.get(path).content.decode()
    signup = client.get("/accounts/signup/").content.decode()
    assert signup.count('href="/privacy/"') >= 2  # the footer, and next to the form
    assert 'href="/privacy/"' in client_for(learner).get("/accounts/profile/").content.decode()


# --- 2. consent, recorded -------------------------------------------------------------

@pytest.mark.django_db
def test_sign_up_records_each_consent_with_its_version_time_and_channel(client, settings):
    settings.PRIVACY_NOTICE_VERSION = "2026-11"
    assert sign_up(client, consent_reminders="on").status_code == 302
    hong = User.objects.get(email="hong@example.vn")
    rows = {c.purpose: c for c in Consent.objects.filter(user=hong)}
    assert set(rows) == {Purpose.BOOKINGS, Purpose.REMINDERS}
    assert all(c.granted and c.notice_version == "2026-11" and c.channel == "signup" for c in rows.values())
    assert all(abs(c.at - timezone.now()) < timedelta(minutes=1) for c in rows.values())


@pytest.mark.django_db
def test_sign_up_without_the_required_consent_creates_no_account(client):
    response = sign_up(client, consent_bookings=None)
    assert response.status_code == 200
    assert "Không có sự đồng ý này chúng tôi không thể phục vụ bạn." in response.content.decode()
    assert not User.objects.filter(email="hong@example.vn").exists()


@pytest.mark.django_db
def test_a_learner_who_declines_reminders_at_sign_up_gets_none(client):
    sign_up(client)
    hong = User.objects.get(email="hong@example.vn")
    assert privacy.consents_to(hong, Purpose.REMINDERS) is False
    booking = factories.SeatBookingFactory(learner=hong)
    notification, created = notify(hong, "seat_reminder", dedup_key="r-1",
                                   context={"booking": booking, "session": booking.session})
    assert (notification, created) == (None, False)


@pytest.mark.django_db
def test_withdrawing_reminders_from_the_profile_stops_them_and_says_what_follows(learner):
    client = client_for(learner)
    booking = factories.SeatBookingFactory(learner=learner)
    context = {"booking": booking, "session": booking.session}
    assert notify(learner, "seat_reminder", dedup_key="before", context=context)[1] is True
    page = client.get("/accounts/profile/").content.decode()
    assert "Rút lại sự đồng ý" in page
    response = client.post("/privacy/consents/reminders/withdraw/", follow=True)
    assert "không nhận email nhắc lịch" in response.content.decode()
    withdrawal = Consent.objects.filter(user=learner).latest("at")
    assert (withdrawal.purpose, withdrawal.granted, withdrawal.channel) == ("reminders", False, "profile")
    assert notify(learner, "seat_reminder", dedup_key="after", context=context) == (None, False)
    # Essential e-mails still go.
    assert notify(learner, "seat_confirmed", dedup_key="essential", context=context)[1] is True
    # And consent can be given again.
    client.post("/privacy/consents/reminders/give/")
    assert notify(learner, "seat_reminder", dedup_key="again", context=context)[1] is True


@pytest.mark.django_db
def test_the_required_consent_is_not_withdrawn_alone_it_is_erasure(learner):
    client = client_for(learner)
    response = client.post("/privacy/consents/bookings/withdraw/", follow=True)
    assert "xóa tài khoản" in response.content.decode()
    assert not Consent.objects.filter(user=learner, purpose="bookings", granted=False).exists()


# --- 3. export --------------------------------------------------------------------------

@pytest.fixture
def lan_with_history(learner, lab):
    machine = factories.MachineFactory(lab=lab, name="Laser BIIC")
    seat = factories.SeatBookingFactory(learner=learner, status=SeatStatus.ATTENDED,
                                        session__course__title_vi="Arduino cơ bản", session__lab=lab)
    reservation = factories.ReservationFactory(user=learner, machine=machine, purpose="Cắt hộp gỗ")
    factories.CertificationFactory(user=learner, machine_type=machine.machine_type)
    UsageSession.objects.create(machine=machine, user=learner, reservation=reservation, start=reservation.start,
                                end=reservation.end, job="hop-go.svg")
    notify(learner, "seat_confirmed", dedup_key="lan-1", context={"booking": seat, "session": seat.session})
    ApiToken.issue(learner, "Máy tính ở nhà")
    return learner


@pytest.mark.django_db
def test_a_learner_downloads_everything_held_about_them_as_json_and_reads_it_in_vietnamese(lan_with_history):
    client = client_for(lan_with_history)
    response = client.get("/privacy/export.json")
    assert response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["profile"]["email"] == "lan@example.vn"
    assert data["profile"]["full_name"] == "Nguyễn Thị Lan"
    for section in ("consents", "bookings", "reservations", "certifications", "notifications",
                    "usage_sessions", "api_tokens"):
        assert len(data[section]) == 1, section
    assert data["reservations"][0]["purpose"] == "Cắt hộp gỗ"
    page = client.get("/privacy/export/").content.decode()
    for words in ("Dữ liệu của tôi", "Nguyễn Thị Lan", "Arduino cơ bản", "Laser BIIC", "Đăng ký lớp",
                  "Chứng nhận sử dụng máy", "Phiên sử dụng máy", "Email đã gửi cho bạn", "Sự đồng ý"):
        assert words in page, words


@pytest.mark.django_db
def test_nobody_else_exports_a_learners_data_without_it_being_logged(lan_with_history, technician, coordinator):
    path = f"/privacy/learners/{lan_with_history.pk}/export/"
    assert client_for(technician).get(path).status_code == 404
    assert client_for(lan_with_history).get(path).status_code == 404
    assert not AccessLogEntry.objects.exists()
    assert "Nguyễn Thị Lan" in client_for(coordinator).get(path).content.decode()
    entry = AccessLogEntry.objects.get()
    assert (entry.viewer, entry.subject, entry.what) == (coordinator, lan_with_history, "export")


# --- 4. erasure ---------------------------------------------------------------------------

def figures(report) -> list:
    return [(row.slug, asdict(row.total), {k: asdict(v) for k, v in row.by_kind.items()},
             [asdict(s) for s in row.sessions], [asdict(m) for m in row.machines], row.certifications_granted)
            for row in report.labs] + [asdict(report.network)]


@pytest.mark.django_db
def test_erasing_a_learner_leaves_last_months_report_unchanged(october, lab):  # noqa: F811
    l2 = october["people"]["L2"]  # attended an Arduino class and an induction, certified
    laser = factories.MachineFactory(lab=lab, name="Laser L2")
    used = factories.ReservationFactory(user=l2, machine=laser, start=local(2026, 10, 12, 9),
                                        end=local(2026, 10, 12, 11), status="completed", purpose="Khắc tên")
    UsageSession.objects.create(machine=laser, user=l2, reservation=used, start=used.start, end=used.end)
    l2.phone, l2.organisation = "0912345678", "THPT Dĩ An"
    l2.save()
    notify(l2, "certification_granted", dedup_key="l2-cert",
           context={"certification": l2.certifications.first()})
    before = figures(reports.monthly_report(OCTOBER, now=local(2026, 11, 5, 9)))

    client = client_for(l2)
    assert "Tôi hiểu rằng việc xóa không thể hoàn tác." in client.get("/privacy/erase/").content.decode()
    assert client.post("/privacy/erase/").status_code == 400  # not confirmed: nothing happens
    assert User.objects.get(pk=l2.pk).is_active
    client.post("/privacy/erase/", {"confirm": "yes"})

    after = figures(reports.monthly_report(OCTOBER, now=local(2026, 11, 5, 9)))
    assert after == before
    erased = User.objects.get(pk=l2.pk)
    assert erased.full_name == "—" and "L2" not in erased.email and erased.phone == "" and erased.organisation == ""
    assert not erased.is_active and not erased.has_usable_password()
    assert not Client().login(username=erased.email, password=factories.TEST_PASSWORD)
    assert not Client().login(username=l2.email, password=factories.TEST_PASSWORD)
    assert client.get("/accounts/profile/").status_code == 302  # the open session ended too
    usage = UsageSession.objects.get(machine=laser)
    assert usage.user is None and usage.end - usage.start == timedelta(hours=2)
    assert all(n.subject == "" and n.body == "" for n in Notification.objects.filter(user=erased))
    assert not ApiToken.objects.filter(user=erased).exists()
    assert erased.feed_secret != l2.feed_secret
    assert not erased.reservations.exclude(purpose="").exists()


@pytest.mark.django_db
def test_erasure_gives_up_future_seats_to_the_waiting_list(learner):
    session = factories.SessionFactory(capacity=1)
    factories.SeatBookingFactory(session=session, learner=learner)
    waiting = factories.LearnerFactory()
    courses.book_seat(session.pk, waiting)
    privacy.erase(learner)
    seat = session.bookings.get(learner=waiting)
    assert seat.offer_expires_at is not None  # offered the freed seat
    assert session.bookings.get(learner=learner).status == SeatStatus.CANCELLED


@pytest.mark.django_db
def test_staff_accounts_are_not_erased_from_the_profile(technician):
    client_for(technician).post("/privacy/erase/", {"confirm": "yes"})
    assert User.objects.get(pk=technician.pk).is_active


# --- 5. children and guardians ---------------------------------------------------------------

def child_sign_up(client, age=12, **fields):
    return sign_up(client, **{"email": "minh@example.vn", "full_name": "Trần Minh",
                              "date_of_birth": years_ago(age).isoformat(), "guardian_name": "Trần Thị Mai",
                              "guardian_email": "mai@example.vn", "guardian_relation": "mẹ", "child_agrees": "on",
                              **fields})


@pytest.mark.django_db
def test_a_pupil_of_12_waits_for_the_guardian_then_books(client):
    assert child_sign_up(client).status_code == 302
    minh = User.objects.get(email="minh@example.vn")
    minh.email_verified_at = timezone.now()
    minh.save()
    session = factories.SessionFactory()
    assert client.get("/courses/").status_code == 200  # may browse
    with pytest.raises(PermissionDenied) as refusal:
        courses.book_seat(session.pk, minh)
    assert refusal.value.code == "guardian_consent_pending"
    assert not Consent.objects.filter(user=minh, purpose="bookings").exists()  # the guardian's to give

    letter = next(m for m in mail.outbox if m.to == ["mai@example.vn"])
    assert "Trần Minh" in letter.body
    guardian = Client()
    page = guardian.get(link_path(letter)).content.decode()
    assert "Trần Thị Mai" in page and "mẹ" in page and "Em đã tự đồng ý" in page
    guardian.post(link_path(letter), {"action": "confirm"})
    consent = Consent.objects.get(user=minh, purpose="bookings")
    assert consent.granted and consent.by_guardian and consent.channel == "guardian"
    assert courses.book_seat(session.pk, minh).booking.status == SeatStatus.CONFIRMED
    # The guardian sees the child's bookings from the same link.
    page = guardian.get(link_path(letter)).content.decode()
    assert str(session.course) in page and "Đã xác nhận" in page


@pytest.mark.django_db
def test_a_child_from_seven_must_agree_too_and_a_guardian_is_required(client):
    response = child_sign_up(client, child_agrees=None)
    assert "Từ 7 tuổi, em cũng cần tự đồng ý." in response.content.decode()
    response = sign_up(client, email="be@example.vn", date_of_birth=years_ago(10).isoformat())
    assert "Dưới 16 tuổi: hãy nhập thông tin cha mẹ hoặc người giám hộ." in response.content.decode()
    assert not User.objects.filter(email__in=["minh@example.vn", "be@example.vn"]).exists()
    # Under 7 the guardian alone decides.
    assert child_sign_up(client, age=6, child_agrees=None).status_code == 302


@pytest.mark.django_db
def test_turning_16_makes_the_pupil_their_own_account_holder(client):
    child_sign_up(client, age=15)
    minh = User.objects.get(email="minh@example.vn")
    assert privacy.awaits_guardian(minh)
    assert not privacy.awaits_guardian(minh, today=timezone.localdate() + timedelta(days=366))


def guardian_of_minh(client):
    """Minh (12) signed up and the mother confirmed; Minh holds a seat in a session to come."""
    child_sign_up(client)
    minh = User.objects.get(email="minh@example.vn")
    User.objects.filter(pk=minh.pk).update(email_verified_at=timezone.now())
    minh.refresh_from_db()
    letter = next(m for m in mail.outbox if m.to == ["mai@example.vn"])
    guardian = Client()
    guardian.post(link_path(letter), {"action": "confirm"})
    session = factories.SessionFactory(capacity=1)
    seat = courses.book_seat(session.pk, minh).booking
    waiting = factories.LearnerFactory()
    courses.book_seat(session.pk, waiting)
    return minh, guardian, link_path(letter), seat, waiting


@pytest.mark.django_db
def test_the_guardian_withdraws_consent_processing_stops_and_the_childs_data_is_erased(client):
    minh, guardian, link, seat, waiting = guardian_of_minh(client)
    page = guardian.get(link).content.decode()
    assert "khi anh/chị rút lại sự đồng ý, việc xử lý dữ liệu của em dừng lại và dữ liệu bị xóa" in page  # before

    guardian.post(link, {"action": "withdraw"})  # not confirmed: nothing happens
    assert User.objects.get(pk=minh.pk).is_active
    response = guardian.post(link, {"action": "withdraw", "confirm": "yes"})
    assert "dữ liệu cá nhân của em đã được xóa" in response.content.decode()
    erased = User.objects.get(pk=minh.pk)
    assert not erased.is_active and erased.full_name == "—" and "minh" not in erased.email
    seat.refresh_from_db()
    assert seat.status == SeatStatus.CANCELLED
    assert waiting.seat_bookings.get().offer_expires_at is not None  # the seat goes to the next in line
    assert not privacy.may_send(erased, "seat_reminder")
    assert guardian.get(link).status_code >= 400  # the link stops working


@pytest.mark.django_db
def test_the_guardian_turns_off_reminders_and_the_child_still_books(client):
    minh, guardian, link, _seat, _waiting = guardian_of_minh(client)
    privacy.record_consent(minh, Purpose.REMINDERS, True, channel=Channel.GUARDIAN, by_guardian=True)
    assert privacy.may_send(minh, "seat_reminder")
    guardian.post(link, {"action": "stop_reminders"})
    assert not privacy.may_send(minh, "seat_reminder")
    assert courses.book_seat(factories.SessionFactory().pk, minh).booking.status == SeatStatus.CONFIRMED


@pytest.mark.django_db
def test_the_guardian_asks_for_erasure_and_the_childs_data_is_erased(client):
    minh, guardian, link, seat, _waiting = guardian_of_minh(client)
    guardian.post(link, {"action": "erase"})  # unconfirmed: nothing happens
    assert User.objects.get(pk=minh.pk).is_active
    response = guardian.post(link, {"action": "erase", "confirm": "yes"})
    assert "dữ liệu cá nhân của em đã được xóa" in response.content.decode()
    erased = User.objects.get(pk=minh.pk)
    assert not erased.is_active and erased.full_name == "—" and "minh" not in erased.email
    assert erased.personal_data.date_of_birth is None and erased.personal_data.guardian_email == ""
    seat.refresh_from_db()
    assert seat.status == SeatStatus.CANCELLED
    assert guardian.get(link).status_code == 400  # the link is spent


# --- accounts older than the consent question --------------------------------------------

@pytest.mark.django_db
def test_an_account_older_than_consent_is_asked_at_login_and_cannot_book_until_it_answers(client):
    old = factories.LearnerFactory(email="cu@example.vn", full_name="Võ Văn Cũ", consented=False)
    session = factories.SessionFactory()
    assert privacy.consents_to(old, Purpose.BOOKINGS) is None
    assert privacy.may_send(old, "seat_confirmed")  # essential mail still reaches them
    with pytest.raises(PermissionDenied) as refusal:
        courses.book_seat(session.pk, old)
    assert refusal.value.code == "consent_needed"  # never silently treated as consenting

    response = client.post("/accounts/login/", {"username": "cu@example.vn", "password": factories.TEST_PASSWORD})
    assert response["Location"] == "/privacy/confirm/"
    for page in ("/privacy/confirm/", "/accounts/profile/", "/courses/", "/privacy/export/"):
        assert client.get(page).status_code == 200, page  # nothing crashes for them
    assert "chưa có sự đồng ý về dữ liệu cá nhân" in client.get("/accounts/profile/").content.decode()
    response = client.post(f"/courses/sessions/{session.pk}/book/", follow=True)
    assert not session.bookings.exists()
    assert "hãy cho chúng tôi biết ngày sinh của bạn" in response.content.decode()

    response = client.post("/privacy/confirm/", {"date_of_birth": years_ago(30).isoformat()})
    assert response.status_code == 400 and not Consent.objects.filter(user=old).exists()
    client.post("/privacy/confirm/", {"date_of_birth": years_ago(30).isoformat(), "consent_bookings": "on"})
    consent = Consent.objects.get(user=old, purpose="bookings")
    assert consent.granted and consent.channel == "login"
    assert privacy.personal_data(old).date_of_birth == years_ago(30)
    assert courses.book_seat(session.pk, old).booking.status == SeatStatus.CONFIRMED
    assert client.get("/privacy/confirm/")["Location"] == "/accounts/profile/"  # asked once


@pytest.mark.django_db
def test_an_old_account_of_a_child_is_held_until_the_guardian_confirms(client):
    old = factories.LearnerFactory(email="be.cu@example.vn", consented=False)
    client.force_login(old)
    client.post("/privacy/confirm/", {"date_of_birth": years_ago(11).isoformat(), "consent_bookings": "on",
                                      "child_agrees": "on", "guardian_name": "Võ Thị Mẹ",
                                      "guardian_email": "me.cu@example.vn", "guardian_relation": "mẹ"})
    assert privacy.awaits_guardian(old)
    assert any(m.to == ["me.cu@example.vn"] for m in mail.outbox)
    with pytest.raises(PermissionDenied) as refusal:
        courses.book_seat(factories.SessionFactory().pk, old)
    assert refusal.value.code == "guardian_consent_pending"


# --- 6. access log ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_coordinator_reading_a_roster_with_contacts_is_logged_and_a_technician_is_not(
        learner, technician, coordinator, lab, admin_user):
    session = factories.SessionFactory(course__lab=lab, lab=lab)
    factories.SeatBookingFactory(session=session, learner=learner)
    path = f"/courses/manage/sessions/{session.pk}/roster/"
    assert client_for(technician).get(path).status_code == 200
    assert not AccessLogEntry.objects.exists()  # names only: nothing personal beyond the booking
    assert learner.email in client_for(coordinator).get(path).content.decode()
    entry = AccessLogEntry.objects.get()
    assert (entry.viewer, entry.subject, entry.what, entry.context) == (
        coordinator, learner, "roster_contacts", f"session {session.pk}")
    admin = client_for(admin_user)
    listing = admin.get(f"/admin/privacy/accesslogentry/?subject__id__exact={learner.pk}").content.decode()
    assert coordinator.full_name in listing
    assert admin.get(f"/admin/privacy/accesslogentry/{entry.pk}/delete/").status_code == 403


@pytest.mark.django_db
def test_an_administrator_opening_a_learners_record_is_logged(learner, admin_user):
    admin = client_for(admin_user)
    page = admin.get(f"/admin/accounts/user/{learner.pk}/change/").content.decode()
    assert learner.email in page
    entry = AccessLogEntry.objects.get()
    assert (entry.viewer, entry.subject, entry.what) == (admin_user, learner, "profile")
    # From the record, the learner's access log and a copy of their data are one click away.
    assert f"/admin/privacy/accesslogentry/?subject__id__exact={learner.pk}" in page
    assert f"/privacy/learners/{learner.pk}/export/" in page
    admin.get(f"/admin/accounts/user/{admin_user.pk}/change/")  # one's own record: not logged
    assert AccessLogEntry.objects.count() == 1


# --- least data at the door -----------------------------------------------------------------------

@pytest.mark.django_db
def test_the_technician_at_the_door_sees_names_and_bookings_but_no_phone_number(technician, lab):
    pupil = factories.LearnerFactory(full_name="Võ Thị Hạnh", phone="0987654321")
    # Under way (begun minutes ago), so on today's list at any hour: one starting in half an hour would be
    # tomorrow's in the last half hour of the local day.
    begun = timezone.now() - timedelta(minutes=10)
    factories.SeatBookingFactory(learner=pupil, session__start=begun, session__end=begun + timedelta(hours=2),
                                 session__course__lab=lab, session__lab=lab)
    machine = factories.MachineFactory(lab=lab)
    factories.ReservationFactory(user=pupil, machine=machine, start=begun, end=begun + timedelta(hours=1))
    page = client_for(technician).get(f"/booking/labs/{lab.slug}/scanner/").content.decode()
    assert page.count("Võ Thị Hạnh") >= 2  # the seat and the reservation
    assert "0987654321" not in page and pupil.email not in page


@pytest.mark.django_db
def test_the_door_list_over_the_api_carries_a_phone_number_for_coordinators_only(technician, coordinator, lab):
    pupil = factories.LearnerFactory(full_name="Võ Thị Hạnh", phone="0987654321")
    begun = timezone.now() - timedelta(minutes=10)  # on today's list at any hour (see above)
    factories.SeatBookingFactory(learner=pupil, session__start=begun, session__end=begun + timedelta(hours=2),
                                 session__course__lab=lab, session__lab=lab)
    path = f"/api/booking/labs/{lab.slug}/door"
    at_the_door = client_for(technician).get(path, {"q": "4321"}).json()  # still found by phone
    assert [(row["person"], row["phone"]) for row in at_the_door] == [("Võ Thị Hạnh", "")]
    assert client_for(coordinator).get(path).json()[0]["phone"] == "0987654321"


@pytest.mark.django_db
def test_a_child_cannot_name_their_own_address_as_the_guardians(client):
    response = child_sign_up(client, guardian_email="minh@example.vn")
    assert "Email của cha mẹ hoặc người giám hộ phải khác email của em." in response.content.decode()
    assert not User.objects.filter(email="minh@example.vn").exists()


@pytest.mark.django_db
def test_a_waiting_pupil_can_send_the_guardians_link_again_but_not_endlessly(client):
    child_sign_up(client)
    assert "Gửi lại email cho cha mẹ hoặc người giám hộ" in client.get("/accounts/profile/").content.decode()
    mail.outbox.clear()
    answers = [client.post("/privacy/guardian-resend/", follow=True).content.decode() for _ in range(6)]
    assert "Đã gửi lại email tới mai@example.vn." in answers[0]
    assert "Chúng tôi vừa gửi email nhiều lần" in answers[-1]
    letters = [m for m in mail.outbox if m.to == ["mai@example.vn"]]
    assert 1 <= len(letters) < 6


@pytest.mark.django_db
def test_erasure_also_scrubs_the_admins_history_of_the_learners_records(lan_with_history, admin_user):
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    seat = lan_with_history.seat_bookings.get()
    for obj in (lan_with_history, seat, lan_with_history.reservations.get()):
        LogEntry.objects.create(user=admin_user, content_type=ContentType.objects.get_for_model(obj),
                                object_id=str(obj.pk), object_repr=str(obj)[:200], action_flag=CHANGE,
                                change_message="[]")
    assert LogEntry.objects.filter(object_repr__contains="Nguyễn Thị Lan").count() == 3
    privacy.erase(lan_with_history)
    assert not LogEntry.objects.filter(object_repr__contains="Nguyễn Thị Lan").exists()
    assert not LogEntry.objects.filter(object_repr__contains="lan@example.vn").exists()
    assert LogEntry.objects.count() == 3  # what was done, and by whom, stays


@pytest.mark.django_db
def test_the_profile_shows_the_privacy_section_once_and_a_plain_title(learner):
    from tests.conftest import client_for as _client_for

    page = _client_for(learner).get("/accounts/profile/").content.decode()
    title = page[page.index("<title>") + 7:page.index("</title>")]
    assert "<" not in title
    assert page.count('id="privacy-heading"') == 1
