"""Settings read from the environment, with embedded defaults for a laptop.

Unset variables give a self-contained demo: SQLite, Celery tasks run in-process,
an MQTT broker on localhost. Production sets DATABASE_URL, CELERY_BROKER_URL,
MQTT_URL and a real SECRET_KEY (see README, "Configuration").
"""

import importlib.util
import os
import re
import sys
from email.utils import parseaddr
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def _application_name() -> str:
    """The name PostgreSQL shows for this process's connections (`pg_stat_activity.application_name`), so that
    whoever looks at a lock held too long or a transaction left idle sees which service holds it:
    DB_APPLICATION_NAME (docker-compose.yml names each service), else the program and, for manage.py, its
    command ("fablab-ops gunicorn", "fablab-ops mqtt_ingest"). PostgreSQL keeps 63 printable ASCII characters."""
    name = os.environ.get("DB_APPLICATION_NAME", "")
    if not name:
        argv = sys.argv or [""]
        program = Path(argv[0]).name or "python"
        if program == "__main__.py":  # python -m gunicorn, python -m pytest
            program = Path(argv[0]).parent.name
        if program in {"manage.py", "django-admin"} and len(argv) > 1:
            program = argv[1]
        name = f"fablab-ops {program}"
    return re.sub(r"[^\x20-\x7e]", "?", name)[:63]


DEVELOPMENT_SECRET_KEY = "django-insecure-fablab-ops-development-key-do-not-use-in-production"
# Off unless set: a deployment that forgets it must not serve debug pages (`make run` sets DEBUG=1).
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if not DEBUG and (SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a long random value when DEBUG is off "
        "(python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

DEFAULT_EXCEPTION_REPORTER_FILTER = "fablab_ops.debug.SafeSettingsFilter"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # The admin's modules are loaded with the URLs (fablab_ops/urls.py), not when Django starts: a process that
    # serves no page (the MQTT ingest, Celery) starts without them.
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "fablab_ops.accounts",
    "fablab_ops.machines",
    "fablab_ops.courses",
    "fablab_ops.booking",
    "fablab_ops.reports",
    "fablab_ops.privacy",
    "fablab_ops.demo",
]

MIDDLEWARE = [
    # Outermost, so every answer is timed (fablab_ops/metrics.py).
    "fablab_ops.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "fablab_ops.security.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # Bad input is refused here, before anything below may reach the database.
    "fablab_ops.middleware.InputGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "fablab_ops.middleware.DatabaseOutageMiddleware",
]

ROOT_URLCONF = "fablab_ops.urls"
WSGI_APPLICATION = "fablab_ops.wsgi.application"

# django-ninja's own templates and files (Swagger UI), served from this site, where the CSP allows scripts from.
# ninja is not an installed app: as one it would load all of itself (pydantic included, about 70 ms) into every
# process that starts Django, the MQTT ingest and Celery too; the API docs page says which template it renders
# (fablab_ops/api.py). find_spec finds the package without running it.
NINJA_FILES = Path(importlib.util.find_spec("ninja").origin).parent

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "fablab_ops" / "templates", NINJA_FILES / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "fablab_ops.accounts.context_processors.navigation",
            ],
        },
    },
]

# SQLite is the laptop default. IMMEDIATE transactions take the write lock at BEGIN,
# so concurrent writers queue on the busy timeout instead of failing with
# "database is locked" when a read lock is upgraded mid-transaction.
SQLITE_PATH = os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Django's PostgreSQL backend with a health check that reads the socket instead of a round trip
    # (fablab_ops/postgresql/base.py).
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        DATABASES["default"]["ENGINE"] = "fablab_ops.postgresql"
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].setdefault("application_name", _application_name())
    # A booking that cannot get its row lock within this bound is answered
    # "busy, try again" rather than holding a worker hostage.
    # And a random page costs the planner 1.1 sequential ones, not PostgreSQL's default 4 (a figure for
    # spinning disks): the service's tables live in memory or on SSD. With 4, a month's report hashed every
    # booking of the whole history instead of probing the month's sessions' index entries, so its cost grew
    # with the years kept (bench/report.py's two years: the month's seat counts took 4.1 ms, 1.3 ms by index).
    DATABASES["default"]["OPTIONS"].setdefault(
        "options", f"-c lock_timeout={int(os.environ.get('DB_LOCK_TIMEOUT_MS', '5000'))}"
                   f" -c random_page_cost={float(os.environ.get('DB_RANDOM_PAGE_COST', '1.1'))}"
    )

# Request sizes: no form or JSON body the service expects comes near these.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(1024 * 1024)))
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "courses:session_list"
LOGOUT_REDIRECT_URL = "courses:session_list"

# Every login form (the site's, the admin's) authenticates through the throttled backend.
AUTHENTICATION_BACKENDS = ["fablab_ops.accounts.throttle.ThrottledModelBackend"]
# How many reverse proxies in front of the web process append to X-Forwarded-For (0: none,
# REMOTE_ADDR is the client). Behind the production TLS proxy: 1.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
     "OPTIONS": {"user_attributes": ["email", "full_name", "phone"]}},
    {"NAME": "fablab_ops.accounts.passwords.PersonalPasswordValidator"},
    {"NAME": "fablab_ops.accounts.passwords.VietnameseCommonPasswordValidator"},
    {"NAME": "fablab_ops.accounts.passwords.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "vi"
# Each language under its own name, whatever the page's language (Django's catalogue would call English "Tiếng Anh").
LANGUAGES = [("vi", "Tiếng Việt"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "fablab_ops" / "locale"]
TIME_ZONE = "Asia/Ho_Chi_Minh"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "fablab_ops" / "static", NINJA_FILES / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Files no URL serves (schools' scanned consent documents): outside MEDIA_ROOT, read through a checked view.
PRIVATE_MEDIA_ROOT = Path(os.environ.get("PRIVATE_MEDIA_ROOT", BASE_DIR / "private"))

# Production hardening; `manage.py check --deploy` passes once DEBUG is off.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes inside the container or the internal network speak plain HTTP to these (docker-compose.yml).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 0 if DEBUG else int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# Where the file-based backends write (`make run` uses fablab_ops.mail.OneFilePerMessageBackend: var/mail/).
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))
# "Fablab Bình Dương" is the network's name, which it keeps; since 1 July 2025 Bình Dương is part of Hồ Chí Minh
# City, so the sender says where the network now is rather than naming a province that no longer exists.
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL",
                                    "Mạng lưới Fablab Bình Dương · TP. Hồ Chí Minh <fablab@localhost>")
# Where the site is served, for links in e-mails.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")
# Where learners write to the labs: the ORGANIZER of every calendar event (by default the sender address).
FABLAB_CONTACT_EMAIL = os.environ.get("FABLAB_CONTACT_EMAIL", "") or parseaddr(DEFAULT_FROM_EMAIL)[1]

# Bumped whenever the notice's text changes: each consent keeps the version it answered.
PRIVACY_NOTICE_VERSION = "2026-11"

# The controller of learners' personal data (Law 91/2025/QH15), named on the privacy notice (/privacy/).
# Bình Dương's department merged into Hồ Chí Minh City's on 1 July 2025.
PRIVACY_CONTROLLER_NAME = os.environ.get("PRIVACY_CONTROLLER_NAME", "Sở Khoa học và Công nghệ Thành phố Hồ Chí Minh")
# The controller's postal address and e-mail are the deployment's to state (PRIVACY_CONTROLLER_*): none is
# guessed here. Without them the notice names the controller and the service's own sender address.
PRIVACY_CONTROLLER_ADDRESS = os.environ.get("PRIVACY_CONTROLLER_ADDRESS", "")
PRIVACY_CONTROLLER_EMAIL = os.environ.get("PRIVACY_CONTROLLER_EMAIL", "") or parseaddr(DEFAULT_FROM_EMAIL)[1]
# Retention (fablab_ops/privacy/retention.py, run daily by beat), in days: a learner inactive for
# INACTIVE_WARN_DAYS is warned by e-mail, and anonymised INACTIVE_GRACE_DAYS later unless they came back;
# refused door scans, sent or failed e-mails are deleted after their own period (never before last month ends,
# so the monthly report being prepared keeps its rows).
PRIVACY_RETENTION = {
    "INACTIVE_WARN_DAYS": int(os.environ.get("PRIVACY_INACTIVE_WARN_DAYS", "730")),
    "INACTIVE_GRACE_DAYS": int(os.environ.get("PRIVACY_INACTIVE_GRACE_DAYS", "30")),
    "REFUSED_SCANS_DAYS": int(os.environ.get("PRIVACY_REFUSED_SCANS_DAYS", "90")),
    "NOTIFICATIONS_DAYS": int(os.environ.get("PRIVACY_NOTIFICATIONS_DAYS", "365")),
}

# The monthly report's PDF follows the layout of an administrative report (Decree 30/2020/ND-CP): who governs
# and who issues it, where, its number, who signs and who receives it. Names change with administrative
# reforms, so they are settings. A lab's report is issued by the lab, under its host (Lab.host).
REPORT_GOVERNING_BODY = os.environ.get("REPORT_GOVERNING_BODY", "Sở Khoa học và Công nghệ Thành phố Hồ Chí Minh")
REPORT_ISSUING_UNIT = os.environ.get("REPORT_ISSUING_UNIT", "Trung tâm Sáng kiến cộng đồng và Hỗ trợ khởi nghiệp")
REPORT_NETWORK_NAME = os.environ.get("REPORT_NETWORK_NAME", "Mạng lưới Fablab Bình Dương")
REPORT_PLACE = os.environ.get("REPORT_PLACE", "Thành phố Hồ Chí Minh")
# "{code}" is the issuer's code: REPORT_NETWORK_CODE for the network, the lab's slug in capitals for a lab.
REPORT_NUMBER_PATTERN = os.environ.get("REPORT_NUMBER_PATTERN", "Số: ……/BC-{code}")
REPORT_NETWORK_CODE = os.environ.get("REPORT_NETWORK_CODE", "BIIC")
REPORT_SIGNER_POSITION = os.environ.get("REPORT_SIGNER_POSITION", "Giám đốc")
REPORT_SIGNER_NAME = os.environ.get("REPORT_SIGNER_NAME", "")
REPORT_LAB_SIGNER_POSITION = os.environ.get("REPORT_LAB_SIGNER_POSITION", "Phụ trách phòng lab")
# Recipients ("Nơi nhận"), separated by ";". A lab's report goes to the network's issuing unit and is filed.
REPORT_RECIPIENTS = os.environ.get(
    "REPORT_RECIPIENTS", f"{REPORT_GOVERNING_BODY} (để báo cáo);Các phòng lab của mạng lưới;Lưu: VT")

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Login and sign-up throttling (accounts/throttle.py) counts in this cache; only a shared
# cache (Redis) counts across processes, which the single-process laptop demo does not need.

# Without a broker, Celery runs each task in-process when it is queued, which
# keeps the laptop demo to a single process.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
# Delivery semantics (README, "Celery delivery"): a task is acknowledged after it ran, and a task whose
# worker died is redelivered; so every task is idempotent (outbox rows, dedup keys). Redis redelivers an
# unacknowledged task after the visibility timeout: sized above the longest task (the hard time limit),
# not kombu's default hour. Queuing at commit gives up quickly: the outbox sweep sends what was not queued.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 900}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5,
                                    "interval_max": 1}
CELERY_TIMEZONE = TIME_ZONE
# The e-mail outbox (fablab_ops/notifications.py): a claimed row belongs to its worker for OUTBOX_LEASE_S
# (above EMAIL_TIMEOUT, below the visibility timeout), and beat sweeps what is due every OUTBOX_SWEEP_S.
OUTBOX_LEASE_S = int(os.environ.get("OUTBOX_LEASE_S", "300"))
OUTBOX_SWEEP_S = float(os.environ.get("OUTBOX_SWEEP_S", "60"))
# Seconds between runs, or {"crontab": {...}}: the fields of Celery's crontab, which fablab_ops/celery.py makes
# into one (the settings do not import Celery, so that a process which queues no task starts without it).
CELERY_BEAT_SCHEDULE = {
    "send-due-notifications": {"task": "fablab_ops.accounts.tasks.send_due_notifications",
                               "schedule": OUTBOX_SWEEP_S},
    "send-last-months-report": {
        "task": "fablab_ops.reports.tasks.send_last_months_report",
        "schedule": {"crontab": {"minute": 0, "hour": 7, "day_of_month": 1}},
    },
    "expire-seat-offers": {"task": "fablab_ops.courses.tasks.expire_seat_offers", "schedule": 300.0},
    "cancel-undersubscribed-sessions": {
        "task": "fablab_ops.courses.tasks.cancel_undersubscribed_sessions", "schedule": 900.0,
    },
    "send-session-reminders": {"task": "fablab_ops.courses.tasks.send_session_reminders", "schedule": 900.0},
    "mark-seat-no-shows": {"task": "fablab_ops.courses.tasks.mark_seat_no_shows", "schedule": 900.0},
    "release-reservation-no-shows": {
        "task": "fablab_ops.booking.tasks.release_reservation_no_shows", "schedule": 60.0,
    },
    "mark-silent-machines-offline": {
        "task": "fablab_ops.machines.tasks.mark_silent_machines_offline", "schedule": 30.0,
    },
    "finish-reservations": {"task": "fablab_ops.booking.tasks.finish_reservations", "schedule": 60.0},
    # Machines' desired states: refreshed at their boundaries, and published until the broker has them.
    "sync-desired-states": {"task": "fablab_ops.booking.tasks.sync_desired_states", "schedule": 2.0},
    "lapse-unused-certifications": {
        "task": "fablab_ops.booking.tasks.lapse_unused_certifications", "schedule": 86400.0,
    },
    "apply-retention": {
        "task": "fablab_ops.privacy.tasks.apply_retention", "schedule": {"crontab": {"minute": 30, "hour": 2}},
    },
}

# Operators' endpoints (fablab_ops/health.py, fablab_ops/metrics.py, docs/operations.md, "Monitoring").
# /readyz fails when an e-mail has been due this long, or a machine's desired state unpublished this long.
READY_OUTBOX_LATE_S = int(os.environ.get("READY_OUTBOX_LATE_S", "600"))
READY_DESIRED_LATE_S = int(os.environ.get("READY_DESIRED_LATE_S", "300"))
# 0: the ingest's lag is shown but not judged (a night with every device off is not a failure).
READY_INGEST_MAX_LAG_S = int(os.environ.get("READY_INGEST_MAX_LAG_S", "0"))
# /metrics: a bearer token, or without one the loopback and internal networks only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_ALLOWED_NETWORKS = os.environ.get("METRICS_ALLOWED_NETWORKS", "")

MQTT_URL = os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883")
MQTT_PROTOCOL = os.environ.get("MQTT_PROTOCOL", "5")
MQTT_CLIENT_ID = os.environ.get("MQTT_CLIENT_ID", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"refusals_in_one_line": {"()": "fablab_ops.log_filters.RefusalsInOneLine"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's default configuration gives the "django" logger its own console handler in DEBUG, which
        # printed every refusal (and its traceback) a second time beside the root's: the root prints it once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.request": {"filters": ["refusals_in_one_line"]},
        # With tasks run in-process (the laptop demo), Celery would log a line for every task it ran, every few
        # seconds (failures still show), and kombu warns at every task that no broker host is set: there is
        # no broker to reach then.
        **({"celery.app.trace": {"level": "WARNING"}, "kombu.connection": {"level": "ERROR"}}
           if CELERY_TASK_ALWAYS_EAGER else {}),
    },
}

# Business rules a coordinator may tune without a code change.
FABLAB = {
    "BOOKING_CANCEL_DEADLINE_HOURS": int(os.environ.get("BOOKING_CANCEL_DEADLINE_HOURS", "24")),
    "WAITLIST_OFFER_HOURS": int(os.environ.get("WAITLIST_OFFER_HOURS", "24")),
    "CHECKIN_OPENS_MINUTES_BEFORE": int(os.environ.get("CHECKIN_OPENS_MINUTES_BEFORE", "30")),
    "RESERVATION_GRACE_MINUTES": int(os.environ.get("RESERVATION_GRACE_MINUTES", "15")),
    "CHECKIN_UNDO_MINUTES": int(os.environ.get("CHECKIN_UNDO_MINUTES", "5")),
    # The longest a technician may enable a machine for maintenance at once ("Bật để bảo trì đến …").
    "MAINTENANCE_OVERRIDE_MAX_HOURS": 12,
    # NO_SHOW_LIMIT machine no-shows within NO_SHOW_WINDOW_DAYS shorten how far ahead the
    # learner may reserve to NO_SHOW_PENALTY_HORIZON_DAYS, for NO_SHOW_PENALTY_DAYS.
    "NO_SHOW_LIMIT": int(os.environ.get("NO_SHOW_LIMIT", "3")),
    "NO_SHOW_WINDOW_DAYS": int(os.environ.get("NO_SHOW_WINDOW_DAYS", "60")),
    "NO_SHOW_PENALTY_DAYS": int(os.environ.get("NO_SHOW_PENALTY_DAYS", "30")),
    "NO_SHOW_PENALTY_HORIZON_DAYS": int(os.environ.get("NO_SHOW_PENALTY_HORIZON_DAYS", "2")),
    "CERTIFICATION_LAPSE_REMINDER_DAYS": int(os.environ.get("CERTIFICATION_LAPSE_REMINDER_DAYS", "14")),
    # Failed logins and sign-ups are counted in windows of this length (accounts/throttle.py).
    "LOGIN_THROTTLE_WINDOW_S": int(os.environ.get("LOGIN_THROTTLE_WINDOW_S", "900")),
}
