"""The live machines board: states in words in the reader's language, who holds a machine (a name, as the
lab's machines page shows it; no contact details), hours to maintenance, and an update that needs no reload."""

import re

import pytest
from django.utils import timezone

from fablab_ops.booking.models import MachineDesiredState
from fablab_ops.machines.models import MachineLiveStatus
from tests import factories
from tests.conftest import client_for

VISIBLE_TEXT = re.compile(r">([^<>]+)<")


@pytest.fixture
def busy_lab(lab):
    holder = factories.LearnerFactory(full_name="Võ Minh Khoa", email="khoa@example.vn")
    for slug, state in (("laser", "running"), ("cnc", "idle"), ("printer", "off"), ("lathe", "error")):
        machine = factories.MachineFactory(lab=lab, slug=slug, name=f"Máy {slug}", maintenance_interval_hours=200)
        MachineLiveStatus.objects.create(machine=machine, online=True, state=state, last_seen_at=timezone.now())
        if slug == "laser":
            MachineDesiredState.objects.create(machine=machine, version=1, holder_name=holder.full_name,
                                               holder_user=holder)
    return lab


def words(page: str) -> set[str]:
    return {text.strip() for text in VISIBLE_TEXT.findall(page) if text.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "labels"), [
    ("vi", {"Đang chạy", "Đang chờ", "Đã tắt", "Lỗi"}),
    ("en", {"Running", "Idle", "Off", "Error"}),
])
def test_the_board_names_each_machines_state_in_words_never_the_devices_value(technician, busy_lab, language,
                                                                              labels):
    client = client_for(technician)
    client.cookies["django_language"] = language
    page = client.get("/machines/live/board/").content.decode()
    seen = words(page)
    assert labels <= seen
    assert not {"running", "idle", "off", "error"} & seen


@pytest.mark.django_db
def test_the_board_shows_the_holders_name_but_no_contact_details(technician, busy_lab):
    page = client_for(technician).get("/machines/live/").content.decode()
    assert "Võ Minh Khoa" in page and "khoa@example.vn" not in page
    assert "200,0 giờ chạy" in page  # hours left to maintenance on a machine that has not run yet


@pytest.mark.django_db
def test_the_page_updates_from_its_script_and_no_longer_reloads_itself(technician, busy_lab):
    page = client_for(technician).get("/machines/live/").content.decode()
    assert 'http-equiv="refresh"' not in page
    assert re.search(r'<script src="[^"]*js/live\.js" defer></script>', page)
    assert 'aria-live="polite"' in page and 'data-source="/machines/live/board/"' in page
    board = client_for(technician).get("/machines/live/board/")
    assert board["Cache-Control"] == "no-store" and "<html" not in board.content.decode()
