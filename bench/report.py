"""A month's report over a year of network data, against one hand-written SQL aggregate.

Builds, in PostgreSQL, a year of data for the four labs (hundreds of sessions, ten
thousand bookings, millions of telemetry rows with their daily roll-up), then times
in the same run:
  reference: a single hand-written SQL statement computing every figure the report
             shows (per lab and kind: classes, seats, registrations, attendance,
             no-shows, longest waiting list, unique and first-time learners; machine
             hours; year-to-date progress), checked figure by figure against it;
  project:   `reports.services.monthly_report()` for that month (all labs).
A copy of that database is given a second, older year of history, and the same month's
report is timed on both, in turns: its cost must follow the month's data, not the whole
history. Every timing is the median of runs taken in turn with the figures it is divided
by (report and SQL; one year and two), so a machine that drifts weighs on both alike.
The month is the last complete one (computed from today), as the department reads it.
Last line: {"slowdown": report / SQL, "history_growth": t(2 years) / t(1 year), ...}.

    python bench/report.py [--quick]
"""

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/fablab_bench_report"

REFERENCE_SQL = """
WITH month_sessions AS (
    SELECT s.id, s.lab_id, c.kind, s.capacity, s.status, s.peak_waitlist,
           s.status <> 'cancelled' AND s.start <= %(now)s AS held
    FROM courses_session s JOIN courses_course c ON c.id = s.course_id
    WHERE s.start >= %(start)s AND s.start < %(end)s
), seats AS (
    SELECT b.session_id,
           count(*) FILTER (WHERE b.status IN ('confirmed', 'attended', 'no_show')) AS registrations,
           count(*) FILTER (WHERE b.status = 'attended') AS attended,
           count(*) FILTER (WHERE b.status = 'no_show') AS no_shows
    FROM courses_seatbooking b JOIN month_sessions m ON m.id = b.session_id
    GROUP BY b.session_id
), classes AS (
    SELECT m.lab_id, m.kind,
           count(*) FILTER (WHERE m.held) AS held,
           count(*) FILTER (WHERE m.status = 'cancelled') AS cancelled,
           coalesce(sum(m.capacity) FILTER (WHERE m.held), 0) AS seats_offered,
           coalesce(sum(s.registrations) FILTER (WHERE m.held), 0) AS registrations,
           coalesce(sum(s.attended) FILTER (WHERE m.held), 0) AS attended,
           coalesce(sum(s.no_shows) FILTER (WHERE m.held), 0) AS no_shows,
           max(m.peak_waitlist) AS peak_waitlist
    FROM month_sessions m LEFT JOIN seats s ON s.session_id = m.id
    GROUP BY GROUPING SETS ((m.lab_id, m.kind), (m.lab_id))
), attendees AS (
    SELECT DISTINCT m.lab_id, m.kind, b.learner_id
    FROM courses_seatbooking b JOIN month_sessions m ON m.id = b.session_id
    WHERE b.status = 'attended'
), returners AS (
    SELECT DISTINCT a.learner_id FROM attendees a
    WHERE EXISTS (SELECT 1 FROM courses_seatbooking e JOIN courses_session es ON es.id = e.session_id
                  WHERE e.learner_id = a.learner_id AND e.status = 'attended' AND es.start < %(start)s)
), learners AS (
    SELECT a.lab_id, a.kind, count(DISTINCT a.learner_id) AS unique_learners,
           count(DISTINCT a.learner_id) FILTER (WHERE r.learner_id IS NULL) AS first_time
    FROM attendees a LEFT JOIN returners r ON r.learner_id = a.learner_id
    GROUP BY GROUPING SETS ((a.lab_id, a.kind), (a.lab_id))
), used AS (
    SELECT mc.lab_id, sum(d.running_seconds) / 3600.0 AS hours_used
    FROM machines_machineusageday d JOIN machines_machine mc ON mc.id = d.machine_id
    WHERE d.day >= %(first_day)s AND d.day < %(next_day)s
    GROUP BY mc.lab_id
), booked AS (
    SELECT mc.lab_id,
           sum(extract(epoch FROM least(r."end", %(end)s) - greatest(r.start, %(start)s))) / 3600.0 AS hours_booked
    FROM booking_reservation r JOIN machines_machine mc ON mc.id = r.machine_id
    WHERE r.start < %(end)s AND r."end" > %(start)s AND r.status <> 'cancelled'
    GROUP BY mc.lab_id
), year_to_date AS (
    SELECT s.lab_id, count(DISTINCT s.id) AS classes, count(b.id) AS turns
    FROM courses_session s LEFT JOIN courses_seatbooking b ON b.session_id = s.id AND b.status = 'attended'
    WHERE s.start >= %(year_start)s AND s.start < %(end)s AND s.start <= %(now)s AND s.status <> 'cancelled'
    GROUP BY s.lab_id
)
SELECT c.lab_id, c.kind, c.held, c.cancelled, c.seats_offered, c.registrations, c.attended, c.no_shows,
       c.peak_waitlist, coalesce(l.unique_learners, 0), coalesce(l.first_time, 0),
       u.hours_used, b.hours_booked, y.classes, y.turns
FROM classes c
LEFT JOIN learners l ON l.lab_id IS NOT DISTINCT FROM c.lab_id AND l.kind IS NOT DISTINCT FROM c.kind
LEFT JOIN used u ON u.lab_id = c.lab_id AND c.kind IS NULL
LEFT JOIN booked b ON b.lab_id = c.lab_id AND c.kind IS NULL
LEFT JOIN year_to_date y ON y.lab_id = c.lab_id AND c.kind IS NULL
"""
# Every figure the report shows, per lab and per kind of course (kind NULL: the lab's total): classes held
# and cancelled, seats offered, registrations, attendance, no-shows, the longest waiting list, unique and
# first-time learners (attended this month, never before it), machine hours used and booked, and the
# year-to-date classes and participant-turns the targets are measured against.
FIGURES = ("sessions_held", "sessions_cancelled", "seats_offered", "registrations", "attendance", "no_shows",
           "peak_waitlist", "unique_learners", "first_time_learners")


def build_year(cursor, year: int, *, bookings_per_session: int, telemetry_per_machine_day: int) -> dict:
    """One year of sessions, bookings, reservations, telemetry and its roll-up, generated in SQL."""
    start = f"{year}-01-01 00:00+07"  # the labs' local new year
    cursor.execute("""
        INSERT INTO courses_session (course_id, lab_id, start, "end", capacity, place, status, cancel_reason,
                                     detached, peak_waitlist, created_at, updated_at)
        SELECT c.id, c.lab_id, t, t + interval '3 hours', 20, '',
               CASE WHEN random() < 0.05 THEN 'cancelled' ELSE 'scheduled' END, '', false,
               (random() * 5)::int, now(), now()
        FROM courses_course c,
             generate_series(%s::timestamptz + interval '8 hours', %s::timestamptz + interval '364 days',
                             interval '3 days') AS t
    """, [start, start])
    cursor.execute("""
        INSERT INTO courses_seatbooking (session_id, learner_id, status, ticket_code, created_at, updated_at,
                                         induction_result, induction_note)
        SELECT s.id, u.id,
               (ARRAY['attended', 'attended', 'attended', 'no_show', 'cancelled'])[1 + (random() * 4)::int],
               md5(random()::text || s.id || u.id), now(), now(), '', ''
        FROM courses_session s
        JOIN LATERAL (SELECT id FROM accounts_user WHERE id %% 97 <> s.id %% 97
                      ORDER BY (id * 31 + s.id * 17) %% 1009 LIMIT %s) u ON true
        WHERE s.start >= %s::timestamptz AND s.start < %s::timestamptz + interval '1 year'
    """, [bookings_per_session, start, start])
    cursor.execute("""
        INSERT INTO booking_reservation (machine_id, user_id, start, "end", status, purpose, ticket_code,
                                         maintenance_conflict, created_at, updated_at)
        SELECT m.id, 1 + (random() * 500)::int, d + interval '9 hours', d + interval '11 hours',
               CASE WHEN random() < 0.1 THEN 'no_show' ELSE 'completed' END, '', md5(random()::text || m.id || d),
               false, now(), now()
        FROM machines_machine m, generate_series(%s::timestamptz, %s::timestamptz + interval '364 days',
                                                 interval '1 day') AS d
    """, [start, start])
    cursor.execute("""
        INSERT INTO machines_telemetrymessage (machine_id, boot, seq, "at", device_ts, received_at, clock_skewed,
                                               state, power_w, job)
        SELECT m.id, %s, g, t, t, t, false, CASE WHEN g %% 3 = 0 THEN 'running' ELSE 'idle' END, 120, ''
        FROM machines_machine m,
             LATERAL (SELECT g, %s::timestamptz + (g * interval '1 day' / %s) AS t
                      FROM generate_series(1, 365 * %s) AS g) AS series
    """, [f"y{year}", start, telemetry_per_machine_day, telemetry_per_machine_day])
    cursor.execute("""
        INSERT INTO machines_machineusageday (machine_id, day, running_seconds, energy_wh)
        SELECT m.id, d::date, 3600 + random() * 14400, 0
        FROM machines_machine m, generate_series(%s::date, %s::date + 364, interval '1 day') AS d
    """, [f"{year}-01-01", f"{year}-01-01"])
    counts = {}
    for table in ("courses_session", "courses_seatbooking", "booking_reservation", "machines_telemetrymessage"):
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own table names
        counts[table] = cursor.fetchone()[0]
    # As a database that has lived with its data: statistics current and the new rows' visibility settled, so
    # neither timing pays for the first reads after a bulk load (which would flatter the growth).
    cursor.execute("VACUUM ANALYZE")
    return counts


def setup_network(learners: int) -> None:
    from fablab_ops.accounts.models import User
    from fablab_ops.courses.models import Course
    from fablab_ops.demo import data as demo
    from fablab_ops.machines.models import Lab

    demo._labs()
    labs = {lab.slug: lab for lab in Lab.objects.all()}
    demo._machines(labs)
    User.objects.bulk_create([User(email=f"learner{n}@example.vn", full_name=f"Học viên {n}", password="!")
                              for n in range(learners)])
    for lab in labs.values():
        for kind in ("arduino", "induction", "other"):
            Course.objects.create(kind=kind, slug=f"{kind}-{lab.slug}", title_vi=f"{kind} {lab.short_name}", lab=lab,
                                  default_capacity=20, min_capacity=1, max_capacity=20)


def compare(result, sql_rows) -> int:
    """Figures on which the report and the hand-written SQL disagree (must be none)."""
    from fablab_ops.courses.models import CourseKind
    from fablab_ops.machines.models import Lab

    lab_ids = dict(Lab.objects.values_list("slug", "pk"))
    rows = {(row[0], row[1]): row for row in sql_rows}
    empty = (None, None) + (0,) * 13
    disagreements = 0
    for lab in result.labs:
        if lab.slug not in lab_ids:
            continue
        cells = [(lab.total, rows.get((lab_ids[lab.slug], None), empty))]
        cells += [(lab.by_kind[kind], rows.get((lab_ids[lab.slug], kind), empty)) for kind in CourseKind.values]
        for cell, row in cells:
            mine = tuple(getattr(cell, name) for name in FIGURES)
            disagreements += sum(1 for a, b in zip(mine, row[2:11], strict=True) if a != int(b or 0))
        row = cells[0][1]
        disagreements += abs(lab.hours_used - float(row[11] or 0)) > 0.05
        disagreements += abs(lab.hours_booked - float(row[12] or 0)) > 0.05
        disagreements += lab.progress.classes_to_date != int(row[13] or 0)
        disagreements += lab.progress.turns_to_date != int(row[14] or 0)
    return disagreements


def interleaved(functions, repeat: int) -> list[float]:
    """The median time of each of `functions`, timed in turns, so a machine busier for a moment weighs on all
    alike."""
    times = [[] for _ in functions]
    for _ in range(repeat):
        for function, kept in zip(functions, times, strict=True):
            started = time.perf_counter()
            function()
            kept.append(time.perf_counter() - started)
    return [statistics.median(kept) for kept in times]


@contextmanager
def using(database):
    """Django's default connection is `database` in the block (the report and the SQL run on it)."""
    from django.db import connections

    previous = connections["default"]
    connections["default"] = database
    try:
        yield
    finally:
        connections["default"] = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smaller year (fewer telemetry rows)")
    args = parser.parse_args()
    per_day = 60 if args.quick else 240  # telemetry messages per machine per day
    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "fablab_ops.settings",
           "LOG_LEVEL": "WARNING", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(64)}
    os.environ.update(env)
    from bench._support import ensure_database

    ensure_database(database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from fablab_ops.reports import services

    setup_network(1200)
    # The month the department reads at the start of this one: the last complete month, in the year
    # whose data is built first; the second year of history is the one before.
    month = services.last_month()
    start, end = services.month_bounds(month)
    now = timezone.now()
    year_start = datetime.combine(date(month.year, 1, 1), datetime.min.time(), timezone.get_default_timezone())
    params = {"start": start, "end": end, "first_day": timezone.localtime(start).date(),
              "next_day": timezone.localtime(end).date(), "now": now, "year_start": year_start}

    def reference():
        with connection.cursor() as cursor:
            cursor.execute(REFERENCE_SQL, params)
            return cursor.fetchall()

    def report():
        return services.monthly_report(month, now=now)

    with connection.cursor() as cursor:
        counts = build_year(cursor, month.year, bookings_per_session=8, telemetry_per_machine_day=per_day)
    # The same network with a second, older year of history: a copy, so that both can be timed in turns.
    connection.close()
    ensure_database(f"{database_url}_two_years", copy_of=database_url.rsplit("/", 1)[1])
    two_years_db = connection.copy()
    two_years_db.settings_dict["NAME"] = f"{two_years_db.settings_dict['NAME']}_two_years"
    with using(two_years_db), connection.cursor() as cursor:
        counts_two = build_year(cursor, month.year - 1, bookings_per_session=8, telemetry_per_machine_day=per_day)

    def report_two_years():
        with using(two_years_db):
            report()

    # Each database's first statements load its catalogue and pages; what is timed is a report read again.
    reference()
    report()
    report_two_years()
    sql_time, one_year, two_years = interleaved([reference, report, report_two_years], 7)
    inconsistencies = compare(report(), reference())
    with using(two_years_db):
        inconsistencies += compare(report(), reference())
    two_years_db.close()
    print(json.dumps({
        "slowdown": round(one_year / sql_time, 2),
        "history_growth": round(two_years / one_year, 2),
        "report_s": round(one_year, 4),
        "sql_s": round(sql_time, 4),
        "report_two_years_s": round(two_years, 4),
        "inconsistencies": inconsistencies,
        "month": f"{month:%Y-%m}",
        "load_avg_1m": os.getloadavg()[0],
        "rows_one_year": counts,
        "rows_two_years": counts_two,
    }))


if __name__ == "__main__":
    main()
