"""The monthly report: every figure checked against what the data holds, edge cases included."""

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from openpyxl import load_workbook
from pypdf import PdfReader

from fablab_ops.booking.models import CertificationMethod, ReservationStatus
from fablab_ops.courses.models import CourseKind, SeatStatus, SessionStatus
from fablab_ops.machines.models import MachineUsageDay
from fablab_ops.reports import delivery, services
from fablab_ops.reports.exporters import EXPORTERS
from fablab_ops.reports.models import YearTarget
from tests import factories
from tests.conftest import client_for

OCTOBER = date(2026, 10, 1)


def local(*args) -> datetime:
    from django.utils import timezone

    return timezone.make_aware(datetime(*args))


def session(course, start, *, hours=3, lab="course", status=SessionStatus.SCHEDULED, capacity=None, peak=0):
    return factories.SessionFactory(course=course, start=start, end=start + timedelta(hours=hours),
                                    lab=course.lab if lab == "course" else lab, status=status,
                                    capacity=capacity or course.default_capacity, peak_waitlist=peak)


def book(session, learner, status):
    return factories.SeatBookingFactory(session=session, learner=learner, status=status)


@pytest.fixture
def october(lab, other_lab):
    """A month of the network, built so each figure can be counted by hand."""
    people = {name: factories.LearnerFactory(full_name=name) for name in ("L1", "L2", "L3", "L4", "L5", "L6", "L7")}
    arduino = factories.CourseFactory(lab=lab, kind=CourseKind.ARDUINO)
    # September, 23:30 on the last day: belongs to September (L3 is therefore not new in October).
    september = session(arduino, local(2026, 9, 30, 23, 30))
    book(september, people["L3"], SeatStatus.ATTENDED)
    first = session(arduino, local(2026, 10, 5, 8), peak=2)
    for name in ("L1", "L2", "L3"):
        book(first, people[name], SeatStatus.ATTENDED)
    book(first, people["L4"], SeatStatus.NO_SHOW)
    book(first, people["L5"], SeatStatus.CANCELLED)
    # Crossing midnight at the month's end: counted once, in October where it starts.
    midnight = session(arduino, local(2026, 10, 31, 23, 30), hours=2)
    book(midnight, people["L1"], SeatStatus.ATTENDED)  # L1 attends twice: two participant-turns
    book(midnight, people["L6"], SeatStatus.ATTENDED)
    cancelled = session(arduino, local(2026, 10, 10, 8), status=SessionStatus.CANCELLED)
    book(cancelled, people["L7"], SeatStatus.CANCELLED)
    # 00:30 on 1 November local is still 31 October in UTC: it belongs to November.
    november = session(arduino, local(2026, 11, 1, 0, 30))
    book(november, people["L7"], SeatStatus.ATTENDED)
    induction = factories.InductionCourseFactory(lab=other_lab)
    training = session(induction, local(2026, 10, 15, 14), hours=2)
    seat = book(training, people["L2"], SeatStatus.ATTENDED)
    factories.CertificationFactory(user=people["L2"], machine_type=induction.certifies,
                                   method=CertificationMethod.INDUCTION, seat_booking=seat,
                                   granted_at=local(2026, 10, 15, 16))
    factories.CertificationFactory(user=people["L6"], granted_at=local(2026, 10, 20, 9))  # by hand: no lab
    online_course = factories.CourseFactory(lab=None, kind=CourseKind.SUMMER, default_capacity=30, min_capacity=1,
                                            max_capacity=30)
    online = session(online_course, local(2026, 10, 20, 19), lab=None)
    book(online, people["L7"], SeatStatus.ATTENDED)
    laser = factories.MachineFactory(lab=lab, name="Laser BIIC")
    factories.ReservationFactory(machine=laser, start=local(2026, 10, 3, 10), end=local(2026, 10, 3, 12),
                                 status=ReservationStatus.COMPLETED)
    factories.ReservationFactory(machine=laser, start=local(2026, 10, 31, 23), end=local(2026, 11, 1, 1),
                                 status=ReservationStatus.COMPLETED)
    factories.ReservationFactory(machine=laser, start=local(2026, 10, 7, 9), end=local(2026, 10, 7, 10),
                                 status=ReservationStatus.NO_SHOW)
    factories.ReservationFactory(machine=laser, start=local(2026, 10, 8, 9), end=local(2026, 10, 8, 15),
                                 status=ReservationStatus.CANCELLED)
    MachineUsageDay.objects.create(machine=laser, day=date(2026, 10, 3), running_seconds=1.5 * 3600)
    MachineUsageDay.objects.create(machine=laser, day=date(2026, 11, 1), running_seconds=0.5 * 3600)
    YearTarget.objects.create(year=2026, lab=lab, classes=24, participant_turns=400)
    return {"lab": lab, "other_lab": other_lab, "people": people}


def rows_by_slug(report):
    return {row.slug: row for row in report.labs}


@pytest.mark.django_db
def test_each_labs_class_figures_match_a_count_by_hand(october, lab, other_lab):
    report = services.monthly_report(OCTOBER)
    labs = rows_by_slug(report)
    arduino = labs[lab.slug].by_kind[CourseKind.ARDUINO]
    assert (arduino.sessions_held, arduino.sessions_cancelled, arduino.seats_offered) == (2, 1, 40)
    assert (arduino.registrations, arduino.attendance, arduino.no_shows) == (6, 5, 1)
    assert arduino.participant_turns == 5
    assert (arduino.unique_learners, arduino.first_time_learners) == (4, 3)
    assert arduino.peak_waitlist == 2
    assert arduino.fill_rate == pytest.approx(6 / 40)
    assert arduino.no_show_rate == pytest.approx(1 / 6)
    induction = labs[other_lab.slug].by_kind[CourseKind.INDUCTION]
    assert (induction.sessions_held, induction.attendance, induction.unique_learners) == (1, 1, 1)
    assert labs[other_lab.slug].certifications_granted == 1
    online = labs[services.NO_LAB]
    assert (online.total.sessions_held, online.total.attendance, online.certifications_granted) == (1, 1, 1)


@pytest.mark.django_db
def test_septembers_report_after_octobers_counts_septembers_data(october, lab):
    # The report's statements are composed once and run again with each month's bounds: a report read right
    # after another must count its own month, not repeat the first one's.
    assert rows_by_slug(services.monthly_report(OCTOBER))[lab.slug].total.attendance == 5
    september = rows_by_slug(services.monthly_report(date(2026, 9, 1)))[lab.slug]
    assert (september.total.sessions_held, september.total.attendance) == (1, 1)
    assert (september.total.unique_learners, september.total.first_time_learners) == (1, 1)
    assert september.machines == [] and len(september.sessions) == 1


@pytest.mark.django_db
def test_the_network_is_the_sum_of_its_rows_with_learners_counted_once(october):
    report = services.monthly_report(OCTOBER)
    network = report.network.total
    for name in ("sessions_held", "sessions_cancelled", "seats_offered", "registrations", "attendance",
                 "no_shows"):
        assert getattr(network, name) == sum(getattr(row.total, name) for row in report.labs), name
    assert network.attendance == 7
    # L2 attended in two labs; the network has five different learners, four of them new.
    assert (network.unique_learners, network.first_time_learners) == (5, 4)
    assert report.network.certifications_granted == 2


@pytest.mark.django_db
def test_machine_hours_booked_used_and_no_shows(october, lab):
    laser = rows_by_slug(services.monthly_report(OCTOBER))[lab.slug].machines[0]
    # 2 h + the hour before midnight of the crossing reservation + the no-show hour; cancelled excluded.
    assert (laser.hours_booked, laser.hours_used, laser.no_show_reservations) == (4.0, 1.5, 1)


@pytest.mark.django_db
def test_progress_against_the_years_targets_counts_from_january(october, lab):
    progress = rows_by_slug(services.monthly_report(OCTOBER))[lab.slug].progress
    assert (progress.target_classes, progress.classes_to_date) == (24, 3)
    assert (progress.target_turns, progress.turns_to_date) == (400, 6)


@pytest.mark.django_db
def test_csv_opens_in_excel_as_utf8_with_vietnamese_labels(october):
    name, media_type, content = EXPORTERS["csv"].render(services.monthly_report(OCTOBER), "vi")
    assert content.startswith(b"\xef\xbb\xbf") and name.endswith("2026-10-all.csv")
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[1][:3] == ["Phòng lab", "Loại khóa học", "Buổi học đã tổ chức"]
    network_total = next(r for r in rows if r[0] == "Toàn mạng lưới" and r[1] == "Tất cả loại khóa học")
    assert network_total[rows[1].index("Lượt tham gia")] == "7"


@pytest.mark.django_db
def test_labels_in_english_on_request(october):
    _name, _type, content = EXPORTERS["csv"].render(services.monthly_report(OCTOBER), "en")
    text = content.decode("utf-8-sig")
    assert "Participant-turns" in text and "Lượt tham gia" not in text


@pytest.mark.django_db
def test_xlsx_has_a_summary_a_sheet_per_lab_totals_and_real_dates(october, lab):
    _name, _type, content = EXPORTERS["xlsx"].render(services.monthly_report(OCTOBER), "vi")
    book = load_workbook(io.BytesIO(content))
    assert book.sheetnames[0] == "Tổng hợp" and len(book.sheetnames) == 1 + 3  # two labs and the online row
    summary = book["Tổng hợp"]
    total_row = next(row for row in summary.iter_rows(values_only=True) if row[0] == "Tổng")
    header = next(row for row in summary.iter_rows(values_only=True) if row[0] == "Phòng lab")
    assert total_row[header.index("Lượt tham gia")] == 7
    lab_sheet = book[lab.short_name]
    dates = [row[0] for row in lab_sheet.iter_rows(values_only=True) if isinstance(row[0], datetime)]
    assert datetime(2026, 10, 31, 23, 30) in dates


@pytest.mark.django_db
def test_pdf_renders_vietnamese_diacritics(october, other_lab):
    _name, media_type, content = EXPORTERS["pdf"].render(services.monthly_report(OCTOBER), "vi")
    assert media_type == "application/pdf"
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages)
    assert "Kết quả hoạt động tháng 10/2026" in text
    assert "Lượt tham gia" in text and other_lab.name_vi in text


@pytest.mark.django_db
def test_coordinators_download_every_format_and_learners_cannot(october, coordinator, learner):
    client = client_for(coordinator)
    for fmt in ("csv", "xlsx", "pdf"):
        response = client.get("/reports/download/", {"month": "2026-10", "lab": "all", "format": fmt})
        assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert client.get("/reports/", {"month": "2026-10"}).status_code == 200
    assert client.get("/api/reports/monthly", {"month": "2026-10"}).json()["network"]["total"]["attendance"] == 7
    assert client_for(learner).get("/reports/", {"month": "2026-10"}).status_code == 403
    assert client_for(learner).get("/api/reports/monthly", {"month": "2026-10"}).status_code == 403


@pytest.mark.django_db
def test_technicians_see_their_own_labs_report_only(october, lab, other_lab, technician):
    client = client_for(technician)
    assert client.get("/api/reports/monthly", {"month": "2026-10", "lab": lab.slug}).status_code == 200
    assert client.get("/api/reports/monthly", {"month": "2026-10", "lab": other_lab.slug}).status_code == 403
    assert client.get("/api/reports/monthly", {"month": "2026-10"}).status_code == 403


@pytest.mark.django_db
def test_a_bad_month_gets_a_clear_error(coordinator):
    response = client_for(coordinator).get("/api/reports/monthly", {"month": "October"})
    assert response.status_code == 400 and response.json()["code"] == "invalid_month"


@pytest.mark.django_db
def test_the_monthly_mail_goes_once_even_if_the_job_runs_twice(october, coordinator):
    assert delivery.send_monthly_report(OCTOBER) is True
    assert delivery.send_monthly_report(OCTOBER) is False
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [coordinator.email] and message.attachments[0][0].endswith(".xlsx")


@pytest.mark.django_db
def test_export_report_command_writes_the_file(october, tmp_path):
    output = tmp_path / "october.xlsx"
    call_command("export_report", "--month", "2026-10", "--lab", "all", "--format", "xlsx", "--output", str(output))
    assert load_workbook(output).sheetnames[0] == "Tổng hợp"


@pytest.mark.django_db
def test_last_months_report_on_the_demo_matches_the_demo_data():
    from django.db.models import Sum

    from fablab_ops.booking.models import Reservation
    from fablab_ops.courses.models import SeatBooking, Session
    from fablab_ops.demo import data as demo

    demo.seed()
    month = services.last_month()
    start, end = services.month_bounds(month)
    report = services.monthly_report(month)
    in_month = Session.objects.filter(start__gte=start, start__lt=end)
    held = in_month.exclude(status=SessionStatus.CANCELLED)
    seats = SeatBooking.objects.filter(session__in=held)
    total = report.network.total
    assert total.sessions_held == held.count() > 0
    assert total.seats_offered == held.aggregate(s=Sum("capacity"))["s"]
    assert total.attendance == seats.filter(status=SeatStatus.ATTENDED).count()
    assert total.no_shows == seats.filter(status=SeatStatus.NO_SHOW).count()
    assert total.unique_learners == seats.filter(status=SeatStatus.ATTENDED).values("learner").distinct().count()
    booked = sum((min(r.end, end) - max(r.start, start)).total_seconds() / 3600
                 for r in Reservation.objects.filter(start__lt=end, end__gt=start).exclude(status="cancelled"))
    assert report.network.hours_booked == pytest.approx(booked, abs=0.05)
    used = MachineUsageDay.objects.filter(day__gte=start.date(), day__lt=end.date()).aggregate(
        s=Sum("running_seconds"))["s"] / 3600
    assert report.network.hours_used == pytest.approx(used, abs=0.05)


# --- the report's year targets, labels and the department's layout --------------------------------------

def pdf_pages(content: bytes) -> list[str]:
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]


@pytest.fixture
def network_targets(october, lab, other_lab):
    """The year's targets as the plan sets them: 24 classes and 100 turns a lab, 96 and 400 for the network."""
    YearTarget.objects.filter(year=2026).delete()
    for each in (lab, other_lab):
        YearTarget.objects.create(year=2026, lab=each, classes=24, participant_turns=100)
    YearTarget.objects.create(year=2026, lab=None, classes=96, participant_turns=400)


@pytest.mark.django_db
def test_the_online_row_does_not_carry_the_networks_year_target(network_targets):
    report = services.monthly_report(OCTOBER)
    online = rows_by_slug(report)[services.NO_LAB].progress
    assert (online.target_classes, online.target_turns) == (0, 0)
    assert (online.classes_to_date, online.turns_to_date) == (1, 1)
    assert (report.network.progress.target_classes, report.network.progress.target_turns) == (96, 400)


@pytest.mark.django_db
def test_a_labs_report_totals_that_lab_and_says_so(network_targets, lab):
    report = services.monthly_report(OCTOBER, lab=lab)
    assert report.network.name == f"Tổng {lab.name_vi}"
    assert (report.network.progress.target_classes, report.network.progress.target_turns) == (24, 100)
    _name, _type, content = EXPORTERS["csv"].render(report, "vi", lab.slug)
    assert "Toàn mạng lưới" not in content.decode("utf-8-sig")


@pytest.mark.django_db
def test_xlsx_sheet_names_are_whole_words_within_excels_limit(october):
    long_named = factories.LabFactory(slug="tdmu-bio", short_name="Công nghệ sinh học ứng dụng Thủ Dầu Một",
                                      name_vi="Phòng thí nghiệm chế tạo công nghệ sinh học ứng dụng")
    factories.MachineFactory(lab=long_named)
    _name, _type, content = EXPORTERS["xlsx"].render(services.monthly_report(OCTOBER), "vi")
    names = load_workbook(io.BytesIO(content)).sheetnames
    assert "Công nghệ sinh học ứng dụng Thủ" in names
    assert all(len(name) <= 31 for name in names)
    assert "Trực tuyến và chung" in names


@pytest.mark.django_db
def test_the_networks_pdf_has_the_administrative_title_block_targets_and_page_numbers(network_targets, other_lab):
    pages = pdf_pages(EXPORTERS["pdf"].render(services.monthly_report(OCTOBER), "vi")[2])
    first, text = pages[0], " ".join(pages)
    assert first.startswith("SỞ KHOA HỌC VÀ CÔNG NGHỆ THÀNH PHỐ HỒ CHÍ MINH")
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in first and "Độc lập - Tự do - Hạnh phúc" in first
    assert "Số: ……/BC-BIIC" in first and "Thành phố Hồ Chí Minh, ngày" in first
    assert "BÁO CÁO Kết quả hoạt động tháng 10/2026 của Mạng lưới Fablab Bình Dương" in first
    # The year's progress: each lab against its own target, the network against 96 classes and 400 turns.
    assert "Chỉ tiêu lớp học" in text
    assert "Trực tuyến và chung chưa đặt 1 — chưa đặt 1 —" in text
    assert "Toàn mạng lưới 96 5 5,2 % 400 8 2 %" in text
    assert "GIÁM ĐỐC" in text and "Nơi nhận:" in text
    assert [page.split()[-1] for page in pages] == [f"{n}/{len(pages)}" for n in range(1, len(pages) + 1)]
    assert all(page.endswith(f"Trang {n}/{len(pages)}") for n, page in enumerate(pages, 1))


@pytest.mark.django_db
def test_a_labs_pdf_is_issued_by_the_lab_under_its_host(network_targets, lab):
    pages = pdf_pages(EXPORTERS["pdf"].render(services.monthly_report(OCTOBER, lab=lab), "vi", lab.slug)[2])
    first, text = pages[0], " ".join(pages)
    assert first.startswith(f"{lab.host.upper()} {lab.name_vi.upper()}")
    assert "Số: ……/BC-BIIC" in first and f"tháng 10/2026 của {lab.name_vi}" in first
    assert "Mạng lưới Fablab Bình Dương" not in text and "Toàn mạng lưới" not in text
    assert f"Tổng {lab.name_vi}" in text and "PHỤ TRÁCH PHÒNG LAB" in text


@pytest.mark.django_db
def test_the_pdfs_names_follow_the_settings_when_administrative_names_change(october, settings):
    settings.REPORT_GOVERNING_BODY = "Ủy ban nhân dân Thành phố Thủ Đức"
    settings.REPORT_PLACE = "Thủ Đức"
    settings.REPORT_NUMBER_PATTERN = "Số: {code}-……/BC"
    first = pdf_pages(EXPORTERS["pdf"].render(services.monthly_report(OCTOBER), "vi")[2])[0]
    assert first.startswith("ỦY BAN NHÂN DÂN THÀNH PHỐ THỦ ĐỨC") and "Thủ Đức, ngày" in first
    assert "Số: BIIC-……/BC" in first

@pytest.mark.django_db
def test_the_xlsx_says_each_sessions_state_in_words(october, lab):
    for language, held in (("vi", "Đã tổ chức"), ("en", "Held")):
        _name, _type, content = EXPORTERS["xlsx"].render(services.monthly_report(OCTOBER), language)
        sheet = load_workbook(io.BytesIO(content))[lab.short_name]
        states = {row[2] for row in sheet.iter_rows(values_only=True) if isinstance(row[0], datetime)}
        assert held in states
        assert not states & {"held", "scheduled", "cancelled"}


@pytest.mark.django_db
@pytest.mark.parametrize("language, share, other", [("vi", "15,0%", "15.0%"), ("en", "15.0%", "15,0%")])
def test_shares_on_the_report_page_are_written_like_the_other_figures(october, coordinator, language, share, other):
    client = client_for(coordinator)
    client.cookies["django_language"] = language
    page = client.get("/reports/", {"month": "2026-10"}).content.decode()
    assert share in page and other not in page


def test_a_months_report_reads_that_months_bookings_not_the_years_before_it(postgres, lab):
    """Two years of a lab's classes, ten learners each: the report of one month finds that month's bookings
    through the sessions' index entries. A plan that reads the bookings table through would make the report
    slower with every year the network keeps, for the same month."""
    learners = factories.LearnerFactory.create_batch(10)
    course = factories.CourseFactory(lab=lab, kind=CourseKind.ARDUINO)
    with postgres.cursor() as cursor:
        cursor.execute("""
            INSERT INTO courses_session (course_id, lab_id, start, "end", capacity, place, status, cancel_reason,
                                         detached, peak_waitlist, created_at, updated_at)
            SELECT %s, %s, t, t + interval '3 hours', 20, '', 'scheduled', '', false, 0, now(), now()
            FROM generate_series('2024-11-01 08:00+07'::timestamptz, '2026-10-31 16:00+07', interval '8 hours') t
        """, [course.pk, lab.pk])
        cursor.execute("""
            INSERT INTO courses_seatbooking (session_id, learner_id, status, ticket_code, created_at, updated_at,
                                             induction_result, induction_note)
            SELECT s.id, u.id, CASE WHEN u.id %% 4 = 0 THEN 'no_show' ELSE 'attended' END,
                   md5(s.id || '-' || u.id), now(), now(), '', ''
            FROM courses_session s, unnest(%s::bigint[]) AS u(id)
            WHERE s.course_id = %s
        """, [[learner.pk for learner in learners], course.pk])
        cursor.execute("ANALYZE courses_session")
        cursor.execute("ANALYZE courses_seatbooking")
    statements = []

    def keep(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with postgres.execute_wrapper(keep):
        report = services.monthly_report(OCTOBER, lab=lab)
    assert report.labs[0].total.sessions_held == 93
    assert report.labs[0].total.attendance == 93 * sum(1 for learner in learners if learner.pk % 4)
    with postgres.cursor() as cursor:
        plans = []
        for sql, params in statements:
            cursor.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    whole_table = [plan for plan in plans if "Seq Scan on courses_seatbooking" in plan]
    assert whole_table == []
