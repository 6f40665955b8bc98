"""Response headers that tell browsers what the pages may run and use.

Content-Security-Policy: scripts only from the site itself (no inline script, no
`on…=` attributes, no eval), nothing embedded, the site never framed. Inline style
attributes stay allowed (the day timelines and the API docs set widths inline).
Permissions-Policy: no camera, microphone or location anywhere, except the camera
on the door scanner, which a view marks with `uses_camera`.
"""

from functools import wraps

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
CAMERA_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"


def uses_camera(view):
    """The page may ask for the camera (the door scanner)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Permissions-Policy"] = CAMERA_POLICY
        return response

    return wrapped


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response
