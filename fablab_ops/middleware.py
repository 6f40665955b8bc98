"""Request guards: bad input refused early, an unreachable database answered 503."""

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _

from fablab_ops import outages, validation
from fablab_ops.validation import InvalidInput, TooLarge, TooLong

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def refusal(request, error: InvalidInput):
    """`{"code", "message"}` on the API, a friendly page on the site."""
    if outages.is_api(request):
        return JsonResponse({"code": error.code, "message": error.message}, status=error.status)
    title = _("Nội dung quá lớn") if error.status == 413 else _("Yêu cầu không hợp lệ")
    return outages.error_page(error.status if error.status in (400, 413) else 400, title, error.message)


def _header_text(value: str) -> str:
    # WSGI hands header values over as latin-1; a client's UTF-8 is read as UTF-8 before judging it.
    try:
        return value.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return value


class InputGuardMiddleware:
    """Refuses control characters and oversized input anywhere in a request, before any view or query.

    Placed after LocaleMiddleware (which reads headers without touching the database), so the
    refusal speaks the client's language, and before everything that may reach the database.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            self.check(request)
        except InvalidInput as error:
            return refusal(request, error)
        return self.get_response(request)

    def check(self, request):
        if len(request.path) > validation.MAX_PATH_LENGTH:
            raise TooLong()
        validation.check_text(request.path, where="path")
        for name, value in request.META.items():
            if name.startswith("HTTP_") and isinstance(value, str):
                if len(value) > validation.MAX_HEADER_LENGTH:
                    raise TooLong()
                validation.check_text(_header_text(value), where="header")
        for name, value in request.COOKIES.items():
            validation.check_text(name, where="cookie")
            validation.check_text(value, where="cookie")
        self.check_fields(request.GET, "query")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise InvalidInput() from None
        if length > validation.upload_limit():
            raise TooLarge()
        if request.method not in ("GET", "HEAD", "OPTIONS") and request.content_type in FORM_TYPES:
            try:
                self.check_fields(request.POST, "form")
                for name, uploads in request.FILES.lists():
                    validation.check_text(name, where="form")
                    for upload in uploads:
                        validation.check_text(upload.name or "", where="form")
            except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent):
                raise TooLarge() from None
            except MultiPartParserError:
                raise InvalidInput() from None

    @staticmethod
    def check_fields(data, where: str):
        for key, values in data.lists():
            validation.check_text(key, where=where)
            for value in values:
                if len(value) > validation.MAX_QUERY_VALUE_LENGTH and where == "query":
                    raise TooLong(where=f"{where}:{key}")
                validation.check_text(value, where=f"{where}:{key}")


class DatabaseOutageMiddleware:
    """A page whose view meets a lock timeout or an unreachable database answers 503, not 500.

    The API answers these itself (fablab_ops/api.py); errors raised before any view (a session
    loaded in a middleware) reach `fablab_ops.views.server_error`, which answers the same way.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        kind = outages.classify(exception)
        if kind is None:
            return None
        return outages.response(request, kind)
