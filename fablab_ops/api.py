"""The one HTTP API of fablab-ops, mounted at /api/.

Routers live in each app's `api.py`; this module only assembles them and maps
errors to `{"code", "message"}` responses.
"""

import json
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.utils import InterfaceError, OperationalError
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from fablab_ops import outages, validation
from fablab_ops.accounts.api import router as accounts_router
from fablab_ops.accounts.auth import api_auth
from fablab_ops.booking.api import router as booking_router
from fablab_ops.courses.api import router as courses_router
from fablab_ops.door.api import router as door_router
from fablab_ops.errors import DomainError
from fablab_ops.machines.api import router as machines_router
from fablab_ops.reports.api import router as reports_router


class GuardedParser(Parser):
    """JSON bodies only, UTF-8 only, no control characters in any key or string (fablab_ops/validation.py)."""

    def parse_body(self, request):
        return validation.parse_json_body(request)


class LocalTimeEncoder(NinjaJSONEncoder):
    """Every datetime leaves with an offset, in the labs' zone (+07:00).

    A naive datetime is read as local time. Moments before Asia/Ho_Chi_Minh took a whole-minute
    offset (its local mean time was +07:06:30) are written in UTC, which RFC 3339 can express.
    """

    def default(self, o):
        if isinstance(o, datetime):
            tz = timezone.get_default_timezone()
            o = timezone.make_aware(o, tz) if timezone.is_naive(o) else o.astimezone(tz)
            if o.utcoffset().seconds % 60:
                o = o.astimezone(UTC)
        return super().default(o)


class LocalTimeRenderer(JSONRenderer):
    encoder_class = LocalTimeEncoder


ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "What went wrong, for programs: not_found, busy, …"},
        "message": {"type": "string", "description": "What went wrong, for people, in the request's language"},
        "details": {"description": "Optional: the fields at fault"},
    },
}
EDGE_RESPONSES = {
    "400": "Bad input: control characters, a value too long, malformed JSON, not JSON",
    "413": "The request body is too large",
    "422": "A parameter or a field of the body does not fit its type or range",
    "503": "The database is busy (code `busy`) or out of reach (`unavailable`); retry after `Retry-After` seconds",
}


class SwaggerPage(Swagger):
    """Swagger UI, rendered from fablab_ops/templates/ninja/swagger.html with ninja's files served by this site.
    django-ninja does so only when it is an installed app (else it points at a CDN), and it is not one here
    (settings.NINJA_FILES says why)."""

    def render_page(self, request, api, **kwargs):
        self.settings["url"] = self.get_openapi_url(api, kwargs)
        return render(request, self.template, {
            "swagger_settings": json.dumps(self.settings, indent=1), "api": api,
            # The browser's session needs the CSRF token to call the API from the page.
            "add_csrf": any(getattr(auth, "csrf", False) for auth in api.auth),
        })


class FablabAPI(NinjaAPI):
    """The answers every operation may give at the edge are part of the published schema."""

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                # django-ninja keys its answers by int, JSON by text: one key per status, or 400 is written twice.
                responses = operation["responses"] = {str(status): answer for status, answer
                                                      in operation.get("responses", {}).items()}
                edge = dict(EDGE_RESPONSES)
                if operation.get("security"):
                    edge["401"] = "Not signed in, or the API token is not valid"
                for status, description in edge.items():
                    responses.setdefault(status, {"description": description, "content": error})
        return schema


api = FablabAPI(
    title="fablab-ops API",
    version="1.0.0",
    description=(
        "Đặt chỗ lớp học, đặt máy và vận hành thiết bị của mạng lưới Fablab Bình Dương. "
        "Class booking, machine reservation and equipment operations for the Bình Dương Fablab network. "
        "Errors are JSON objects `{\"code\": ..., \"message\": ...}`."
    ),
    auth=api_auth,
    urls_namespace="api",
    parser=GuardedParser(),
    renderer=LocalTimeRenderer(),
    # Without deep links: Swagger UI puts each one, a link, inside the button that opens the operation.
    docs=SwaggerPage(settings={"deepLinking": False}),
)

api.add_router("/accounts/", accounts_router)
api.add_router("/courses/", courses_router)
api.add_router("/machines/", machines_router)
api.add_router("/booking/", booking_router)
api.add_router("/booking/", door_router)
api.add_router("/reports/", reports_router)


@api.get("/health", auth=None, tags=["service"], summary="Liveness: the web process answers")
def health(request):
    return {"status": "ok"}


def _error(request, status: int, code: str, message: str, **extra):
    body = {"code": code, "message": message}
    body.update(extra)
    return api.create_response(request, body, status=status)


@api.exception_handler(DomainError)
def on_domain_error(request, exc: DomainError):
    return api.create_response(request, exc.as_dict(), status=exc.status)


HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 413: "too_large", 429: "throttled"}


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    """ninja's own refusals, chiefly "Cannot parse request body", in the API's `{"code", "message"}`."""
    cause = exc.__cause__
    if isinstance(cause, DomainError):
        return on_domain_error(request, cause)
    if isinstance(cause, RequestDataTooBig):
        return on_domain_error(request, validation.TooLarge())
    if isinstance(cause, ValueError):
        return on_domain_error(request, validation.MalformedJson())
    status = exc.status_code
    messages = {400: _("Dữ liệu gửi lên không hợp lệ."), 401: _("Hãy đăng nhập hoặc gửi khóa API hợp lệ."),
                403: _("Bạn không có quyền thực hiện thao tác này."), 404: _("Không tìm thấy."),
                405: _("Địa chỉ này không nhận yêu cầu kiểu này."), 413: _("Dữ liệu gửi lên quá lớn."),
                429: _("Quá nhiều yêu cầu; hãy thử lại sau ít phút.")}
    # Never ninja's own (English) words: a status without a sentence of ours gets the general one.
    return _error(request, status, HTTP_ERROR_CODES.get(status, "invalid_request"),
                  messages.get(status, _("Không thể thực hiện yêu cầu này.")))


def _error_detail(error: dict) -> dict:
    # Only what a client can act on; pydantic's `ctx` may hold exception objects, `input` may be huge.
    return {"type": error.get("type", ""), "loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))}


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    return _error(request, 422, "invalid_input", _("Dữ liệu gửi lên không hợp lệ."),
                  details=[_error_detail(error) for error in exc.errors])


@api.exception_handler(DjangoValidationError)
def on_model_validation_error(request, exc: DjangoValidationError):
    details = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return _error(request, 422, "invalid_input", "; ".join(exc.messages), details=details)


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc):
    return _error(request, 401, "unauthenticated", _("Hãy đăng nhập hoặc gửi khóa API hợp lệ."))


@api.exception_handler(DjangoPermissionDenied)
def on_forbidden(request, exc):
    return _error(request, 403, "forbidden", str(exc) or _("Bạn không có quyền thực hiện thao tác này."))


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return _error(request, 404, "not_found", _("Không tìm thấy."))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_outage(request, exc):
    """A lock timeout is "busy", an unreachable database "unavailable": 503 with Retry-After, by error class."""
    kind = outages.classify(exc)
    if kind is None:
        raise exc
    return outages.response(request, kind)
