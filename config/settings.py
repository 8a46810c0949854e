"""Django settings for the stem-cell therapy adverse event registry.

Everything a deployment changes comes from the environment through config.env;
the defaults give a working development registry on a fresh machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.embedded_db import embedded_database
from config.env import env_bool, env_int, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger("config")

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_str("DJANGO_ENV", "development") == "production":
        raise ImproperlyConfigured("SECRET_KEY must be set in production.")
    SECRET_KEY = "dev-only-insecure-key-change-me"  # noqa: S105 - development default
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_standardized_errors",
    "axes",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "registry",
    "events",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files under gunicorn too (no separate web server needed).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "registry.api.pagination.RegistryCursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "registry.api.openapi.RegistryAutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_USER_RATE", "1200/minute"),
        "anon": env_str("API_ANON_RATE", "60/minute"),
        "login": env_str("API_LOGIN_RATE", "20/minute"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
DRF_STANDARDIZED_ERRORS = {
    "EXCEPTION_HANDLER_CLASS": "registry.api.errors.RegistryExceptionHandler",
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
        "ErrorCode415Enum": f"{_ERR}.ErrorCode415Enum.choices",
        "ErrorCode429Enum": f"{_ERR}.ErrorCode429Enum.choices",
        "ErrorCode500Enum": f"{_ERR}.ErrorCode500Enum.choices",
        "CausalityEnum": "events.choices.Causality",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_standardized_errors.openapi_hooks.postprocess_schema_enums",
        "registry.api.openapi.postprocess_list_item_error_attrs",
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
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {
    # Nightly standard incidence report (site x cell type, all outcomes, cut-off yesterday) at 02:30,
    # and every 15 minutes the sweep that requeues incidence runs abandoned by a dead worker.
    "reports-incidence-nightly": {
        "task": "reports.incidence_nightly",
        "schedule": crontab(hour=2, minute=30),
    },
    "reports-incidence-requeue-stale": {"task": "reports.incidence_requeue_stale", "schedule": 15 * 60.0},
    "registry-purge-idempotency-keys": {"task": "registry.purge_idempotency_keys", "schedule": 60 * 60.0},
}
# How long a POST's Idempotency-Key is remembered (a client's retries must fall inside it).
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # pgserver logs every process exit at INFO; only its problems matter here.
    "loggers": {"pgserver": {"level": "WARNING"}},
}
