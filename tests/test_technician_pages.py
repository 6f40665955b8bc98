"""A lab's technicians do their daily work in the product's own pages: machines and alerts, maintenance,
quarantined telemetry, the day's no-shows and refused scans; coordinators too, for every lab.

Each page is opened as its lab's technician (works), another lab's technician (403, nothing of the lab
shown), a learner (403) and a coordinator (works).
"""

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.booking import services as booking
from fablab_ops.booking.models import CheckInOutcome, CheckInRecord, MachineDesiredState, ReservationStatus
from fablab_ops.courses.models import SeatStatus
from fablab_ops.machines import services
from fablab_ops.machines.models import (
    AlertKind,
    MachineAlert,
    MachineLiveStatus,
    MaintenanceLog,
    MaintenanceWindow,
    QuarantinedMessage,
)
from fablab_ops.notifications import render
from tests import factories
from tests.conftest import client_for

SECRET_NAME = "Đặng Thị Bí Mật"


def local(day_offset: int, hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() + timedelta(days=day_offset)
    return datetime.combine(day, datetime.min.time(), timezone.get_default_timezone()).replace(hour=hour,
                                                                                                minute=minute)


@pytest.fixture
def laser(lab):
    return factories.MachineFactory(lab=lab, slug="laser-01", name="Máy cắt laser CO2",
                                    machine_type=factories.MachineTypeFactory(slug="laser", name_vi="Máy cắt laser"),
                                    maintenance_interval_hours=10)


@pytest.fixture
def alert(laser):
    return MachineAlert.objects.create(machine=laser, kind=AlertKind.OFFLINE, raised_at=timezone.now(),
                                       detail="Máy mất kết nối từ 08:00")


@pytest.fixture
def outsider(other_lab):
    return factories.TechnicianFactory(labs=[other_lab], full_name="Kỹ Thuật EIU")


def pages(lab):
    return [
        f"/machines/labs/{lab.slug}/",
        f"/machines/labs/{lab.slug}/maintenance/",
        f"/machines/labs/{lab.slug}/quarantine/",
        f"/booking/labs/{lab.slug}/absences/",
    ]


@pytest.fixture
def busy_lab(lab, laser, alert):
    """Something of the lab on every page, under a name that must not reach anyone else."""
    holder = factories.LearnerFactory(full_name=SECRET_NAME)
    factories.ReservationFactory(machine=laser, user=holder, start=local(0, 0, 1), end=local(0, 0, 31),
                                 status=ReservationStatus.NO_SHOW)
    QuarantinedMessage.objects.create(received_at=timezone.now(), topic=f"fablab/{lab.slug}/laser-01/state",
                                      payload=json.dumps({"holder": SECRET_NAME}), payload_size=40, reason="bad_json",
                                      detail="Expecting value")
    return lab


# --- who may open what ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_labs_technician_and_a_coordinator_open_every_page_of_the_lab(busy_lab, technician, coordinator):
    for user in (technician, coordinator):
        client = client_for(user)
        for url in pages(busy_lab):
            response = client.get(url)
            assert response.status_code == 200, (user.role, url)
    assert SECRET_NAME in client_for(technician).get(pages(busy_lab)[3]).content.decode()


@pytest.mark.django_db
def test_another_labs_technician_and_a_learner_are_refused_and_see_nothing_of_the_lab(busy_lab, outsider, learner,
                                                                                       alert):
    for user in (outsider, learner):
        client = client_for(user)
        for url in pages(busy_lab):
            response = client.get(url)
            assert response.status_code == 403, (user.role, url)
            body = response.content.decode()
            assert SECRET_NAME not in body and "laser-01" not in body and "Máy cắt laser CO2" not in body
        for url in (f"/machines/labs/{busy_lab.slug}/alerts/{alert.pk}/acknowledge/",
                    f"/machines/labs/{busy_lab.slug}/alerts/{alert.pk}/resolve/",
                    f"/machines/labs/{busy_lab.slug}/machines/laser-01/maintenance-done/"):
            assert client.post(url, {"note": "x"}).status_code == 403, (user.role, url)
        assert client.post(f"/machines/labs/{busy_lab.slug}/maintenance/", {
            "step": "confirm", "machine": "laser-01", "start": "2030-01-01T09:00", "end": "2030-01-01T10:00",
            "reason": "x"}).status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.resolved_at is None
    assert not MaintenanceLog.objects.exists() and not MaintenanceWindow.objects.exists()


@pytest.mark.django_db
def test_an_alert_of_another_lab_cannot_be_reached_through_ones_own_lab(lab, other_lab, outsider, alert):
    client = client_for(outsider)
    response = client.post(f"/machines/labs/{other_lab.slug}/alerts/{alert.pk}/acknowledge/", {"note": "xem"})
    assert response.status_code == 404
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


@pytest.mark.django_db
def test_an_unknown_lab_is_not_found(technician):
    assert client_for(technician).get("/machines/labs/khong-co/").status_code == 404


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_log_in(lab):
    from django.test import Client

    response = Client().get(f"/machines/labs/{lab.slug}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- the machines page: state, desired state, alerts ----------------------------------------------

@pytest.mark.django_db
def test_the_machines_page_shows_state_desired_state_and_open_alerts(lab, laser, alert, technician):
    MachineLiveStatus.objects.create(machine=laser, online=True, state="running", last_seen_at=timezone.now(),
                                     desired_applied_v=3)
    MachineDesiredState.objects.create(machine=laser, version=4, published_version=3, holder_name="Nguyễn Thị Lan",
                                       until=local(0, 16))
    page = client_for(technician).get(f"/machines/labs/{lab.slug}/").content.decode()
    assert "Máy cắt laser CO2" in page and "Đang chạy" in page
    assert "Nguyễn Thị Lan" in page and "đến 16:00" in page
    assert "Phiên bản 4 · đã gửi 3 · máy đã áp dụng 3" in page and "Chưa gửi tới máy" in page
    assert "Máy mất kết nối từ 08:00" in page and f"/alerts/{alert.pk}/acknowledge/" in page


@pytest.mark.django_db
def test_acknowledging_an_alert_records_who_when_and_the_note_and_keeps_it_open(lab, alert, technician):
    client = client_for(technician)
    assert client.post(f"/machines/labs/{lab.slug}/alerts/{alert.pk}/acknowledge/", {"note": " "},
                       follow=True).status_code == 200
    alert.refresh_from_db()
    assert alert.acknowledged_at is None  # a note is required
    before = timezone.now()
    response = client.post(f"/machines/labs/{lab.slug}/alerts/{alert.pk}/acknowledge/",
                           {"note": "Đang kiểm tra cáp mạng"}, follow=True)
    assert "Đã tiếp nhận cảnh báo" in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == technician and alert.acknowledged_at >= before
    assert alert.acknowledgement_note == "Đang kiểm tra cáp mạng" and alert.resolved_at is None
    assert "Đang kiểm tra cáp mạng" in response.content.decode()


@pytest.mark.django_db
def test_resolving_an_alert_records_who_when_and_the_note(lab, alert, coordinator):
    client = client_for(coordinator)
    response = client.post(f"/machines/labs/{lab.slug}/alerts/{alert.pk}/resolve/",
                           {"note": "Thay công tắc mạng"}, follow=True)
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.resolved_by == coordinator and alert.resolved_at is not None
    assert alert.resolution_note == "Thay công tắc mạng"
    page = response.content.decode()
    assert "Không có cảnh báo nào đang mở." in page and "Thay công tắc mạng" in page  # under the recent ones
    again = client.post(f"/machines/labs/{lab.slug}/alerts/{alert.pk}/resolve/", {"note": ""}, follow=True)
    assert "Cảnh báo này đã được xử lý." in again.content.decode()


@pytest.mark.django_db
def test_maintenance_due_is_closed_by_recording_the_maintenance_not_by_hand(lab, laser, technician):
    due = MachineAlert.objects.create(machine=laser, kind=AlertKind.MAINTENANCE_DUE, raised_at=timezone.now())
    response = client_for(technician).post(f"/machines/labs/{lab.slug}/alerts/{due.pk}/resolve/", follow=True)
    assert "Hãy ghi nhận bảo trì đã làm" in response.content.decode()
    due.refresh_from_db()
    assert due.resolved_at is None


@pytest.mark.django_db
def test_recording_maintenance_resets_the_hours_counter_and_closes_maintenance_due(lab, laser, technician):
    factories.UsageSessionFactory(machine=laser, start=timezone.now() - timedelta(hours=13),
                                  end=timezone.now() - timedelta(hours=1))
    MachineLiveStatus.objects.create(machine=laser, maintenance_due=True)
    due = MachineAlert.objects.create(machine=laser, kind=AlertKind.MAINTENANCE_DUE, raised_at=timezone.now())
    assert services.running_hours_since_maintenance(laser) == pytest.approx(12, abs=0.01)
    client = client_for(technician)
    assert "12,0 / 10" in client.get(f"/machines/labs/{lab.slug}/").content.decode()

    response = client.post(f"/machines/labs/{lab.slug}/machines/{laser.slug}/maintenance-done/",
                           {"note": "Vệ sinh gương, căn chỉnh tia"}, follow=True)
    page = response.content.decode()
    assert "Đã ghi nhận bảo trì" in page and "0,0 / 10" in page
    assert services.running_hours_since_maintenance(laser) == 0
    log = MaintenanceLog.objects.get(machine=laser)
    assert (log.by, log.note, log.running_hours) == (technician, "Vệ sinh gương, căn chỉnh tia", 12.0)
    due.refresh_from_db()
    assert due.resolved_at is not None and due.resolved_by == technician
    assert not MachineLiveStatus.objects.get(machine=laser).maintenance_due


@pytest.mark.django_db
def test_recording_maintenance_needs_a_note(lab, laser, technician):
    response = client_for(technician).post(f"/machines/labs/{lab.slug}/machines/{laser.slug}/maintenance-done/",
                                           {"note": ""}, follow=True)
    assert "Hãy ghi lại công việc bảo trì đã làm." in response.content.decode()
    assert not MaintenanceLog.objects.exists()


# --- planning a maintenance window ---------------------------------------------------------------

@pytest.mark.django_db
def test_the_preview_lists_the_hit_reservations_before_saving_and_their_holders_are_told_after(lab, laser,
                                                                                                 technician):
    hit_holder = factories.LearnerFactory(full_name="Võ Minh Khoa")
    spared_holder = factories.LearnerFactory(full_name="Hồ Thị Ngọc")
    hit = factories.ReservationFactory(machine=laser, user=hit_holder, start=local(2, 10), end=local(2, 11))
    spared = factories.ReservationFactory(machine=laser, user=spared_holder, start=local(2, 14), end=local(2, 15))
    day = local(2, 9).strftime("%Y-%m-%d")
    form = {"machine": laser.slug, "start": f"{day}T09:00", "end": f"{day}T12:00", "reason": "Thay ống laser"}
    client = client_for(technician)

    preview = client.post(f"/machines/labs/{lab.slug}/maintenance/", {**form, "step": "preview"})
    page = preview.content.decode()
    assert preview.status_code == 200
    assert "Võ Minh Khoa" in page and "Hồ Thị Ngọc" not in page and "1 lượt đặt máy bị trùng" in page
    assert not MaintenanceWindow.objects.exists()  # nothing saved yet
    assert not Notification.objects.filter(kind="reservation_maintenance").exists()
    assert 'name="step" value="confirm"' in page and 'value="Thay ống laser"' in page

    done = client.post(f"/machines/labs/{lab.slug}/maintenance/", {**form, "step": "confirm"}, follow=True)
    assert "đã báo cho 1 người" in done.content.decode()
    window = MaintenanceWindow.objects.get()
    assert (window.machine, window.start, window.end, window.created_by) == (laser, local(2, 9), local(2, 12),
                                                                             technician)
    hit.refresh_from_db()
    spared.refresh_from_db()
    assert hit.maintenance_conflict and not spared.maintenance_conflict
    assert list(Notification.objects.filter(kind="reservation_maintenance").values_list("user", flat=True)) == [
        hit_holder.pk]
    assert "Thay ống laser" in client.get(f"/machines/labs/{lab.slug}/").content.decode()


@pytest.mark.django_db
def test_a_window_ending_before_it_starts_is_refused_on_the_form(lab, laser, technician):
    day = local(2, 9).strftime("%Y-%m-%d")
    response = client_for(technician).post(f"/machines/labs/{lab.slug}/maintenance/", {
        "machine": laser.slug, "start": f"{day}T12:00", "end": f"{day}T09:00", "reason": "x", "step": "preview"})
    assert response.status_code == 200 and "Giờ kết thúc phải sau giờ bắt đầu." in response.content.decode()
    assert not MaintenanceWindow.objects.exists()


@pytest.mark.django_db
def test_another_labs_machine_cannot_be_planned_from_ones_own_lab(lab, other_lab, outsider, laser):
    response = client_for(outsider).post(f"/machines/labs/{other_lab.slug}/maintenance/", {
        "machine": laser.slug, "start": "2030-01-01T09:00", "end": "2030-01-01T10:00", "reason": "x",
        "step": "confirm"})
    assert response.status_code == 200 and not MaintenanceWindow.objects.exists()  # not a choice of that lab


@pytest.mark.django_db
def test_a_holder_using_the_machine_now_is_shown_and_told_too(lab, laser, technician):
    now = timezone.now().replace(microsecond=0)
    using = factories.ReservationFactory(machine=laser, start=now - timedelta(minutes=10), end=now + timedelta(hours=1),
                                         status=ReservationStatus.CHECKED_IN, checked_in_at=now)
    hits = booking.preview_maintenance(laser, now + timedelta(minutes=5), now + timedelta(hours=2), by=technician)
    assert hits == [using]
    booking.schedule_maintenance(laser, now + timedelta(minutes=5), now + timedelta(hours=2), reason="Khẩn",
                                 by=technician)
    assert Notification.objects.filter(user=using.user, kind="reservation_maintenance").exists()


# --- quarantined telemetry -----------------------------------------------------------------------

@pytest.mark.django_db
def test_quarantine_shows_the_labs_messages_with_reasons_and_escapes_the_payload(lab, other_lab, technician):
    QuarantinedMessage.objects.create(received_at=timezone.now(), topic=f"fablab/{lab.slug}/laser-01/state",
                                      payload='<script>alert("x")</script>', payload_size=29, reason="bad_json",
                                      detail="Expecting value")
    QuarantinedMessage.objects.create(received_at=timezone.now(), topic=f"fablab/{other_lab.slug}/cnc/state",
                                      payload="eiu-only", payload_size=8, reason="unknown_machine")
    QuarantinedMessage.objects.create(received_at=timezone.now(), topic=f"fablab/{lab.slug}x/laser/state",
                                      payload="lookalike-lab", payload_size=13, reason="unknown_machine")
    page = client_for(technician).get(f"/machines/labs/{lab.slug}/quarantine/").content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert '<script>alert("x")</script>' not in page
    assert "bad_json" in page and "Expecting value" in page
    assert "eiu-only" not in page and "lookalike-lab" not in page


@pytest.mark.django_db
def test_quarantine_is_paginated_and_filtered_by_reason(lab, technician):
    now = timezone.now()
    QuarantinedMessage.objects.bulk_create([
        QuarantinedMessage(received_at=now - timedelta(seconds=i), topic=f"fablab/{lab.slug}/m/state",
                           payload=f"payload-{i:03d}", payload_size=11, reason="bad_json" if i % 2 else "too_large")
        for i in range(60)])
    client = client_for(technician)
    first = client.get(f"/machines/labs/{lab.slug}/quarantine/").content.decode()
    assert "payload-000" in first and "payload-024" in first and "payload-025" not in first and "Trang 1/3" in first
    third = client.get(f"/machines/labs/{lab.slug}/quarantine/", {"page": 3}).content.decode()
    assert "payload-059" in third
    odd = client.get(f"/machines/labs/{lab.slug}/quarantine/", {"reason": "bad_json"}).content.decode()
    assert "payload-001" in odd and "payload-000" not in odd
    assert client.get(f"/machines/labs/{lab.slug}/quarantine/", {"page": "x<", "reason": "zz"}).status_code == 200


# --- the day's no-shows, late arrivals and refused scans -----------------------------------------

@pytest.mark.django_db
def test_the_days_no_shows_late_arrivals_and_refused_scans(lab, other_lab, laser, technician):
    now = timezone.now().replace(microsecond=0)
    today = timezone.localdate()
    start_of_day = datetime.combine(today, datetime.min.time(), timezone.get_default_timezone())
    early = max(start_of_day, now - timedelta(hours=3))
    released = factories.ReservationFactory(machine=laser, start=early, end=early + timedelta(minutes=30),
                                            user=factories.LearnerFactory(full_name="Phan Văn Vắng"),
                                            status=ReservationStatus.NO_SHOW)
    came_late = factories.ReservationFactory(machine=laser, start=early + timedelta(minutes=30),
                                             end=early + timedelta(minutes=60),
                                             user=factories.LearnerFactory(full_name="Lý Thị Muộn"),
                                             status=ReservationStatus.COMPLETED,
                                             checked_in_at=early + timedelta(minutes=47))
    session = factories.SessionFactory(course__lab=lab, lab=lab, course__title_vi="Arduino cơ bản",
                                       start=early, end=early + timedelta(hours=4))
    factories.SeatBookingFactory(session=session, learner=factories.LearnerFactory(full_name="Trịnh Văn Chưa Đến"))
    factories.SeatBookingFactory(session=session, learner=factories.LearnerFactory(full_name="Mai Thị Đúng Giờ"),
                                 status=SeatStatus.ATTENDED, checked_in_at=early)
    elsewhere = factories.MachineFactory(lab=other_lab)
    factories.ReservationFactory(machine=elsewhere, start=early, end=early + timedelta(minutes=30),
                                 user=factories.LearnerFactory(full_name="Người Lab Khác"),
                                 status=ReservationStatus.NO_SHOW)
    CheckInRecord.objects.create(at=now, lab=lab, by=technician, outcome=CheckInOutcome.REFUSED, reason="no_show",
                                 method="qr", reservation=released)
    CheckInRecord.objects.create(at=now, lab=lab, by=technician, outcome=CheckInOutcome.REFUSED, reason="wrong_lab",
                                 method="qr")
    CheckInRecord.objects.create(at=now, lab=other_lab, by=technician, outcome=CheckInOutcome.REFUSED,
                                 reason="invalid_token", method="qr")

    page = client_for(technician).get(f"/booking/labs/{lab.slug}/absences/").content.decode()
    no_shows = page.split('id="no-shows"')[1].split('id="late"')[0]
    late = page.split('id="late"')[1].split('id="refused"')[0]
    refused = page.split('id="refused"')[1]
    assert "Phan Văn Vắng" in no_shows and "Trịnh Văn Chưa Đến" in no_shows
    assert "Mai Thị Đúng Giờ" not in no_shows and "Người Lab Khác" not in page
    assert "Lý Thị Muộn" in late and "muộn 17 phút" in late and came_late.machine.name in late
    assert "Lượt đặt máy đã bị hủy vì không đến đúng giờ." in refused and "Phan Văn Vắng" in refused
    assert "Vé này dành cho phòng lab khác." in refused
    assert "invalid_token" not in refused  # another lab's door


@pytest.mark.django_db
def test_another_day_is_chosen_with_the_day_parameter(lab, technician):
    response = client_for(technician).get(f"/booking/labs/{lab.slug}/absences/", {"day": "2026-01-05"})
    assert response.status_code == 200 and "05/01/2026" in response.content.decode()
    assert client_for(technician).get(f"/booking/labs/{lab.slug}/absences/", {"day": "9999-99-99"}).status_code == 200


# --- the alert e-mail and the menu ---------------------------------------------------------------

@pytest.mark.django_db
def test_the_alert_email_links_to_the_labs_machines_page(lab, laser, alert, technician, settings):
    settings.SITE_URL = "https://fablab.binhduong.example"
    for language in ("vi", "en"):
        _subject, body = render("machine_alert", language, {"user": technician, "alert": alert, "machine": laser})
        assert f"https://fablab.binhduong.example/machines/labs/{lab.slug}/#machine-laser-01" in body


@pytest.mark.django_db
def test_the_menu_shows_a_technician_their_labs_pages_only(lab, other_lab, technician, learner, coordinator):
    page = client_for(technician).get("/courses/").content.decode()
    assert f'href="/machines/labs/{lab.slug}/"' in page and f"/machines/labs/{other_lab.slug}/" not in page
    assert "/admin/" not in page
    idle = factories.TechnicianFactory()  # staffs no lab yet: nothing to open
    assert "/machines/labs/" not in client_for(idle).get("/courses/").content.decode()
    assert "/machines/live/" not in client_for(idle).get("/courses/").content.decode()
    assert "/machines/labs/" not in client_for(learner).get("/courses/").content.decode()
    overview = client_for(coordinator).get("/machines/live/").content.decode()
    assert f"/machines/labs/{lab.slug}/" in overview and f"/machines/labs/{other_lab.slug}/" in overview


@pytest.mark.django_db
def test_the_pages_speak_english_on_request(lab, laser, alert, technician):
    client = client_for(technician)
    for url in pages(lab):
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert 'lang="en"' in page
    page = client.get(f"/machines/labs/{lab.slug}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Acknowledge" in page and "Schedule maintenance" in page and "Machines of" in page
    assert 'aria-current="page">Machines</a>' in page


@pytest.mark.django_db
def test_an_alert_id_beyond_any_database_id_is_not_found_not_a_server_error(lab, technician):
    response = client_for(technician).post(f"/machines/labs/{lab.slug}/alerts/99999999999999999999999/resolve/",
                                           {"note": "x"})
    assert response.status_code == 404
