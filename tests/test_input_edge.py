"""Bad input is refused at the edge, never a 500.

A NUL or another control character anywhere a client can put one (query, path,
JSON body, form field, a header such as Accept-Language, a cookie) is answered
400 before it reaches PostgreSQL: `{"code", "message"}` on the API, a friendly
page on the site. Dates outside the years the Fablabs can plan for are refused,
malformed JSON and wrong content types are answered in the client's language.
"""

import json

import pytest
from django.test import Client

from fablab_ops.accounts.models import User
from tests import factories
from tests.conftest import client_for


def quiet(client: Client) -> Client:
    """A client that returns the 500 page instead of raising, as a browser would see it."""
    client.raise_request_exception = False
    return client


def assert_api_refusal(response, status=400, code=None):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) >= {"code", "message"}, body
    assert body["message"]
    if code:
        assert body["code"] == code, body
    return body


@pytest.fixture
def machine(lab):
    return factories.MachineFactory(lab=lab, slug="laser-01")


# --- control characters -------------------------------------------------------------------------


@pytest.mark.django_db
def test_anyone_browsing_sessions_with_a_nul_in_the_lab_filter_gets_400_not_500(client):
    response = quiet(client).get("/api/courses/sessions", {"lab": "biic\x00"})
    assert_api_refusal(response, code="invalid_characters")


@pytest.mark.django_db
def test_a_nul_in_a_path_segment_is_refused_before_the_database(client, lab):
    response = quiet(client).get("/api/machines/labs/bi%00ic")
    assert_api_refusal(response, code="invalid_characters")


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["\\u0000", "\\u0007", "\\ud800"], ids=["nul", "bell", "lone-surrogate"])
def test_a_technician_scanning_a_ticket_with_control_characters_gets_400(lab, technician, bad):
    response = quiet(client_for(technician)).post(
        "/api/booking/checkin", '{"token": "fo' + bad + 'x", "lab": "biic"}', content_type="application/json")
    assert_api_refusal(response, code="invalid_characters")


@pytest.mark.django_db
def test_a_control_character_in_a_json_key_or_nested_list_is_refused(coordinator, lab):
    response = quiet(client_for(coordinator)).post(
        "/api/courses/series/preview",
        '{"course": "x", "rule": "FREQ=DAILY;COUNT=2", "first_date": "2026-12-01", "start_time": "08:00",'
        ' "end_time": "09:00", "capacity": 10, "exception_dates": ["2026-12-01\\u0000"]}',
        content_type="application/json")
    assert_api_refusal(response, code="invalid_characters")


@pytest.mark.django_db
def test_signing_up_with_a_control_character_in_the_name_shows_a_friendly_400_page_and_stores_nothing(client):
    response = client.post("/accounts/signup/", {
        "full_name": "Nguyễn\x01Lan", "email": "lan.moi@example.vn", "password": "Mat-khau-rat-dai-2026"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert "Yêu cầu không hợp lệ" in response.content.decode()
    assert not User.objects.filter(email="lan.moi@example.vn").exists()


@pytest.mark.django_db
def test_the_classes_page_with_a_nul_in_the_lab_filter_is_a_friendly_400_page(client):
    response = quiet(client).get("/courses/", {"lab": "biic\x00"})
    assert response.status_code == 400
    assert "Yêu cầu không hợp lệ" in response.content.decode()


@pytest.mark.django_db
def test_an_accept_language_header_with_a_nul_is_refused(client):
    response = quiet(client).get("/courses/", HTTP_ACCEPT_LANGUAGE="en\x00")
    assert response.status_code == 400
    response = quiet(client).get("/api/courses/sessions", HTTP_ACCEPT_LANGUAGE="en\x00")
    assert_api_refusal(response, code="invalid_characters")


@pytest.mark.django_db
def test_a_session_cookie_with_a_nul_is_refused_before_the_session_store(client):
    client.cookies["sessionid"] = "abcdefghijklmnop\x00qrstuvwxyz012345"
    response = quiet(client).get("/courses/my/")
    assert response.status_code == 400


@pytest.mark.django_db
def test_ordinary_vietnamese_text_with_new_lines_still_passes(client):
    response = client.post("/accounts/signup/", {
        "full_name": "Trần Thị Ánh\tDương", "email": "anh.duong@example.vn", "password": "Mat-khau-rat-dai-2026",
        **factories.ADULT_SIGNUP})
    assert response.status_code == 302
    assert User.objects.get(email="anh.duong@example.vn").full_name == "Trần Thị Ánh\tDương"


# --- sizes --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_oversized_json_body_is_refused_with_413(technician, lab):
    body = '{"token": "' + "a" * 2_000_000 + '", "lab": "biic"}'
    response = quiet(client_for(technician)).post("/api/booking/checkin", body, content_type="application/json")
    assert_api_refusal(response, status=413, code="too_large")


@pytest.mark.django_db
def test_an_overlong_query_parameter_is_refused(client):
    response = quiet(client).get("/api/machines/", {"lab": "x" * 5000})
    assert_api_refusal(response, code="too_long")


@pytest.mark.django_db
def test_a_string_longer_than_its_column_is_a_validation_error_not_a_500(learner, machine):
    from datetime import timedelta

    from django.utils import timezone

    start = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    response = quiet(client_for(learner)).post("/api/booking/reservations", {
        "lab": "biic", "machine": "laser-01", "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(), "purpose": "p" * 301,
    }, content_type="application/json")
    assert_api_refusal(response, status=422, code="invalid_input")


@pytest.mark.django_db
def test_an_id_beyond_the_database_range_is_a_validation_error(client):
    response = quiet(client).get("/api/courses/sessions/99999999999999999999999")
    assert_api_refusal(response, status=422, code="invalid_input")


# --- dates --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_classes_page_with_a_date_that_is_not_a_date_does_not_fail(client):
    factories.SessionFactory()
    response = quiet(client).get("/courses/", {"date": "x"})
    assert response.status_code in (200, 400)
    assert "Ngày không hợp lệ" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "2101-01-01", "9999-12-31"])
def test_a_machine_day_outside_2000_to_2100_is_refused_on_the_api(client, machine, day):
    response = quiet(client).get(f"/api/booking/machines/biic/laser-01/availability?day={day}")
    assert_api_refusal(response, status=422, code="invalid_input")


@pytest.mark.django_db
@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31"])
def test_a_technicians_day_page_far_outside_the_calendar_does_not_fail(technician, lab, day):
    response = quiet(client_for(technician)).get(f"/booking/labs/biic/day/?day={day}")
    assert response.status_code in (200, 400)


@pytest.mark.django_db
def test_usage_over_an_absurd_period_is_refused(coordinator, lab):
    response = quiet(client_for(coordinator)).get("/api/machines/usage?date_from=0001-01-01&date_to=9999-12-31")
    assert_api_refusal(response, status=422, code="invalid_input")


@pytest.mark.django_db
@pytest.mark.parametrize("month", ["0001-01", "1899-12", "9999-12"])
def test_a_report_for_a_month_outside_the_calendar_is_refused(coordinator, month):
    response = quiet(client_for(coordinator)).get(f"/api/reports/monthly?month={month}")
    assert_api_refusal(response, status=400, code="invalid_month")
    response = quiet(client_for(coordinator)).get(f"/reports/?month={month}")
    assert response.status_code in (400, 404)


@pytest.mark.django_db
def test_a_reservation_in_the_nineteenth_century_is_refused_not_rendered_in_local_mean_time(learner, machine):
    response = quiet(client_for(learner)).post("/api/booking/reservations", {
        "lab": "biic", "machine": "laser-01", "start": "1899-06-01T09:00:00+07:00",
        "end": "1899-06-01T10:00:00+07:00"}, content_type="application/json")
    assert_api_refusal(response, status=422, code="invalid_input")
    assert "+07:06" not in response.content.decode()


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_malformed_json_is_answered_with_code_and_message_in_vietnamese_by_default(technician, lab):
    response = client_for(technician).post("/api/booking/checkin", "{not json", content_type="application/json")
    body = assert_api_refusal(response, code="malformed_json")
    assert body["message"] == "Nội dung gửi lên không phải JSON hợp lệ."


@pytest.mark.django_db
def test_malformed_json_is_answered_in_english_when_the_client_asks_for_it(technician, lab):
    client = client_for(technician)
    response = client.post("/api/booking/checkin", "{not json", content_type="application/json",
                           HTTP_ACCEPT_LANGUAGE="en")
    assert assert_api_refusal(response, code="malformed_json")["message"] == "The request body is not valid JSON."
    client.cookies["django_language"] = "en"
    response = client.post("/api/booking/checkin", "[1,", content_type="application/json")
    assert assert_api_refusal(response, code="malformed_json")["message"] == "The request body is not valid JSON."


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_refused_with_code_and_message(technician, lab):
    response = client_for(technician).post("/api/booking/checkin", "token=x&lab=biic",
                                           content_type="application/x-www-form-urlencoded")
    assert_api_refusal(response, code="unsupported_media_type")
    response = client_for(technician).post("/api/booking/checkin", '{"token": "x", "lab": "biic"}',
                                           content_type="text/plain")
    assert_api_refusal(response, code="unsupported_media_type")


@pytest.mark.django_db
def test_a_body_that_is_not_utf8_is_refused(technician, lab):
    response = client_for(technician).post("/api/booking/checkin", b'{"token": "\xff\xfe", "lab": "biic"}',
                                           content_type="application/json")
    assert_api_refusal(response, code="malformed_json")


@pytest.mark.django_db
def test_validation_errors_carry_code_and_message_in_the_clients_language(technician, lab):
    response = client_for(technician).post("/api/booking/checkin", "{}", content_type="application/json",
                                           HTTP_ACCEPT_LANGUAGE="en")
    body = assert_api_refusal(response, status=422, code="invalid_input")
    assert body["message"] == "The request body or parameters are invalid."
    assert {tuple(error["loc"]) for error in body["details"]} >= {("body", "payload", "token")}


# --- pages that take ids from a form ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("form", [{"undo": "abc"}, {"undo": "9" * 30}, {"kind": "seat", "id": "một"}],
                         ids=["undo-word", "undo-huge", "manual-word"])
def test_a_technician_posting_a_garbled_id_at_the_door_is_told_not_500(lab, technician, form):
    response = quiet(client_for(technician)).post(f"/booking/labs/{lab.slug}/scanner/", form, follow=True)
    assert response.status_code == 200
    assert "Yêu cầu không hợp lệ." in response.content.decode()


@pytest.mark.django_db
def test_a_technician_revoking_with_a_garbled_id_is_told_not_500(lab, technician):
    response = quiet(client_for(technician)).post("/booking/certifications/", {"revoke": "x1", "reason": "hỏng"},
                                                  follow=True)
    assert response.status_code == 200
    assert "Yêu cầu không hợp lệ." in response.content.decode()


# --- the published contract ---------------------------------------------------------------------


@pytest.mark.django_db
def test_the_published_schema_documents_the_error_answers_of_every_operation(client):
    schema = client.get("/api/openapi.json").json()
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"code", "message"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "422", "503"):
                assert status in operation["responses"], (method, path, status)
            if operation.get("security"):
                assert "401" in operation["responses"], (method, path)


@pytest.mark.django_db
def test_the_published_schema_names_each_answer_of_an_operation_once(client):
    """The API docs page parses the schema strictly: a status written twice leaves it blank."""
    twice = []

    def no_repeats(pairs):
        keys = [key for key, _value in pairs]
        twice.extend(sorted({key for key in keys if keys.count(key) > 1}))
        return dict(pairs)

    json.loads(client.get("/api/openapi.json").content, object_pairs_hook=no_repeats)
    assert twice == []
