"""QR ticket tokens: opaque, signed, and bound to one booking.

A token is `<kind><code>.<mac>`: `kind` is `S` (seat booking) or `R` (machine
reservation), `code` the booking's random `ticket_code`, and `mac` an HMAC-SHA256
over both with a key derived from SECRET_KEY. Nothing in it is a database id or
personal data; changing any character breaks the MAC, and rotating a booking's
`ticket_code` makes its old tickets unknown.
"""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings
from django.utils.crypto import salted_hmac

SEAT = "S"
RESERVATION = "R"
KINDS = (SEAT, RESERVATION)
_SALT = "fablab_ops.booking.tickets"
_MAC_BYTES = 16


class InvalidTicket(ValueError):
    """The token is not one this service issued (forged, altered or truncated)."""


def new_ticket_code() -> str:
    return secrets.token_urlsafe(16)


def _mac(payload: str) -> str:
    digest = salted_hmac(_SALT, payload, secret=settings.SECRET_KEY, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).rstrip(b"=").decode()


def sign(kind: str, ticket_code: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown ticket kind {kind!r}")
    payload = kind + ticket_code
    return f"{payload}.{_mac(payload)}"


def verify(token: str) -> tuple[str, str]:
    """Return (kind, ticket_code) of a genuine token, or raise InvalidTicket."""
    token = (token or "").strip()
    payload, dot, mac = token.rpartition(".")
    if not dot or len(payload) < 2 or payload[0] not in KINDS or not mac:
        raise InvalidTicket("malformed")
    if not hmac.compare_digest(mac.encode(), _mac(payload).encode()):
        raise InvalidTicket("bad signature")
    return payload[0], payload[1:]


def fingerprint(token: str) -> str:
    """A short, non-reversible label of a token for logs of refused scans."""
    return hashlib.sha256((token or "").encode()).hexdigest()[:12]


def qr_svg(token: str) -> str:
    """The token as an inline SVG QR code (scales cleanly on a phone screen and on paper)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(token, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return image.to_string(encoding="unicode")


def qr_png(token: str) -> bytes:
    import io

    import qrcode

    buffer = io.BytesIO()
    qrcode.make(token, box_size=8, border=2).save(buffer, format="PNG")
    return buffer.getvalue()
