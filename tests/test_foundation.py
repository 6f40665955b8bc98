"""The foundation a user relies on: the schema refuses bad data, the admin works,
the API documents itself, the demo seeds reproducibly and production settings are safe."""

import importlib.util
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from openapi_spec_validator import validate

from fablab_ops.courses.models import SeatStatus
from fablab_ops.demo import data as demo
from fablab_ops.machines.models import OpeningHours
from tests import factories

ROOT = Path(__file__).resolve().parent.parent


def violates(build) -> bool:
    try:
        with transaction.atomic():
            build()
    except IntegrityError:
        return True
    return False


@pytest.mark.django_db
class TestTheDatabaseRefusesBadData:
    def test_a_learner_cannot_hold_two_seats_in_one_session(self, learner):
        booking = factories.SeatBookingFactory(learner=learner)
        assert violates(lambda: factories.SeatBookingFactory(session=booking.session, learner=learner))

    def test_a_learner_may_book_again_after_cancelling(self, learner):
        booking = factories.SeatBookingFactory(learner=learner, status=SeatStatus.CANCELLED)
        factories.SeatBookingFactory(session=booking.session, learner=learner)
        assert booking.session.bookings.count() == 2

    def test_two_waitlisted_learners_cannot_share_a_position(self):
        first = factories.SeatBookingFactory(status=SeatStatus.WAITLISTED, waitlist_position=1)
        assert violates(lambda: factories.SeatBookingFactory(
            session=first.session, status=SeatStatus.WAITLISTED, waitlist_position=1))

    def test_a_confirmed_seat_has_no_waiting_list_position(self):
        assert violates(lambda: factories.SeatBookingFactory(waitlist_position=3))

    def test_a_session_must_end_after_it_starts(self):
        start = timezone.now()
        assert violates(lambda: factories.SessionFactory(start=start, end=start))
        assert violates(lambda: factories.SessionFactory(start=start, end=start - timedelta(hours=1)))

    def test_a_reservation_must_end_after_it_starts(self):
        start = timezone.now()
        assert violates(lambda: factories.ReservationFactory(start=start, end=start - timedelta(minutes=5)))

    def test_arduino_class_capacity_range_must_contain_its_default(self):
        assert violates(lambda: factories.CourseFactory(min_capacity=15, default_capacity=25, max_capacity=20))
        assert violates(lambda: factories.CourseFactory(min_capacity=0, default_capacity=10, max_capacity=20))

    def test_a_session_capacity_outside_the_course_range_is_rejected_on_validation(self):
        from django.core.exceptions import ValidationError

        session = factories.SessionFactory.build(course=factories.CourseFactory(), capacity=25)
        with pytest.raises(ValidationError) as error:
            session.full_clean()
        assert "capacity" in error.value.message_dict

    def test_only_inductions_grant_certifications(self):
        assert violates(lambda: factories.CourseFactory(certifies=factories.MachineTypeFactory()))

    def test_one_active_certification_per_machine_type(self, learner):
        kind = factories.MachineTypeFactory()
        factories.CertificationFactory(user=learner, machine_type=kind)
        assert violates(lambda: factories.CertificationFactory(user=learner, machine_type=kind))

    def test_a_revoked_certification_needs_a_reason(self):
        assert violates(lambda: factories.CertificationFactory(revoked_at=timezone.now(), revoke_reason=""))

    def test_opening_hours_must_close_after_they_open(self, lab):
        from datetime import time

        assert violates(lambda: factories.OpeningHoursFactory(lab=lab, weekday=6, opens=time(17), closes=time(8)))

    def test_machine_slugs_are_unique_within_a_lab_only(self, lab, other_lab):
        factories.MachineFactory(lab=lab, slug="laser-01")
        factories.MachineFactory(lab=other_lab, slug="laser-01")
        assert violates(lambda: factories.MachineFactory(lab=lab, slug="laser-01"))


@pytest.mark.django_db
def test_every_admin_page_loads_for_every_model(admin_client):
    objects = [
        factories.LearnerFactory(), factories.LabFactory(), factories.MachineTypeFactory(),
        factories.MachineFactory(), factories.MaintenanceWindowFactory(), factories.CourseFactory(),
        factories.SessionFactory(), factories.SeatBookingFactory(), factories.ReservationFactory(),
        factories.CertificationFactory(), factories.ApiTokenFactory(), factories.OpeningHoursFactory(),
        factories.UsageSessionFactory(),
    ]
    by_model = {type(obj): obj for obj in objects}
    assert admin_client.get(reverse("admin:index")).status_code == 200  # the admin is loaded with the URLs
    # Every model made above has its admin, but opening hours, which are edited inline with their lab.
    assert {type(obj) for obj in objects} - set(admin.site._registry) == {OpeningHours}
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        base = f"admin:{meta.app_label}_{meta.model_name}"
        response = admin_client.get(reverse(f"{base}_changelist"), {"q": "a"})
        assert response.status_code == 200, (meta.label, "changelist")
        if model_admin.has_add_permission(response.wsgi_request):
            assert admin_client.get(reverse(f"{base}_add")).status_code == 200, (meta.label, "add")
        obj = by_model.get(model) or model.objects.first()
        if obj is not None:
            response = admin_client.get(reverse(f"{base}_change", args=[obj.pk]))
            assert response.status_code == 200, (meta.label, "change")


@pytest.mark.django_db
def test_openapi_schema_is_valid_and_lists_the_api(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    assert "/api/courses/sessions" in schema["paths"]
    assert "/api/machines/labs" in schema["paths"]
    assert client.get("/api/docs").status_code == 200


@pytest.mark.django_db
def test_api_errors_are_json_with_code_and_message(client, learner):
    response = client.get("/api/machines/labs/no-such-lab")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = client.get("/api/accounts/me")
    assert response.status_code == 401
    assert set(response.json()) >= {"code", "message"}


@pytest.mark.django_db
def test_a_learner_sees_who_they_are_through_session_or_api_token(client, learner):
    from fablab_ops.accounts.models import ApiToken

    _, token = ApiToken.issue(learner, "phone app")
    response = client.get("/api/accounts/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response.json()["email"] == learner.email
    assert client.get("/api/accounts/me", HTTP_AUTHORIZATION="Bearer fo_forged").status_code == 401


@pytest.mark.django_db
def test_seeding_the_demo_twice_changes_nothing():
    first = demo.seed()
    second = demo.seed()
    assert first == second
    assert first["lab"] == 4
    assert first["session"] > 20
    assert first["seatbooking"] > 100


@pytest.mark.django_db
def test_demo_arduino_classes_run_twice_a_month_with_15_to_20_seats():
    from fablab_ops.courses.models import Session

    demo.seed()
    sessions = Session.objects.filter(course__slug="arduino-biic")
    months = {}
    for session in sessions:
        local = timezone.localtime(session.start)
        months.setdefault((local.year, local.month), []).append(local)
        assert 15 <= session.capacity <= 20
        assert local.weekday() == 5 and local.hour == 8
    assert months and all(len(days) == 2 for days in months.values())


def run_manage(*args, env_overrides: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(env_overrides)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_service_refuses_the_default_secret_key_with_debug_off():
    result = run_manage("check", env_overrides={"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    weak = run_manage("check", env_overrides={"DEBUG": "0", "SECRET_KEY": "ab" * 40})
    assert weak.returncode != 0


def test_deploy_checks_pass_with_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env_overrides={
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64), "ALLOWED_HOSTS": "fablab.example.vn",
    })
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_holds_the_projects_bytecode_so_no_process_compiles_it_at_start(tmp_path):
    """The image never writes bytecode at run time (PYTHONDONTWRITEBYTECODE, and its user cannot write /app): a
    module its build leaves uncompiled is compiled again by every process at each start, an ingest's restart
    included."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "PYTHONDONTWRITEBYTECODE=1" in dockerfile
    packages = re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.MULTILINE)
    assert "fablab_ops" in packages
    for package in packages:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    for step in re.findall(r"python (-m compileall[^\\&\n]*)", dockerfile):
        subprocess.run([sys.executable, *step.split()], cwd=tmp_path, check=True, timeout=120,
                       env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    uncompiled = [str(module.relative_to(tmp_path)) for module in tmp_path.rglob("*.py")
                  if not Path(importlib.util.cache_from_source(str(module))).exists()]
    assert uncompiled == []


def test_sqlite_default_queues_concurrent_writers():
    code = ("import django, json; django.setup(); from django.conf import settings; "
            "print(json.dumps(settings.DATABASES['default']['OPTIONS']))")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DJANGO_SETTINGS_MODULE"] = "fablab_ops.settings"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    options = json.loads(result.stdout)
    assert options["transaction_mode"] == "IMMEDIATE"


@pytest.mark.django_db
def test_pages_speak_vietnamese_by_default_and_english_on_request(client):
    factories.SessionFactory()
    assert "Lớp học sắp tới" in client.get("/courses/").content.decode()
    response = client.get("/courses/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Upcoming classes" in response.content.decode()


def test_with_debug_unset_the_service_runs_in_production_mode():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                               "print(settings.DEBUG)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "DEBUG"}, "SECRET_KEY": secrets.token_urlsafe(64),
             "DJANGO_SETTINGS_MODULE": "fablab_ops.settings"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# Built at run time, so the page's source excerpts of this file cannot contain them.
BROKER_PASSWORD, REDIS_PASSWORD = "-".join(["m4t", "khau", "broker"]), "-".join(["m4t", "khau", "redis"])


@pytest.fixture
def services_with_passwords(settings):
    settings.DEBUG = True
    settings.MQTT_URL = f"mqtt://service:{BROKER_PASSWORD}@mosquitto:1883"
    settings.CELERY_BROKER_URL = f"redis://:{REDIS_PASSWORD}@redis:6379/0"


def test_the_debug_page_never_shows_a_services_password(services_with_passwords, rf):
    from django.views.debug import technical_500_response

    try:
        raise ValueError("a bad query parameter")
    except ValueError:
        page = technical_500_response(rf.get("/courses/?date=x"), *sys.exc_info()).content.decode()
    assert "MQTT_URL" in page  # the settings are on the page, with their values hidden
    assert BROKER_PASSWORD not in page and REDIS_PASSWORD not in page
