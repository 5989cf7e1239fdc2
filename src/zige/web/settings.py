"""Django settings for zige.

Everything a deployment changes comes from the environment:

- `ZIGE_DATA_DIR` (default `./var`): the SQLite database, the evidence store (Parquet), uploads
  and the generated secret key. Nothing under it is served by the web server.
- `ZIGE_DATABASE_URL`: PostgreSQL in production (`postgres://user:pass@host/db`); SQLite when unset.
- `ZIGE_SECRET_KEY`, `ZIGE_DEBUG`, `ZIGE_ALLOWED_HOSTS` (comma-separated), `ZIGE_SECURE_COOKIES`
  (`1` when served over HTTPS: secure cookies and HSTS), `ZIGE_TLS_PROXY` (`1` behind a proxy
  that terminates TLS and sets X-Forwarded-Proto), `ZIGE_SESSION_MINUTES` (idle timeout, 30),
  `ZIGE_LOCKOUT_FAILURES` (5) and `ZIGE_LOCKOUT_MINUTES` (15).
- `ZIGE_KEEP_RUN_DECISIONS` (7, at least 2; `all` keeps every run's): how many of the latest
  succeeded runs keep their decisions in the database; older runs' are read from their Parquet
  copies (docs/architecture.md, "Decision retention").
- `ZIGE_SQLITE_ARROW` (`1`; `0` turns it off): on SQLite, a run reads the roll and stages its
  decisions as Arrow through scratch files beside the database (`zige.feeds.store.fetch_arrow`,
  `staged_rows`; docs/architecture.md) instead of a Python object per value.
- `ZIGE_PG_CSV_COPY` (`1`; `0` turns it off): on PostgreSQL, a run's decisions are written as CSV
  by DuckDB into a scratch directory in the data directory and sent to `COPY` as they are
  (`staged_rows`) instead of row by row from Python.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("ZIGE_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
EVIDENCE_DIR = DATA_DIR / "evidence"
UPLOAD_DIR = DATA_DIR / "uploads"
RUNS_DIR = DATA_DIR / "runs"


def _secret_key() -> str:
    if key := os.environ.get("ZIGE_SECRET_KEY"):
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret_key()
DEBUG = os.environ.get("ZIGE_DEBUG", "") == "1"
ALLOWED_HOSTS = [
    h for h in os.environ.get("ZIGE_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks",
    "django_tasks_db",
    "zige.web",
    "zige.accounts",
    "zige.audit",
    "zige.roster",
    "zige.feeds",
    "zige.certification",
    "zige.reports",
    "zige.api",
    "zige.notifications",
    "zige.verification",
    "zige.benefits",
    "zige.ledger",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "zige.accounts.middleware.PrivatePagesMiddleware",
]

ROOT_URLCONF = "zige.web.urls"
WSGI_APPLICATION = "zige.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "zige.web.context.navigation",
            ],
        },
    },
]

if url := os.environ.get("ZIGE_DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(url, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "zige.sqlite3"),
            "OPTIONS": {
                # WAL lets pages read while an import or a run writes; IMMEDIATE avoids
                # lock-upgrade deadlocks between the web process and the task worker.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
                "transaction_mode": "IMMEDIATE",
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
# The only backend: Django's, behind zige's lockout and failed-login audit (every login form and
# the API's token endpoint go through it).
AUTHENTICATION_BACKENDS = ["zige.accounts.backends.LockoutBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "reports:dashboard"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise looks here too; assets are served from the apps
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step
WHITENOISE_AUTOREFRESH = DEBUG

# Uploads live under DATA_DIR, never under a served directory; they are read back through views
# that check the user's rights.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Files of up to FILE_UPLOAD_MAX_MEMORY_SIZE are parsed into memory before any view runs: refuse a
# request with more files than any form takes (400) well before that adds up. The verification
# report's own, friendlier limit is lower (ZIGE_UPLOAD_MAX_FILES, docs/verification.md §4).
DATA_UPLOAD_MAX_NUMBER_FILES = 50
ZIGE_MAX_IMPORT_BYTES = int(os.environ.get("ZIGE_MAX_IMPORT_BYTES", str(2 * 1024**3)))

# Sessions and cookies
SESSION_COOKIE_AGE = int(os.environ.get("ZIGE_SESSION_MINUTES", "30")) * 60
SESSION_SAVE_EVERY_REQUEST = True  # the timeout counts from the last request, not the login
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "zige.accounts.views.csrf_failure"
SECURE = os.environ.get("ZIGE_SECURE_COOKIES", "") == "1"
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
if SECURE:  # served over HTTPS only: browsers are told never to use plain HTTP for the site
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
if os.environ.get("ZIGE_TLS_PROXY", "") == "1":
    # Behind a TLS-terminating proxy that sets (and strips any client's) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Headers
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# Login lockout: after this many failures in a row the account is locked for the period.
ZIGE_LOCKOUT_FAILURES = int(os.environ.get("ZIGE_LOCKOUT_FAILURES", "5"))
ZIGE_LOCKOUT_MINUTES = int(os.environ.get("ZIGE_LOCKOUT_MINUTES", "15"))


def _keep_run_decisions(text: str) -> int | None:
    """`ZIGE_KEEP_RUN_DECISIONS`: a whole number of runs, at least 2, or `all` (None: no pruning)."""
    if text.strip().lower() == "all":
        return None
    try:
        keep = int(text)
    except ValueError:
        keep = 0
    if keep < 2:
        # The latest run and the one before it always keep their rows (the next run compares with
        # the latest; the latest's page compares with the one before).
        raise ValueError(f"ZIGE_KEEP_RUN_DECISIONS={text!r}: give a number of runs, 2 or more, or 'all'")
    return keep


# SQLite: a run's roll and decisions through Arrow and scratch files (`zige.feeds.store`).
ZIGE_SQLITE_ARROW = os.environ.get("ZIGE_SQLITE_ARROW", "1") != "0"
# PostgreSQL: a run's decisions written as CSV by DuckDB and sent to COPY as they are (`staged_rows`).
ZIGE_PG_CSV_COPY = os.environ.get("ZIGE_PG_CSV_COPY", "1") != "0"
# Decision retention: the latest N succeeded runs keep their Decision rows in the database.
ZIGE_KEEP_RUN_DECISIONS = _keep_run_decisions(os.environ.get("ZIGE_KEEP_RUN_DECISIONS", "7"))

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ZIGE_LOG_LEVEL", "WARNING")},
}

# Reminders by SMS and unit notice, and unattended operation: ZIGE_SMS_*, ZIGE_QUIET_HOURS,
# ZIGE_DAILY_RUN_AT … (docs/notifications.md)
from zige.notifications.config import from_environ as _notifications_from_environ  # noqa: E402

ZIGE_NOTIFICATIONS = _notifications_from_environ(os.environ)
