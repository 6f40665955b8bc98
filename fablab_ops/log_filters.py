"""Logging that stays calm: an expected refusal is one line, not a traceback."""

import logging


class RefusalsInOneLine(logging.Filter):
    """django.request logs 4xx answers with the exception that caused them; a refusal (403, 404, 409…) is
    the service working as meant, so its line stays and its traceback goes. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
