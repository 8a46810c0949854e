"""Django settings for the stem-cell therapy adverse event registry.

Everything a deployment changes comes from the environment through config.env;
the defaults give a working development registry on a fresh machine.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

from config.embedded_db import embedded_database
from config.env import env_bool, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger("config")

DEBUG = env_bool("DEBUG", False)
_PRODUCTION = env_str("DJANGO_ENV", "development") == "production"
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and _PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set in production.")
    SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - development default
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Hardening 11: how many reverse proxies stand in front of the app. Their forwarding headers
# (X-Forwarded-For, X-Forwarded-Proto) are believed only when this is 1 or more; with the default 0
# the client is REMOTE_ADDR, so nobody can pick a fresh address per request to dodge the throttle.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

INSTALLED_APPS = [
    # Hardening 13: django.contrib.admin, with the two-factor admin site as admin.site.
    "config.apps.RegistryAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # Hardening 10: hashed, expiring, revocable API tokens (replaces rest_framework.authtoken).
    "knox",
    # Hardening 13: TOTP second factor for the admin and for staff token logins.
    "django_otp",
    "django_otp.plugins.otp_totp",
    # Hardening 12: Content-Security-Policy header.
    "csp",
    "django_filters",
    "drf_spectacular",
    "drf_standardized_errors",
    "axes",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "core",
    "meddra",
    "registry",
    "events",
    # Issue 12: patient links and diaries (below intake and reports: the report reads the diaries).
    "patients",
    "intake",
    "reports",
    # Issue 11: the nightly signal screen and product-lot cluster alerts (a floor above reports).
    "signals",
    # Issue 10: expedited-report rules and clocks, submissions, CIOMS I forms.
    "safety",
    # Issue 12: publications and the public comparison pages (the top floor).
    "public",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Hardening 12: the Content-Security-Policy of CONTENT_SECURITY_POLICY below.
    "csp.middleware.CSPMiddleware",
    # Serves the admin's static files under gunicorn too (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Hardening 1-6: 413 for an oversized body; 400 for a NUL, lone surrogate or non-UTF-8 byte in the
    # path, query, headers or a form body, and for junk admin action ids; 503 + Retry-After while the
    # database is unavailable.
    "core.middleware.RequestGuardMiddleware",
    # Issue 12: the public pages, the same for everyone, stay cacheable by shared caches (no Vary: Cookie).
    "core.middleware.CookieIndependentMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Hardening 13: request.user.is_verified() (a TOTP code was given in this session).
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Attaches the requesting user and URL to every audit event written in a request.
    "pghistory.middleware.HistoryMiddleware",
    # Locks out a username after repeated failed logins (admin and API token endpoint).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 30) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Hardening 11: axes keys on the same client address as DRF's throttles (TRUSTED_PROXY_COUNT).
AXES_CLIENT_IP_CALLABLE = "core.auth.client_ip_address"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# One engine everywhere: DATABASE_URL, or a PostgreSQL the registry starts itself.
_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": parse_database_url(_database_url)}
else:
    DATABASES = {"default": embedded_database(Path(env_str("EMBEDDED_PGDATA", str(BASE_DIR / ".pgdata" / "data"))))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# Issue 12: the patients' pages speak English and Spanish (the clinic's country picks the default).
LANGUAGES = [("en-gb", "English"), ("en", "English"), ("es", "Español")]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (development, tests) WhiteNoise serves straight from the apps.
WHITENOISE_USE_FINDERS = True

# Hardening 12: HTTPS only in production (DJANGO_ENV=production): redirect, HSTS, secure cookies.
# Each has its variable for a deployment that must differ (e.g. plain http on localhost).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", _PRODUCTION)
# Behind a TLS-terminating proxy the app only sees http; its X-Forwarded-Proto is believed only when a
# trusted proxy is configured, since any client could send the header itself.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_COUNT else None
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600 if _PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", _PRODUCTION)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", _PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", _PRODUCTION)
# A session ends after SESSION_IDLE_MINUTES without a request: every request renews its expiry.
SESSION_COOKIE_AGE = env_int("SESSION_IDLE_MINUTES", 30, minimum=1) * 60
SESSION_SAVE_EVERY_REQUEST = True
X_FRAME_OPTIONS = "DENY"
# Hardening 2: the largest request body accepted (413 above it, core.middleware), API and admin alike.
# The registry takes no file uploads, so this bounds every body; Django's default is 2.5 MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("REQUEST_BODY_MAX_BYTES", 2_621_440, minimum=1024)
# Hardening 6: the Retry-After (seconds) of the 503 answered while PostgreSQL cannot be reached.
DATABASE_UNAVAILABLE_RETRY_AFTER = env_int("DATABASE_UNAVAILABLE_RETRY_AFTER", 5, minimum=1)
# Hardening 12: no inline script or style, no plugins, no framing. The API docs load Swagger UI from
# SWAGGER_UI_CDN (pinned below); their one inline <style> carries the per-request nonce.
SWAGGER_UI_CDN = "https://cdn.jsdelivr.net"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", SWAGGER_UI_CDN],
        "style-src": ["'self'", SWAGGER_UI_CDN, NONCE],
        # data: for the SVG icons the admin's and Swagger UI's stylesheets embed.
        "img-src": ["'self'", "data:", SWAGGER_UI_CDN],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Hardening 13: TOTP devices show this issuer in authenticator apps. Demo users (intake/demo.py)
# may log in without a second factor only when OTP_EXEMPT_DEMO_USERS is set AND DEBUG is on.
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "AE registry")
OTP_EXEMPT_DEMO_USERS = DEBUG and env_bool("OTP_EXEMPT_DEMO_USERS", False)
OTP_DEMO_USER_CALLABLE = "intake.demo.is_demo_user"
# A user who has no authenticator yet may set one up after the password step (first login).
OTP_SELF_ENROLMENT = env_bool("OTP_SELF_ENROLMENT", True)

# Hardening 10: API tokens expire API_TOKEN_TTL_HOURS after the login that issued them (no sliding
# renewal: a stolen token dies on time however much it is used), and are stored only as hashes.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env_int("API_TOKEN_TTL_HOURS", 10, minimum=1)),
    "AUTO_REFRESH": False,
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_LIMIT_PER_USER": None,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Hardening 10/13: knox tokens; sessions only once the second factor was given.
        "knox.auth.TokenAuthentication",
        "core.api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.RegistryCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.api.openapi.RegistryAutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_USER_RATE", "1200/minute"),
        "anon": env_str("API_ANON_RATE", "60/minute"),
        "login": env_str("API_LOGIN_RATE", "20/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Hardening 1-2: parsers refusing deep nesting, NULs and lone surrogates with a field-level 400.
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.RegistryJSONParser",
        "core.parsers.RegistryFormParser",
        "core.parsers.RegistryMultiPartParser",
    ],
    # Hardening 11: throttles key on REMOTE_ADDR unless trusted proxies are configured.
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "core.api.errors.RegistryExceptionHandler",
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
}
_ERR = "drf_standardized_errors.openapi_serializers"
SPECTACULAR_SETTINGS = {
    "TITLE": "Stem-cell therapy adverse event registry API",
    "DESCRIPTION": (
        "Clinics record pseudonymous patients, procedures, follow-up visits and adverse events. "
        "Every row is limited to the caller's clinics. POST accepts Idempotency-Key; PUT/PATCH require "
        "If-Match with the ETag from GET. Errors share one body: {type, errors: [{code, detail, attr}]}."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Hardening 12: a pinned Swagger UI from the CDN the CSP allows (never @latest); the docs page checks
    # the files' Subresource Integrity hashes (templates/api/swagger_ui.html).
    "SWAGGER_UI_DIST": f"{SWAGGER_UI_CDN}/npm/swagger-ui-dist@5.35.0",
    "SWAGGER_UI_FAVICON_HREF": f"{SWAGGER_UI_CDN}/npm/swagger-ui-dist@5.35.0/favicon-32x32.png",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ValidationErrorEnum": f"{_ERR}.ValidationErrorEnum.choices",
        "ClientErrorEnum": f"{_ERR}.ClientErrorEnum.choices",
        "ServerErrorEnum": f"{_ERR}.ServerErrorEnum.choices",
        "ErrorCode401Enum": f"{_ERR}.ErrorCode401Enum.choices",
        "ErrorCode403Enum": f"{_ERR}.ErrorCode403Enum.choices",
        "ErrorCode404Enum": f"{_ERR}.ErrorCode404Enum.choices",
        "ErrorCode405Enum": f"{_ERR}.ErrorCode405Enum.choices",
        "ErrorCode406Enum": f"{_ERR}.ErrorCode406Enum.choices",
        # Issue 10: the event's outcome and a follow-up's change of it are one enum, not two.
        "AdverseEventOutcomeEnum": "events.choices.Outcome",
        "ErrorCode415Enum": f"{_ERR}.ErrorCode415Enum.choices",
        "ErrorCode429Enum": f"{_ERR}.ErrorCode429Enum.choices",
        "ErrorCode500Enum": f"{_ERR}.ErrorCode500Enum.choices",
        "CausalityEnum": "events.choices.Causality",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "core.api.openapi.postprocess_list_item_error_attrs",
    ],
}

# Throttle counters must be shared by every web worker; Redis when configured.
_cache_url = env_str("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery (config/celery_app.py reads the CELERY_ namespace).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or ""
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
# With no broker configured, tasks run in-process (the Celery app logs this).
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 55 * 60)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Hardening 14/16: Redis hands an unacknowledged message to another worker after the visibility
# timeout; longer than the hard time limit, so a live long run is never given out twice (a dead
# worker's run is found sooner, by its stale heartbeat). A pool process that ends a task above
# this resident size (KiB) is replaced, so one big run does not keep its memory for the next.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 30 * 60}
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 512_000, minimum=0) or None
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {
    # Nightly standard incidence report (site x cell type, all outcomes, cut-off yesterday) at 02:30.
    "reports-incidence-nightly": {
        "task": "reports.incidence_nightly",
        "schedule": crontab(hour=2, minute=30),
    },
    # Hardening 16/17: every minute, the sweep that requeues runs whose worker stopped sending
    # heartbeats and publishes runs queued while the broker was down. A sweep not started within
    # the minute is dropped (the next one does the same work).
    "reports-incidence-requeue-stale": {
        "task": "reports.incidence_requeue_stale",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "registry-purge-idempotency-keys": {"task": "registry.purge_idempotency_keys", "schedule": 60 * 60.0},
    # Issue 11: the nightly signal screen and lot-cluster alerts (cut-off yesterday) at 03:15, after the
    # incidence report. One stored run per cut-off however often it is delivered; new findings are emailed.
    "signals-nightly-run": {
        "task": "signals.nightly_run",
        "schedule": crontab(hour=3, minute=15),
    },
    # Issue 10: every 15 minutes, the expedited-report clocks: reminders 2 days before a due date (each
    # sent once, claimed with a conditional UPDATE) and the overdue mark. A late sweep is dropped.
    # Issue 10: nightly, the open cases judged against the active rules again (what a rule saved in the
    # admin queues at once; this catches a queueing that failed).
    "safety-reevaluate-open-cases": {
        "task": "safety.reevaluate_open_cases",
        "schedule": crontab(hour=3, minute=45),
    },
    "safety-due-report-reminders": {
        "task": "safety.send_due_report_reminders",
        "schedule": 15 * 60.0,
        "options": {"expires": 14 * 60},
    },
}

# Email (issue 11: the signal screen tells the reviewers what is new). Development prints mail on the
# console; a deployment names its SMTP server (docker compose: the Mailpit service). DEFAULT_FROM_EMAIL
# is the sender; SITE_URL is the address the links in an email start with (no request to take it from).
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are exclusive; set one of them.")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
# Only for django.core.mail.backends.filebased.EmailBackend (one file per message sent).
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / ".mail"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "AE registry <registry@localhost>")
SITE_URL = env_str("SITE_URL", "http://localhost:8000")
# Issue 11: a signal run keeps every row of its screen this many days, then only its signals (what a
# screen by product lot adds every night stays bounded).
SIGNALS_KEEP_ALL_ROWS_DAYS = env_int("SIGNALS_KEEP_ALL_ROWS_DAYS", 90, minimum=1)
# Hardening 1-6: the audit-trail admin (Pghistory > Events), fixed for junk query strings.
PGHISTORY_ADMIN_CLASS = "registry.admin.AuditEventsAdmin"
# How long a POST's Idempotency-Key is remembered (a client's retries must fall inside it).
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
# A coordinator may mark a procedure lost to follow-up once this many contact attempts are logged on its
# open visits (issue 9); it then leaves the overdue list and its follow-up ends at its last contact.
FOLLOW_UP_LOST_AFTER_ATTEMPTS = env_int("FOLLOW_UP_LOST_AFTER_ATTEMPTS", 3)
# Hardening 14: an incidence run (API, admin, compute_incidence) whose result would have more rows
# than this is refused before it starts; a run is attempted at most REPORTS_MAX_ATTEMPTS times; a
# run may grow its worker's address space by REPORTS_TASK_MEMORY_MB (then MemoryError; 0: no cap).
REPORTS_MAX_RESULT_ROWS = env_int("REPORTS_MAX_RESULT_ROWS", 100_000, minimum=1)
REPORTS_MAX_ATTEMPTS = env_int("REPORTS_MAX_ATTEMPTS", 3, minimum=1)
REPORTS_TASK_MEMORY_MB = env_int("REPORTS_TASK_MEMORY_MB", 1024, minimum=0)
# Hardening 16: a computing worker stamps its run every REPORTS_HEARTBEAT_SECONDS; the sweep (every
# minute) takes a run whose stamp is older than REPORTS_HEARTBEAT_STALE_SECONDS for abandoned, so a
# killed worker's run is queued again 45 to 120 s after the kill.
REPORTS_HEARTBEAT_SECONDS = env_int("REPORTS_HEARTBEAT_SECONDS", 15, minimum=1)
REPORTS_HEARTBEAT_STALE_SECONDS = env_int("REPORTS_HEARTBEAT_STALE_SECONDS", 60, minimum=2)
if REPORTS_HEARTBEAT_STALE_SECONDS <= 2 * REPORTS_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("REPORTS_HEARTBEAT_STALE_SECONDS must exceed twice REPORTS_HEARTBEAT_SECONDS.")
# Hardening 15: manage.py import_registry lists at most this many errors (--max-errors overrides
# it) and counts the rest, so a folder of bad rows cannot flood the output or the memory.
IMPORT_MAX_ERRORS = env_int("IMPORT_MAX_ERRORS", 100, minimum=1)
# Hardening 18: the de-identified line listing publishes a combination of quasi-identifiers only
# when at least DEIDENTIFIED_MIN_K patients share it (DESIGN 2b: no count from 1 to 10), and
# generalises further rather than suppress more than DEIDENTIFIED_MAX_SUPPRESSED_PERCENT of its rows.
DEIDENTIFIED_MIN_K = env_int("DEIDENTIFIED_MIN_K", 11, minimum=2)
DEIDENTIFIED_MAX_SUPPRESSED_PERCENT = env_int("DEIDENTIFIED_MAX_SUPPRESSED_PERCENT", 5, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Hardening 6: a request failing because PostgreSQL is unavailable logs one line, not a traceback.
    "filters": {"database_unavailable": {"()": "core.logging.DatabaseUnavailableFilter"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # pgserver logs every process exit at INFO; only its problems matter here.
    "loggers": {"pgserver": {"level": "WARNING"}, "django.request": {"filters": ["database_unavailable"]}},
}
