"""Links in e-mails: absolute, on the address the site is served at (SITE_URL)."""

from django import template
from django.conf import settings
from django.urls import reverse

register = template.Library()


@register.simple_tag
def absolute_url(name: str, *args, fragment: str = "") -> str:
    url = settings.SITE_URL.rstrip("/") + reverse(name, args=args)
    return f"{url}#{fragment}" if fragment else url
