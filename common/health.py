"""Health of the moving parts: database, broker, worker and beat freshness, inbox backlog."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .inbox import INBOX_MODELS
from .models import Heartbeat, InboxEvent

STALE_AFTER = timedelta(minutes=3)
BACKLOG_AGE = timedelta(minutes=5)
BACKLOG_LIMIT = 100


def check_health() -> dict:
    checks: dict[str, dict] = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        return {"ok": False, "checks": checks}

    checks["broker"] = _broker()
    now = timezone.now()
    worker = Heartbeat.objects.filter(name="worker").values_list("seen_at", flat=True).first()
    checks["worker"] = {"ok": bool(worker and now - worker < STALE_AFTER), "last_seen": worker}
    try:
        from django_celery_beat.models import PeriodicTask

        beat = PeriodicTask.objects.filter(task="common.tasks.heartbeat").values_list("last_run_at", flat=True).first()
    except Exception:
        beat = None
    checks["beat"] = {"ok": bool(beat and now - beat < STALE_AFTER), "last_run": beat}
    backlog = 0
    for model in INBOX_MODELS:
        backlog += model.objects.filter(
            status__in=[InboxEvent.Status.PENDING, InboxEvent.Status.FAILED, InboxEvent.Status.PROCESSING],
            received_at__lt=now - BACKLOG_AGE).count()
    checks["inbox_backlog"] = {"ok": backlog < BACKLOG_LIMIT, "count": backlog}
    return {"ok": all(c["ok"] for c in checks.values()), "checks": checks}


def _broker() -> dict:
    from config.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        return {"ok": True, "transport": "filesystem"}
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": conn.transport_cls}
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}
