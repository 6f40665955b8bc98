"""No two blocking reservations of one machine may overlap, guaranteed by PostgreSQL.

An exclusion constraint over the half-open range [start, end) with btree_gist:
back-to-back slots touch without overlapping. SQLite has no such constraint; there
the reservation service serialises writers (IMMEDIATE transactions) and checks.
"""

from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations

CONSTRAINT = "reservation_no_overlap"

ADD = f"""
ALTER TABLE booking_reservation ADD CONSTRAINT {CONSTRAINT}
EXCLUDE USING gist (machine_id WITH =, tstzrange("start", "end", '[)') WITH &&)
WHERE (status IN ('confirmed', 'checked_in', 'completed'))
"""
DROP = f"ALTER TABLE booking_reservation DROP CONSTRAINT IF EXISTS {CONSTRAINT}"


def on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("booking", "0002_certification_events")]

    operations = [
        BtreeGistExtension(),
        migrations.RunPython(on_postgresql(ADD), on_postgresql(DROP)),
    ]
