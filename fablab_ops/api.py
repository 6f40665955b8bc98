"""The one HTTP API of fablab-ops, mounted at /api/.

Routers live in each app's `api.py`; this module only assembles them and maps
errors to `{"code", "message"}` responses.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.utils import OperationalError
from django.http import Http404
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from fablab_ops.accounts.api import router as accounts_router
from fablab_ops.accounts.auth import api_auth
from fablab_ops.booking.api import router as booking_router
from fablab_ops.courses.api import router as courses_router
from fablab_ops.errors import DomainError
from fablab_ops.machines.api import router as machines_router
from fablab_ops.reports.api import router as reports_router

api = NinjaAPI(
    title="fablab-ops API",
    version="1.0.0",
    description=(
        "Đặt chỗ lớp học, đặt máy và vận hành thiết bị của mạng lưới Fablab Bình Dương. "
        "Class booking, machine reservation and equipment operations for the Bình Dương Fablab network. "
        "Errors are JSON objects `{\"code\": ..., \"message\": ...}`."
    ),
    auth=api_auth,
    urls_namespace="api",
)

api.add_router("/accounts/", accounts_router)
api.add_router("/courses/", courses_router)
api.add_router("/machines/", machines_router)
api.add_router("/booking/", booking_router)
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


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    return _error(request, 422, "invalid_input", _("Dữ liệu gửi lên không hợp lệ."),
                  details=exc.errors)


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
def on_operational_error(request, exc: OperationalError):
    # PostgreSQL's lock_timeout and SQLite's busy timeout both surface here:
    # the request lost a race for a lock, which the client may simply retry.
    text = str(exc).lower()
    if "lock" in text or "locked" in text or "busy" in text:
        return _error(request, 503, "busy", _("Hệ thống đang bận, vui lòng thử lại sau giây lát."))
    raise exc
