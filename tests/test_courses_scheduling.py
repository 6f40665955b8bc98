"""Coordinators schedule the network's classes from recurrence rules."""

from datetime import date, time, timedelta

import pytest
from django.utils import timezone

from fablab_ops.accounts.models import Notification
from fablab_ops.courses import services
from fablab_ops.courses.models import Session, SessionStatus
from fablab_ops.errors import DomainError, PermissionDenied
from tests import factories
from tests.conftest import client_for

SECOND_AND_FOURTH_SATURDAY = "FREQ=MONTHLY;BYDAY=SA;BYSETPOS=2,4;COUNT=6"


@pytest.fixture
def arduino(lab):
    return factories.CourseFactory(lab=lab, slug="arduino-biic")


def local(dt):
    return timezone.localtime(dt)


@pytest.mark.django_db
def test_preview_shows_second_and_fourth_saturdays_without_saving(coordinator_client, arduino):
    response = coordinator_client.post("/api/courses/series/preview", {
        "course": "arduino-biic", "rule": SECOND_AND_FOURTH_SATURDAY, "first_date": "2027-01-01",
        "start_time": "08:00", "end_time": "11:30", "capacity": 20, "lab": "biic",
    }, content_type="application/json")
    assert response.status_code == 200
    starts = [s["start"] for s in response.json()]
    assert starts[:4] == ["2027-01-09T08:00:00+07:00", "2027-01-23T08:00:00+07:00",
                          "2027-02-13T08:00:00+07:00", "2027-02-27T08:00:00+07:00"]
    assert not Session.objects.exists()


@pytest.mark.django_db
def test_a_series_skips_holidays_and_stores_times_in_utc(coordinator, arduino, lab):
    tet = date(2027, 2, 13)
    series = services.create_series(course=arduino, by=coordinator, rule=SECOND_AND_FOURTH_SATURDAY,
                                    first_date=date(2027, 1, 1), start_time=time(8), end_time=time(11, 30),
                                    capacity=20, lab=lab, exception_dates=[tet])
    sessions = list(series.sessions.order_by("start"))
    assert len(sessions) == 5
    assert tet not in {local(s.start).date() for s in sessions}
    assert all(local(s.start).time() == time(8) and local(s.end).time() == time(11, 30) for s in sessions)
    assert sessions[0].start.utcoffset() == timedelta(0) and sessions[0].start.hour == 1


@pytest.mark.django_db
def test_capacity_outside_the_arduino_range_is_refused(coordinator, arduino, lab):
    with pytest.raises(DomainError) as refused:
        services.create_series(course=arduino, by=coordinator, rule=SECOND_AND_FOURTH_SATURDAY,
                               first_date=date(2027, 1, 1), start_time=time(8), end_time=time(11), capacity=25,
                               lab=lab)
    assert refused.value.code == "capacity_out_of_range"


@pytest.mark.django_db
def test_a_broken_rule_gets_a_clear_error(coordinator_client, arduino):
    response = coordinator_client.post("/api/courses/series/preview", {
        "course": "arduino-biic", "rule": "FREQ=SOMETIMES", "first_date": "2027-01-01",
        "start_time": "08:00", "end_time": "11:30", "capacity": 20,
    }, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_rule"


@pytest.mark.django_db
def test_an_endless_rule_is_refused(coordinator, arduino):
    with pytest.raises(DomainError) as refused:
        services.preview_series(rule="FREQ=DAILY", first_date=date(2027, 1, 1), start_time=time(8),
                                end_time=time(9))
    assert refused.value.code == "rule_too_long"


@pytest.mark.django_db
def test_editing_one_session_leaves_the_series_and_later_changes_skip_it(coordinator, arduino, lab):
    series = services.create_series(course=arduino, by=coordinator, rule=SECOND_AND_FOURTH_SATURDAY,
                                    first_date=date(2027, 1, 1), start_time=time(8), end_time=time(11, 30),
                                    capacity=20, lab=lab)
    first, second, *rest = series.sessions.order_by("start")
    moved_start = first.start + timedelta(hours=1)
    services.update_session(second.pk, by=coordinator, capacity=16)
    services.update_session(first.pk, by=coordinator, start=moved_start, end=first.end + timedelta(hours=1))
    changed = services.change_series_from(series.pk, local(first.start).date(), by=coordinator,
                                          start_time=time(13, 30), end_time=time(17))
    assert changed == len(rest)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.start == moved_start and second.capacity == 16
    assert all(local(s.start).time() == time(13, 30) for s in Session.objects.filter(pk__in=[s.pk for s in rest]))


@pytest.mark.django_db
def test_changing_the_rest_of_a_series_tells_the_booked_learners(coordinator, arduino, lab, learner):
    series = services.create_series(course=arduino, by=coordinator, rule=SECOND_AND_FOURTH_SATURDAY,
                                    first_date=date(2027, 1, 1), start_time=time(8), end_time=time(11, 30),
                                    capacity=20, lab=lab)
    last = series.sessions.order_by("start").last()
    services.book_seat(last.pk, learner)
    services.change_series_from(series.pk, local(last.start).date(), by=coordinator, start_time=time(9),
                                end_time=time(12))
    assert Notification.objects.filter(user=learner, kind="session_changed").count() == 1


@pytest.mark.django_db
def test_capacity_cannot_drop_below_the_seats_already_taken(coordinator, lab):
    course = factories.CourseFactory(lab=lab, default_capacity=5, min_capacity=1, max_capacity=10)
    session = factories.SessionFactory(course=course, capacity=5)
    for _ in range(4):
        services.book_seat(session.pk, factories.LearnerFactory())
    with pytest.raises(DomainError) as refused:
        services.update_session(session.pk, by=coordinator, capacity=3)
    assert refused.value.code == "capacity_below_bookings"


@pytest.mark.django_db
def test_only_coordinators_schedule(learner, technician, arduino):
    for user in (learner, technician):
        with pytest.raises(PermissionDenied):
            services.require_coordinator(user)
        response = client_for(user).post("/api/courses/series", {
            "course": "arduino-biic", "rule": SECOND_AND_FOURTH_SATURDAY, "first_date": "2027-01-01",
            "start_time": "08:00", "end_time": "11:30", "capacity": 20,
        }, content_type="application/json")
        assert response.status_code == 403
        assert client_for(user).get("/courses/manage/schedule/").status_code == 403
    assert not Session.objects.exists()


@pytest.mark.django_db
def test_a_coordinator_schedules_through_the_page_with_a_preview_first(coordinator_client, arduino, lab):
    form = {"course": arduino.pk, "rule": SECOND_AND_FOURTH_SATURDAY, "first_date": "2027-01-01",
            "start_time": "08:00", "end_time": "11:30", "capacity": 20, "lab": lab.pk, "place": "Phòng 101",
            "exception_dates": "13/02/2027"}
    preview = coordinator_client.post("/courses/manage/schedule/", {**form, "preview": "1"})
    assert preview.status_code == 200 and "09/01/2027" in preview.content.decode()
    assert not Session.objects.exists()
    saved = coordinator_client.post("/courses/manage/schedule/", {**form, "save": "1"})
    assert saved.status_code == 302
    assert Session.objects.filter(course=arduino, status=SessionStatus.SCHEDULED).count() == 5


# --- the recurrence picker -------------------------------------------------------------------------

def picker_form(arduino, lab, **changes):
    form = {"course": arduino.pk, "first_date": "2027-01-01", "start_time": "08:00", "end_time": "11:30",
            "weekdays": ["1", "5"], "interval": "2", "ends": "count", "count": "5", "until": "",
            "exception_dates": "02/01/2027", "rule": "", "capacity": 20, "lab": lab.pk, "place": "Phòng 101"}
    form.update(changes)
    return form


@pytest.mark.django_db
def test_a_coordinator_picks_tuesdays_and_saturdays_every_other_week_and_skips_a_holiday(
        coordinator_client, arduino, lab):
    form = picker_form(arduino, lab)
    preview = coordinator_client.post("/courses/manage/schedule/", {**form, "preview": "1"}).content.decode()
    shown = preview[preview.index('id="series-preview"'):]
    # Saturday 2 January is a holiday; then every other week, Tuesdays and Saturdays: five sittings in all.
    for day in ("12/01/2027", "16/01/2027", "26/01/2027", "30/01/2027", "09/02/2027"):
        assert day in shown
    assert "02/01/2027 08:00" not in shown and "05/01/2027" not in shown
    assert "FREQ=WEEKLY" in shown and "INTERVAL=2" in shown and "BYDAY=TU,SA" in shown
    assert not Session.objects.exists()

    assert coordinator_client.post("/courses/manage/schedule/", {**form, "save": "1"}).status_code == 302
    starts = [local(s.start).date() for s in Session.objects.filter(course=arduino).order_by("start")]
    assert starts == [date(2027, 1, 12), date(2027, 1, 16), date(2027, 1, 26), date(2027, 1, 30), date(2027, 2, 9)]


@pytest.mark.django_db
def test_a_series_picked_to_end_on_a_date_stops_there(coordinator_client, arduino, lab):
    form = picker_form(arduino, lab, weekdays=["5"], interval="1", ends="until", until="2027-01-31",
                       exception_dates="")
    assert coordinator_client.post("/courses/manage/schedule/", {**form, "save": "1"}).status_code == 302
    assert [local(s.start).day for s in Session.objects.order_by("start")] == [2, 9, 16, 23, 30]


@pytest.mark.django_db
@pytest.mark.parametrize("changes, field, said", [
    ({"weekdays": []}, "weekdays", "Chọn ít nhất một ngày trong tuần."),
    ({"ends": "until", "until": "2026-12-01"}, "until", "Ngày kết thúc phải từ ngày bắt đầu trở đi."),
    ({"ends": "count", "count": ""}, "count", "Nhập số buổi."),
    ({"rule": "FREQ"}, "rule", "Quy tắc lặp không hợp lệ. Hãy viết theo dạng FREQ=WEEKLY;BYDAY=SA;COUNT=12"),
    ({"rule": "FREQ=WEEKLY;BYDAY=XX"}, "rule", "Quy tắc lặp không hợp lệ."),
])
def test_bad_choices_in_the_picker_are_said_beside_their_field(coordinator_client, arduino, lab, changes, field,
                                                               said):
    response = coordinator_client.post("/courses/manage/schedule/", {**picker_form(arduino, lab, **changes),
                                                                     "preview": "1"})
    page = response.content.decode()
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(said in message for message in errors.get(field, [])), errors
    assert said in page
    for leaked in ("unpack", "expected 2", "Error", "invalid literal", "Traceback"):
        assert leaked not in page
    assert not Session.objects.exists()


@pytest.mark.django_db
def test_a_typo_in_a_rule_sent_to_the_api_is_answered_without_the_parsers_words(coordinator_client, arduino):
    response = coordinator_client.post("/api/courses/series/preview", {
        "course": "arduino-biic", "rule": "FREQ", "first_date": "2027-01-01",
        "start_time": "08:00", "end_time": "11:30", "capacity": 20,
    }, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_rule"
    assert "unpack" not in response.json()["message"]
