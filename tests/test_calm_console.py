"""The console tells an operator what matters: a refusal is one line, a crash keeps its traceback."""

import logging

import pytest

from tests.conftest import client_for


@pytest.mark.django_db
def test_a_refused_request_is_logged_in_one_line_without_a_traceback(learner, lab, caplog):
    caplog.set_level(logging.WARNING, logger="django.request")
    response = client_for(learner).get(f"/booking/labs/{lab.slug}/scanner/")
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].exc_info is None
    assert "\n" not in records[0].getMessage()
