"""Refused webhook calls as evidence for staff, bounded whatever a caller sends (DESIGN.md §6).

Anyone can call a webhook, so what a refusal costs us is capped:
- repeats aggregate: calls with the same source, reason and remote address within one window
  (`REJECTED_WEBHOOK_WINDOW_SECONDS`) are one `RejectedWebhook` row whose `count` goes up; only the first
  keeps a (cleaned, bounded) excerpt of its body;
- at most `REJECTED_WEBHOOK_MAX_ROWS` rows are kept: each new row removes the oldest beyond the cap;
- the security alert leaves the request: a new row nudges the `common.tasks.report_rejected_webhooks`
  task once its transaction commits — at most once a minute per source (a cache key), the minutely beat
  task reports the rest — and the task sends `webhook_rejected` with the number of refusals not reported
  yet. Notifications listens to it and rate-limits the alert itself.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import Signal
from django.utils import timezone

from .locks import lock_rows
from .models import RejectedWebhook
from .sanitize import clean_doc, clean_text

log = logging.getLogger(__name__)

# Sent by the report task (source, reason, remote_addr of the latest refusal, count: refusals since the last
# report). Notifications listens to it.
webhook_rejected = Signal()

REPORT_BATCH = 1000
NUDGE_EVERY_SECONDS = 60


def _bucket(source: str, reason: str, remote_addr: str, now) -> str:
    window = max(1, int(settings.REJECTED_WEBHOOK_WINDOW_SECONDS))
    start = int(now.timestamp()) // window * window
    return hashlib.sha256(f"{source}\x1f{reason}\x1f{remote_addr}\x1f{start}".encode()).hexdigest()


def rejection_record(*, source: str, reason: str, remote_addr: str, path: str, headers: dict,
                     body: bytes) -> bool:
    """Count one refused call; True when it opened a new row (the first of its kind in this window)."""
    source, reason = clean_text(source, 32), clean_text(reason, 255)
    remote_addr = clean_text(remote_addr, 64)
    now = timezone.now()
    bucket = _bucket(source, reason, remote_addr, now)
    repeat = RejectedWebhook.objects.filter(bucket=bucket)
    if repeat.update(count=F("count") + 1, last_seen_at=now):
        return False
    try:
        with transaction.atomic():
            row = RejectedWebhook.objects.create(
                bucket=bucket, source=source, reason=reason, remote_addr=remote_addr, path=clean_text(path, 512),
                headers=clean_doc(headers), body_size=len(body), last_seen_at=now,
                body_excerpt=clean_text(body[: RejectedWebhook.EXCERPT_BYTES].decode("utf-8", "replace")),
            )
    except IntegrityError:  # the same kind of call, counted by a concurrent request a moment ago
        repeat.update(count=F("count") + 1, last_seen_at=now)
        return False
    RejectedWebhook.objects.filter(pk__lte=row.pk - settings.REJECTED_WEBHOOK_MAX_ROWS).delete()
    if _may_nudge(source):
        transaction.on_commit(lambda: _nudge_report(source))
    return True


def _may_nudge(source: str) -> bool:
    try:
        return cache.add(f"xo:rejected-webhook-nudge:{source}", 1, timeout=NUDGE_EVERY_SECONDS)
    except Exception:  # no cache: beat's minutely run reports it
        log.warning("cache unavailable: rejected %s webhook left for the periodic report", source, exc_info=True)
        return False


def _nudge_report(source: str) -> None:
    from .inbox import nudge
    from .tasks import report_rejected_webhooks

    nudge(report_rejected_webhooks, source)


def rejections_report(*, source: str | None = None) -> dict[str, int]:
    """Send `webhook_rejected` once per source for the refusals not reported yet; {source: count}."""
    todo = RejectedWebhook.objects.filter(count__gt=F("reported_count"))
    if source is not None:
        todo = todo.filter(source=source)
    latest: dict[str, RejectedWebhook] = {}
    counts: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        rows = lock_rows(todo, skip_locked=True, limit=REPORT_BATCH)
        for row in rows:
            counts[row.source] += row.count - row.reported_count
            if row.source not in latest or row.last_seen_at >= latest[row.source].last_seen_at:
                latest[row.source] = row
            RejectedWebhook.objects.filter(pk=row.pk).update(reported_count=row.count)
    for name, n in counts.items():
        row = latest[name]
        for receiver, result in webhook_rejected.send_robust(
                sender=RejectedWebhook, source=name, reason=row.reason, remote_addr=row.remote_addr, count=n):
            if isinstance(result, Exception):
                log.error("webhook_rejected receiver %r failed for %s: %r", receiver, name, result)
    return dict(counts)
