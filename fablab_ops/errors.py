"""Domain errors: raised by services, turned into `{"code", "message"}` by the API.

Services raise these instead of returning flags so that every caller (API, web
pages, Celery tasks, the MQTT ingest) refuses bad requests the same way.
"""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    status = 400
    code = "invalid_request"
    default_message = _("Không thể thực hiện yêu cầu này.")

    def __init__(self, message=None, *, code: str | None = None, status: int | None = None, **details):
        self.message = str(message or self.default_message)
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details
        super().__init__(self.message)

    def as_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class NotFound(DomainError):
    status = 404
    code = "not_found"
    default_message = _("Không tìm thấy.")


class PermissionDenied(DomainError):
    status = 403
    code = "forbidden"
    default_message = _("Bạn không có quyền thực hiện thao tác này.")


class Conflict(DomainError):
    status = 409
    code = "conflict"
    default_message = _("Yêu cầu xung đột với trạng thái hiện tại.")


class Busy(DomainError):
    """A lock could not be taken in time; the client should simply retry."""

    status = 503
    code = "busy"
    default_message = _("Hệ thống đang bận, vui lòng thử lại sau giây lát.")
