"""Error handlers (JSON `{"code", "message"}` under /api/, a page that needs no database elsewhere), and the
operators' endpoints: /healthz, /readyz, /metrics."""

import logging

from django.core.exceptions import BadRequest
from django.http import Http404, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults

from fablab_ops import health, outages
from fablab_ops import metrics as monitoring

logger = logging.getLogger(__name__)


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


# --- for operators: liveness, readiness, metrics (fablab_ops/health.py, fablab_ops/metrics.py) ---------

def healthz(request):
    """The process answers; nothing else is touched."""
    response = HttpResponse("ok\n", content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def readyz(request):
    """Every dependency and bound, each named; 503 when one fails."""
    readiness = health.readiness()
    response = JsonResponse(readiness.as_dict(), status=200 if readiness.ready else 503,
                            json_dumps_params={"ensure_ascii": False})
    response["Cache-Control"] = "no-store"
    if not readiness.ready:
        # Probed every few seconds: one warning naming what fails, not Django's error with a traceback each time.
        logger.warning("not ready: %s", ", ".join(readiness.failing))
        response._has_been_logged = True
    return response


def metrics(request):
    """Prometheus's text format, for a bearer of METRICS_TOKEN or, without one, the internal network."""
    refusal = monitoring.scrape_allowed(request)
    if refusal == "token":
        return HttpResponse(_("Cần khóa truy cập số liệu hợp lệ.") + "\n", status=403,
                            content_type="text/plain; charset=utf-8")
    if refusal is not None:
        raise Http404()
    body, media_type = monitoring.exposition()
    response = HttpResponse(body, content_type=media_type)
    response["Cache-Control"] = "no-store"
    return response
