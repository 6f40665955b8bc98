"""What a debug page may show: Django's filter, plus every URL-shaped setting (they carry passwords)."""

import re

from django.views.debug import SafeExceptionReporterFilter


class SafeSettingsFilter(SafeExceptionReporterFilter):
    # Django hides settings named like API, TOKEN, KEY, SECRET, PASS, SIGNATURE; a service URL such as
    # MQTT_URL or CELERY_BROKER_URL holds its password inside the value, so URLs are hidden too.
    hidden_settings = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN", flags=re.IGNORECASE)
