"""Test setup. Tests run on SQLite when DATABASE_URL is unset; under CI=true a test that needs a real
service (PostgreSQL, Redis) fails instead of skipping."""

import os

import pytest

from config.celery import app as celery_app

# Tasks run in-process in tests; flows that need a real worker start one explicitly.
celery_app.conf.task_always_eager = True
celery_app.conf.task_eager_propagates = False


def pytest_configure(config):
    """Tests read the compiled catalogs (they assert the Chinese a page shows): compile any catalog whose .mo is
    missing or older than its .po, as ./test does, so a bare `pytest` run sees the same pages."""
    from common.translations import compile_catalogs, reset_translation_caches

    if compile_catalogs():
        reset_translation_caches()


def _is_postgres():
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def need_service(name: str, available: bool, why: str = ""):
    """Skip locally, fail under CI, when a service the test needs is missing."""
    if available:
        return
    msg = f"{name} is required{': ' + why if why else ''}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg + " (CI=true: not skipping)", pytrace=False)
    pytest.skip(msg)


@pytest.fixture
def postgres():
    """Use in tests whose point needs PostgreSQL (row locks, concurrency)."""
    need_service("PostgreSQL", _is_postgres(), "set DATABASE_URL=postgres://…")


@pytest.fixture
def redis_url():
    url = os.environ.get("REDIS_URL", "")
    ok = False
    if url:
        try:
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=1).ping()
            ok = True
        except Exception:
            ok = False
    need_service("Redis", ok, "set REDIS_URL=redis://…")
    return url


# A real Redis broker for the tests that look at the messages themselves (tests/orders/test_broker.py,
# tests/common/test_nudge.py): Celery publishes to BROKER_QUEUE there, emptied before and after.
BROKER_QUEUE = "xianyu-test-ingest"


def reset_broker_pool():
    """Drop cached broker connections so the next publish uses the current broker_url."""
    from config.celery import app

    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def real_broker(redis_url):
    import redis

    from config.celery import app

    r = redis.Redis.from_url(redis_url)
    r.delete(BROKER_QUEUE)
    saved = (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = BROKER_QUEUE
    app.conf.broker_url = redis_url
    reset_broker_pool()
    yield r
    app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue = saved
    reset_broker_pool()
    r.delete(BROKER_QUEUE)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """On SQLite the test database is a file, not memory: tests that start a real server process (gunicorn)
    share it with that process. One file per run (var/, removed with the test database)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        db.setdefault("TEST", {})["NAME"] = str(settings.VAR_DIR / f"test-{os.getpid()}.sqlite3")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Logins through the real form (django-axes tests, the admin sweep) without PBKDF2's deliberate cost."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
