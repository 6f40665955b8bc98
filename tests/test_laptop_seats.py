"""The laptop demo runs on SQLite: a seat change there takes the same rules and statements as on PostgreSQL,
written for SQLite where they differ (no row locks, no PREPARE, keys from the INSERT)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STORY = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from tests import factories
from fablab_ops.accounts.models import Notification
from fablab_ops.courses import services

assert connection.vendor == "sqlite"
session = factories.SessionFactory(capacity=1, course=factories.CourseFactory(default_capacity=1, min_capacity=1))
first, second = factories.LearnerFactory(), factories.LearnerFactory()
booked = services.book_seat(session.pk, first).booking
waiting = services.book_seat(session.pk, second).booking
again = services.book_seat(session.pk, second)
services.cancel_booking(booked.pk, first)
offered = type(waiting).objects.get(pk=waiting.pk)
services.confirm_offer(waiting.pk, second)
print(json.dumps({
    "first": booked.status, "second": waiting.status, "again_created": again.created,
    "offered": offered.offer_expires_at is not None,
    "after": sorted(session.bookings.values_list("status", flat=True)),
    "emails": sorted(Notification.objects.values_list("kind", flat=True)),
}))
"""


def test_on_the_laptop_a_seat_is_booked_given_up_and_passed_to_the_next_in_line(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update({"SQLITE_PATH": str(tmp_path / "db.sqlite3"), "DJANGO_SETTINGS_MODULE": "fablab_ops.settings",
                "EMAIL_FILE_PATH": str(tmp_path / "mail")})
    result = subprocess.run([sys.executable, "-c", STORY], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    story = json.loads(result.stdout.strip().splitlines()[-1])
    assert story == {
        "first": "confirmed", "second": "waitlisted", "again_created": False, "offered": True,
        "after": ["cancelled", "confirmed"],
        "emails": ["seat_cancelled", "seat_confirmed", "seat_confirmed", "seat_offered", "seat_waitlisted"],
    }
