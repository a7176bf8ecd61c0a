"""Settings for xianyu-ops.

Every knob comes from the environment (django-environ) and has a safe local default, so that
`./run` works on a fresh machine with nothing installed: SQLite and kombu's filesystem broker.
The full list of variables is in the README (configuration contract, DESIGN.md §5).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# A development key is only acceptable while debugging.
_DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Fernet keys for encrypted fields: the first encrypts, all decrypt (key rotation).
_DEV_FIELD_KEY = "WWZu2ch1akhsgdOCZVBxSANUGNInymvIJZbsXv6bFMo="
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[_DEV_FIELD_KEY] if DEBUG else [])
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is required when DJANGO_DEBUG is off")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "common",
    "accounts",
    "notifications",
    "orders",
    "shipping",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let web, worker and beat share the embedded database.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
         "transaction_mode": "IMMEDIATE"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery -------------------------------------------------------------------------------------
# Without REDIS_URL the broker is kombu's filesystem transport: worker, beat and web share a folder.
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
if not REDIS_URL:
    _queue_dir = str(VAR_DIR / "broker")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _queue_dir,
        "data_folder_out": _queue_dir,
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Write last_run_at on every send: /healthz/ reads it as beat's freshness.
CELERY_BEAT_SYNC_EVERY = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Periodic tasks are declared in code by each app (`periodic_tasks` on its AppConfig: name -> (task,
# every)) and installed into django-celery-beat's tables on migrate (common.apps).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}

# --- Platforms ----------------------------------------------------------------------------------
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://localhost:8000").rstrip("/")
GOOFISH_GATEWAY_URL = env.str("GOOFISH_GATEWAY_URL", default="https://eco.taobao.com/router/rest")
XIANGUANJIA_BASE_URL = env.str("XIANGUANJIA_BASE_URL", default="https://open.goofish.pro").rstrip("/")
SUMSUB_BASE_URL = env.str("SUMSUB_BASE_URL", default="https://api.sumsub.com")
SUMSUB_APP_TOKEN = env.str("SUMSUB_APP_TOKEN", default="")
SUMSUB_SECRET_KEY = env.str("SUMSUB_SECRET_KEY", default="")
SUMSUB_WEBHOOK_SECRET = env.str("SUMSUB_WEBHOOK_SECRET", default="")
SUMSUB_LEVEL_NAME = env.str("SUMSUB_LEVEL_NAME", default="basic-kyc-level")
ALIPAY_GATEWAY_URL = env.str("ALIPAY_GATEWAY_URL", default="https://openapi.alipay.com/gateway.do")
ALIPAY_APP_ID = env.str("ALIPAY_APP_ID", default="")
ALIPAY_APP_PRIVATE_KEY = env.str("ALIPAY_APP_PRIVATE_KEY", default="")
ALIPAY_PUBLIC_KEY = env.str("ALIPAY_PUBLIC_KEY", default="")

# --- Payments (Alipay ISV: onboarding, trades, refunds) -----------------------------------------
# Where Alipay posts its asynchronous notifications (our /webhooks/alipay/).
ALIPAY_NOTIFY_URL = env.str("ALIPAY_NOTIFY_URL", default=f"{PUBLIC_BASE_URL}/webhooks/alipay/")
# Onboarding polls (seed 001): first query 5 minutes after submitting, then every 4 hours.
ALIPAY_POLL_FIRST_DELAY_SECONDS = env.int("ALIPAY_POLL_FIRST_DELAY_SECONDS", default=300)
ALIPAY_POLL_INTERVAL_SECONDS = env.int("ALIPAY_POLL_INTERVAL_SECONDS", default=4 * 3600)
# An application still under review this long after submitting is flagged and staff are notified once.
ALIPAY_AUDIT_OVERDUE_HOURS = env.int("ALIPAY_AUDIT_OVERDUE_HOURS", default=24)
# Life of an `init` batch (alipay.open.agent.create), and how many batches one submission may open.
ALIPAY_BATCH_TTL_SECONDS = env.int("ALIPAY_BATCH_TTL_SECONDS", default=3600)
ALIPAY_SUBMIT_MAX_BATCHES = env.int("ALIPAY_SUBMIT_MAX_BATCHES", default=3)
# Trades: QR code life (timeout_express), first status query when no notification came.
ALIPAY_TRADE_TIMEOUT_MINUTES = env.int("ALIPAY_TRADE_TIMEOUT_MINUTES", default=120)
ALIPAY_TRADE_QUERY_DELAY_SECONDS = env.int("ALIPAY_TRADE_QUERY_DELAY_SECONDS", default=300)
ALIPAY_REFUND_MAX_ATTEMPTS = env.int("ALIPAY_REFUND_MAX_ATTEMPTS", default=8)
# Refresh a merchant's app authorisation token this long before it expires.
ALIPAY_TOKEN_REFRESH_BEFORE_HOURS = env.int("ALIPAY_TOKEN_REFRESH_BEFORE_HOURS", default=7 * 24)
# Uploaded files (application pictures): private, never served as static media.
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")

# Outbound HTTP: (connect, read) seconds.
PLATFORM_HTTP_TIMEOUT = (env.float("PLATFORM_CONNECT_TIMEOUT", default=5.0),
                         env.float("PLATFORM_READ_TIMEOUT", default=15.0))
# Inbox processing: attempts before an event is left as failed for an operator to replay.
INBOX_MAX_ATTEMPTS = env.int("INBOX_MAX_ATTEMPTS", default=8)
# Webhook bodies larger than this are refused (413) before any parsing.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)

# --- Shipping (seed: 3 tries, 5 minutes apart) --------------------------------------------------
SHIP_MAX_ATTEMPTS = env.int("SHIP_MAX_ATTEMPTS", default=3)
SHIP_RETRY_DELAY_SECONDS = env.int("SHIP_RETRY_DELAY_SECONDS", default=300)

# --- Notifications ------------------------------------------------------------------------------
# Delivery attempts (backoff 1, 2, 4 … minutes, at most 60) before a delivery is left as failed.
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=8)
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
                        if DEBUG else "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="xianyu-ops@localhost")

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {"TITLE": "xianyu-ops API", "VERSION": "1.0.0",
                        "ENUM_NAME_OVERRIDES": {"FacetofaceStatusEnum": "payments.models.ApplicationStatus"}}

# --- Production hardening (manage.py check --deploy) -------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# bench/ingest's baseline endpoint (off unless the benchmark turns it on).
BENCH_BARE_ENDPOINT = env.bool("BENCH_BARE_ENDPOINT", default=False)
