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
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "import_export",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "common",
    "accounts",
    "notifications",
    "orders",
    # kyc before shipping: the order hooks run in app order, and the lock order is verification → shipment.
    "kyc",
    "shipping",
    "payments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # NUL bytes, control characters, impossible dates in addresses and queries: 400 before any view.
    "common.middleware.HostileInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The reader's language: LANGUAGE_CODE, or the one chosen with the switch; never Accept-Language (common.i18n).
    "common.i18n.LanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Login throttling (django-axes): last, as its documentation asks.
    "axes.middleware.AxesMiddleware",
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
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out caller before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Pages are in Simplified Chinese; staff may switch to English (templates/includes/language_switch.html posts
# to /i18n/setlang/, which keeps the choice in a cookie). The browser's Accept-Language is not consulted
# (common.i18n). Translations: English msgids in the code, Chinese in locale/ (templates/, config/) and each
# app's locale/, compiled by `manage.py compile_translations` (./run, ./test and CI do it).
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]  # each language's own name, as the switch shows it
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `manage.py collectstatic` copies here; in production the reverse proxy serves it (deploy/nginx.conf).
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")

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
# Without REDIS_URL the broker is kombu's filesystem transport: worker, beat and web share a folder under var/
# (messages, and the exchange tables Celery's remote control uses). The transport ignores the host; naming one
# spares kombu's "No hostname was supplied" warning in every process.
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost/"
if not REDIS_URL:
    _queue_dir = str(VAR_DIR / "broker")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": _queue_dir,
        "data_folder_out": _queue_dir,
        "processed_folder": str(VAR_DIR / "broker-processed"),
        "control_folder": str(VAR_DIR / "broker-control"),
        "store_processed": False,
    }
else:
    # A webhook publishes its nudge before it answers the platform, which waits only a few seconds. A Redis
    # that accepts connections but does not answer (failover, a half-open connection) would hold that
    # publish forever without a socket timeout (kombu's default); with it, and one publish retry
    # (CELERY_TASK_PUBLISH_RETRY_POLICY), an unreachable broker costs the webhook at most about 2 s: the row
    # is stored, the answer goes out, and the sweeper dispatches it later.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_timeout": 1.0,
                                       "socket_connect_timeout": 1.0}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the worker's database connections after every task unless this is set; with it,
# config/celery.py keeps them as Django does between requests (CONN_MAX_AGE, health check).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=90)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 1
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
# Webhook bodies larger than this are refused (413) before any parsing (chunked bodies included).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=256 * 1024)
# Refused webhook calls (common.rejects): repeats of one source, reason and address within the window are one
# row with a counter; at most MAX_ROWS rows are kept (the oldest go first).
REJECTED_WEBHOOK_WINDOW_SECONDS = env.int("REJECTED_WEBHOOK_WINDOW_SECONDS", default=600)
REJECTED_WEBHOOK_MAX_ROWS = env.int("REJECTED_WEBHOOK_MAX_ROWS", default=10000)

# --- KYC (Sumsub) --------------------------------------------------------------------------------
# A buyer approved at a product's level within this many days is not asked again.
KYC_VALIDITY_DAYS = env.int("KYC_VALIDITY_DAYS", default=365)
# Lifetime of a verification link; the buyer is reminded halfway.
KYC_LINK_TTL_HOURS = env.int("KYC_LINK_TTL_HOURS", default=72)
# What happens to the order when its link expires unused: "close" it on the platform, or hand it to "staff".
KYC_EXPIRY_ACTION = env.str("KYC_EXPIRY_ACTION", default="close")
if KYC_EXPIRY_ACTION not in ("close", "staff"):
    raise ImproperlyConfigured("KYC_EXPIRY_ACTION must be 'close' or 'staff'")
# A verification with no Sumsub result this long after the buyer started is looked up at Sumsub.
KYC_STATUS_CHECK_MINUTES = env.int("KYC_STATUS_CHECK_MINUTES", default=30)
# Without Sumsub credentials the verify page offers a local sandbox (approve / retry / reject buttons that send
# signed webhooks to our own endpoint). Never turn this on where buyers can reach the page.
KYC_SANDBOX = env.bool("KYC_SANDBOX", default=DEBUG)
# Where the sandbox posts its webhooks; empty: this server's own /webhooks/sumsub/ as the browser reached it.
KYC_SANDBOX_WEBHOOK_URL = env.str("KYC_SANDBOX_WEBHOOK_URL", default="")
# Mini-program API (POST /api/v1/miniapp/orders/): requests per minute per client address.
KYC_MINIAPP_RATE_PER_MINUTE = env.int("KYC_MINIAPP_RATE_PER_MINUTE", default=30)

# --- Shipping (seed: 3 tries, 5 minutes apart) --------------------------------------------------
SHIP_MAX_ATTEMPTS = env.int("SHIP_MAX_ATTEMPTS", default=3)
SHIP_RETRY_DELAY_SECONDS = env.int("SHIP_RETRY_DELAY_SECONDS", default=300)
# One ship_shipment task marks up to this many due shipments in one transaction, then calls and records each.
SHIP_BATCH_SIZE = env.int("SHIP_BATCH_SIZE", default=20)
# A batch stops starting new platform calls this long after its mark (the rest go back, due at once); kept
# well under the task's soft time limit and the shipment lease (shipping.services.LEASE).
SHIP_BATCH_SECONDS = env.int("SHIP_BATCH_SECONDS", default=20)

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
SPECTACULAR_SETTINGS = {
    "TITLE": "xianyu-ops API", "VERSION": "1.0.0",
    "ENUM_NAME_OVERRIDES": {"FacetofaceStatusEnum": "payments.models.ApplicationStatus"},
    # The schema describes the staff API: staff only, like the API itself.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
}

# --- The admin (django-unfold) -------------------------------------------------------------------
# Navigation grouped by the staff's work (config.admin_nav); the index is the dashboard (common.dashboard);
# "view site" leads back to the admin (there is no public site at /).
from django.urls import reverse_lazy  # noqa: E402
from django.utils.translation import gettext_lazy as _  # noqa: E402

UNFOLD = {
    "SITE_TITLE": _("Xianyu operations"),
    "SITE_HEADER": _("Xianyu operations"),
    "SITE_SYMBOL": "storefront",
    "SITE_URL": reverse_lazy("admin:index"),
    "SHOW_VIEW_ON_SITE": False,
    "SHOW_HISTORY": True,
    "SHOW_LANGUAGES": False,  # the project's own switch is in the header (templates/unfold/helpers/userlinks.html)
    "DASHBOARD_CALLBACK": "common.dashboard.dashboard_callback",
    "SIDEBAR": {"show_search": True, "show_all_applications": False, "navigation": "config.admin_nav.navigation"},
}

# --- Access and health ----------------------------------------------------------------------------
# Reverse proxies in front of the app (deploy/: nginx = 1). The client's address is then the entry this many
# places from the right of X-Forwarded-For; 0 = REMOTE_ADDR (no proxy, or one that is not trusted).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# /healthz/ answers anyone with its status only (ok / 503); the checks' details need a staff session or this
# token in the X-Healthz-Token header (empty: staff session only).
HEALTHZ_TOKEN = env.str("HEALTHZ_TOKEN", default="")

# Admin login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins from one client address, that
# address is refused (HTTP 429) for AXES_COOLOFF_HOURS or until staff clear it (admin: 访问尝试 → 解除锁定,
# or `manage.py axes_reset`). Locking by address, not by username, so nobody can lock a colleague out by
# typing their name; one success clears the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=1.0)
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "common.inbox.client_ip"
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# --- Production hardening (manage.py check --deploy) -------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_REFERRER_POLICY = "same-origin"

# One handler, on the root logger: every record is written once. Django's own default configuration gives the
# `django` logger a console handler of its own (when DEBUG is on), which printed each django.request line
# (every 4xx/5xx) a second time; configuring `django` here resets it and its children (runserver's request
# lines, `django.server`, included), so all their records reach the root handler, once, in one format. A 4xx or
# 5xx answer is told by django.request (with its reason, and the traceback of a crash); runserver's own line
# for it would say the same again, so only its lines for successful requests are kept.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"below_400": {"()": "django.utils.log.CallbackFilter",
                              "callback": lambda record: getattr(record, "status_code", 0) < 400}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # axes: lockouts are warnings; its per-login INFO lines (resets, clean-ups) are noise.
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "filters": ["below_400"], "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
    },
}

# bench/ingest's baseline endpoint (off unless the benchmark turns it on).
BENCH_BARE_ENDPOINT = env.bool("BENCH_BARE_ENDPOINT", default=False)
