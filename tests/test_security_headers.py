"""Browsers are told what the pages may run and use; the menu offers only what the user may open."""

import re

import pytest

from tests.conftest import client_for
from tests.factories import AdminFactory

INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/courses/", "/accounts/login/", "/accounts/signup/", "/api/docs"])
def test_pages_forbid_inline_script_and_carry_none(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
    page = response.content.decode()
    assert not INLINE_HANDLER.search(page), INLINE_HANDLER.search(page)
    assert not INLINE_SCRIPT.search(page), INLINE_SCRIPT.search(page)


@pytest.mark.django_db
def test_only_the_door_scanner_may_use_the_camera(technician, lab):
    client = client_for(technician)
    assert "camera=()" in client.get("/courses/")["Permissions-Policy"]
    scanner = client.get(f"/booking/labs/{lab.slug}/scanner/")
    assert scanner.status_code == 200
    assert "camera=(self)" in scanner["Permissions-Policy"]


@pytest.mark.django_db
def test_the_menu_offers_the_admin_only_to_those_who_may_open_it(technician):
    assert "/admin/" not in client_for(technician).get("/courses/").content.decode()
    assert "/admin/" in client_for(AdminFactory()).get("/courses/").content.decode()


@pytest.mark.django_db
def test_the_alert_email_points_technicians_to_their_machines_page(technician, lab):
    from django.utils import timezone

    from fablab_ops.machines.models import MachineAlert
    from fablab_ops.notifications import render
    from tests.factories import MachineFactory

    machine = MachineFactory(lab=lab)
    alert = MachineAlert.objects.create(machine=machine, kind="offline", raised_at=timezone.now())
    for language in ("vi", "en"):
        _subject, body = render("machine_alert", language, {"user": technician, "alert": alert, "machine": machine})
        assert "quản trị" not in body.casefold() and "admin" not in body.casefold()
        assert f"/machines/labs/{lab.slug}/#machine-{machine.slug}" in body
