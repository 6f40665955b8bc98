"""The database is busy or out of reach: recognised by error class, answered 503 with Retry-After.

A lock that cannot be taken within `lock_timeout` (or a statement cancelled by
`statement_timeout`, a deadlock, a serialisation failure) is "busy": the same
request will very likely succeed in a moment. A refused or broken connection,
a server shutting down or out of connection slots is "unavailable". Both are
answered 503 with `Retry-After`, as JSON `{"code", "message"}` on the API and as
a page that renders without the database everywhere else.
"""

import logging
import sqlite3
import sys

import psycopg
from django.db import DatabaseError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.utils.translation import gettext as _

API_PREFIX = "/api/"
logger = logging.getLogger(__name__)

BUSY = "busy"
UNAVAILABLE = "unavailable"
RETRY_AFTER = {BUSY: 3, UNAVAILABLE: 30}

_BUSY_ERRORS = (
    psycopg.errors.LockNotAvailable,  # 55P03, lock_timeout
    psycopg.errors.QueryCanceled,  # 57014, statement_timeout
    psycopg.errors.DeadlockDetected,  # 40P01
    psycopg.errors.SerializationFailure,  # 40001
)
_UNAVAILABLE_ERRORS = (
    psycopg.errors.ConnectionException,  # class 08
    psycopg.errors.AdminShutdown,  # 57P01
    psycopg.errors.CrashShutdown,  # 57P02
    psycopg.errors.CannotConnectNow,  # 57P03, starting up or in recovery
    psycopg.errors.TooManyConnections,  # 53300
    psycopg.InterfaceError,  # the connection is closed or broken
)
_SQLITE_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def classify(exc: BaseException | None) -> str | None:
    """BUSY, UNAVAILABLE, or None for an error that is not the database's availability."""
    if exc is None or not isinstance(exc, DatabaseError | psycopg.Error | sqlite3.Error):
        return None
    for error in _chain(exc):
        if isinstance(error, _BUSY_ERRORS):
            return BUSY
        if isinstance(error, _UNAVAILABLE_ERRORS):
            return UNAVAILABLE
        if isinstance(error, psycopg.OperationalError) and error.sqlstate is None:
            # psycopg raises its base OperationalError, without a SQLSTATE, when it cannot connect at all.
            return UNAVAILABLE
        if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) in _SQLITE_BUSY:
            return BUSY
    return None


def current_outage() -> str | None:
    """The outage behind the exception being handled, if it is one (for the 500 handler)."""
    return classify(sys.exc_info()[1])


def is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def messages_for(kind: str) -> tuple[str, str]:
    if kind == BUSY:
        return (_("Hệ thống đang bận"), _("Hệ thống đang bận, vui lòng thử lại sau giây lát."))
    return (_("Tạm thời không phục vụ được"),
            _("Cơ sở dữ liệu tạm thời không truy cập được. Vui lòng thử lại sau ít phút."))


def response(request, kind: str) -> HttpResponse:
    cause = sys.exc_info()[1]
    logger.warning("database %s (%s): %s %s answered 503", kind, type(cause).__name__ if cause else "-",
                   request.method, request.path)
    title, message = messages_for(kind)
    if is_api(request):
        answer = JsonResponse({"code": kind, "message": message}, status=503)
    else:
        answer = error_page(503, title, message)
    answer["Retry-After"] = str(RETRY_AFTER[kind])
    return answer


def error_page(status: int, title: str, message: str) -> HttpResponse:
    """A friendly page rendered without the request: no user, no session, no database."""
    html = loader.render_to_string(f"{status}.html", {"title": title, "message": message})
    return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
