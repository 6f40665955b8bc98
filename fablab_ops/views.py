"""Error handlers: JSON `{"code", "message"}` under /api/, a page that needs no database elsewhere."""

from django.core.exceptions import BadRequest
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

from fablab_ops import outages


def bad_request(request, exception=None):
    # A BadRequest raised by a view carries a message meant for the user; other 400s (a forged
    # host, a broken multipart body) do not.
    message = str(exception) if isinstance(exception, BadRequest) and str(exception) else _("Yêu cầu không hợp lệ.")
    if outages.is_api(request):
        return JsonResponse({"code": "bad_request", "message": message}, status=400)
    return outages.error_page(400, _("Yêu cầu không hợp lệ"), message)


def page_not_found(request, exception=None):
    if outages.is_api(request):
        return JsonResponse({"code": "not_found", "message": _("Không tìm thấy.")}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """Called while the uncaught exception is being handled: an outage of the database is a 503."""
    kind = outages.current_outage()
    if kind is not None:
        return outages.response(request, kind)
    message = _("Đã có lỗi xảy ra phía máy chủ. Chúng tôi đã ghi nhận và sẽ xử lý.")
    if outages.is_api(request):
        return JsonResponse({"code": "server_error", "message": message}, status=500)
    return outages.error_page(500, _("Lỗi máy chủ"), message)
