"""Revoking a certification asks once more and says what will happen: the learner can no longer reserve,
and a machine they are using now switches off."""

from datetime import timedelta

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.booking.models import MachineDesiredState, ReservationStatus
from fablab_ops.door import services as door
from tests import factories
from tests.conftest import client_for


@pytest.fixture
def laser(lab):
    return factories.MachineFactory(lab=lab, name="Máy cắt laser CO2", has_interlock=True,
                                    machine_type=factories.MachineTypeFactory(slug="laser", name_vi="Máy cắt laser"))


@pytest.fixture
def certification(learner, laser):
    return factories.CertificationFactory(user=learner, machine_type=laser.machine_type)


@pytest.mark.django_db
def test_the_list_no_longer_revokes_in_one_tap_but_leads_to_the_confirmation(certification, technician):
    client = client_for(technician)
    listing = client.get("/booking/certifications/", {"q": "Nguyễn Thị Lan"}).content.decode()
    assert f"/booking/certifications/{certification.pk}/revoke/" in listing
    response = client.post("/booking/certifications/", {"revoke": certification.pk, "reason": "Vi phạm an toàn"})
    assert response.status_code == 302
    assert response["Location"] == f"/booking/certifications/{certification.pk}/revoke/"
    certification.refresh_from_db()
    assert certification.revoked_at is None


@pytest.mark.django_db
def test_the_confirmation_says_what_will_happen_and_changes_nothing(certification, technician, laser, learner):
    now = timezone.now().replace(microsecond=0)
    factories.ReservationFactory(machine=laser, user=learner, start=now + timedelta(days=2),
                                 end=now + timedelta(days=2, hours=1))
    page = client_for(technician).get(f"/booking/certifications/{certification.pk}/revoke/").content.decode()
    assert "Thu hồi quyền sử dụng Máy cắt laser của Nguyễn Thị Lan?" in page
    assert "không thể đặt loại máy này" in page
    assert "máy sẽ tắt ngay (hiện không có)" in page
    assert "1 lượt đặt máy sắp tới vẫn giữ" in page
    certification.refresh_from_db()
    assert certification.revoked_at is None


@pytest.mark.django_db
def test_confirming_with_a_reason_revokes_and_switches_off_the_machine_in_use(certification, technician, laser,
                                                                                learner):
    now = timezone.now().replace(microsecond=0)
    using = factories.ReservationFactory(machine=laser, user=learner, start=now - timedelta(minutes=5),
                                         end=now + timedelta(hours=1))
    door.check_in_manually("reservation", using.pk, lab=laser.lab, by=technician)
    assert MachineDesiredState.objects.get(machine=laser).holder_name == "Nguyễn Thị Lan"
    client = client_for(technician)
    url = f"/booking/certifications/{certification.pk}/revoke/"
    page = client.get(url).content.decode()
    assert "Học viên đang dùng Máy cắt laser CO2 (BIIC): máy sẽ tắt ngay." in page

    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 200 and "Cần ghi lý do khi thu hồi quyền." in refused.content.decode()
    certification.refresh_from_db()
    assert certification.revoked_at is None

    done = client.post(url, {"reason": "Vận hành không an toàn"}, follow=True)
    assert "Đã thu hồi quyền sử dụng Máy cắt laser của Nguyễn Thị Lan." in done.content.decode()
    certification.refresh_from_db()
    assert (certification.revoked_by, certification.revoke_reason) == (technician, "Vận hành không an toàn")
    assert MachineDesiredState.objects.get(machine=laser).holder_name is None
    assert Notification.objects.filter(user=learner, kind="certification_revoked").count() == 1
    using.refresh_from_db()
    assert using.status == ReservationStatus.CHECKED_IN


@pytest.mark.django_db
def test_only_a_certifier_of_the_type_sees_the_confirmation(certification, other_lab, learner, coordinator):
    outsider = factories.TechnicianFactory(labs=[other_lab])  # their lab does not teach the laser
    for user in (outsider, learner):
        response = client_for(user).get(f"/booking/certifications/{certification.pk}/revoke/")
        assert response.status_code == 403
        assert "Nguyễn Thị Lan" not in response.content.decode()
        assert client_for(user).post(f"/booking/certifications/{certification.pk}/revoke/",
                                     {"reason": "thử"}).status_code == 403
    certification.refresh_from_db()
    assert certification.revoked_at is None
    assert client_for(coordinator).get(f"/booking/certifications/{certification.pk}/revoke/").status_code == 200
    assert client_for(coordinator).get("/booking/certifications/999999/revoke/").status_code == 404


@pytest.mark.django_db
def test_a_revoked_certification_says_so_instead_of_asking(certification, technician):
    client = client_for(technician)
    client.post(f"/booking/certifications/{certification.pk}/revoke/", {"reason": "Vi phạm an toàn"})
    page = client.get(f"/booking/certifications/{certification.pk}/revoke/").content.decode()
    assert "Chứng nhận này đã bị thu hồi." in page and 'name="reason"' not in page
