"""Webhook inbox: verify, store, answer, then process on commit (DESIGN.md §4.1).

`receive()` is the one way a webhook view stores a message; `process()` is the one way a task runs the
handler for a stored message. Handlers must be idempotent: an event can be processed again by the sweeper
or by `manage.py replay_events`."""

from __future__ import annotations

import logging
import traceback as tb
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from .due import DueWork, backoff
from .models import InboxEvent, RejectedWebhook

log = logging.getLogger(__name__)

# Sent after a webhook call was refused (source, reason, remote_addr). Notifications listens to it.
webhook_rejected = Signal()

# Every concrete inbox model and its handler, for /healthz/ and replay_events.
INBOX_MODELS: list[type[InboxEvent]] = []
INBOX_HANDLERS: dict[type[InboxEvent], Callable[[InboxEvent], str | None]] = {}

SAFE_HEADERS = ("CONTENT_TYPE", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_X_REQUEST_ID")
LEASE = timedelta(minutes=5)
NUDGE_GRACE = timedelta(seconds=30)  # a new event's own nudge is on its way


def register_inbox(model, handler: Callable[[InboxEvent], str | None]):
    """Declare an app's inbox model and the (idempotent) handler that processes its events."""
    if model not in INBOX_MODELS:
        INBOX_MODELS.append(model)
    INBOX_HANDLERS[model] = handler
    return model


@dataclass
class Verdict:
    """What a platform-specific verifier says of one call."""

    ok: bool
    reason: str = ""
    key: str = ""
    topic: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # extra model fields (e.g. shop)
    status: int = 401

    @classmethod
    def reject(cls, reason: str, status: int = 401) -> Verdict:
        return cls(ok=False, reason=reason, status=status)


def client_ip(request: HttpRequest) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:64]


def pick_headers(request: HttpRequest, extra: tuple[str, ...] = ()) -> dict[str, str]:
    return {k: str(request.META[k])[:512] for k in (*SAFE_HEADERS, *extra) if k in request.META}


def reject(request: HttpRequest, *, source: str, reason: str, body: bytes) -> None:
    RejectedWebhook.objects.create(
        source=source, reason=reason[:255], remote_addr=client_ip(request),
        path=request.get_full_path()[:512], headers=pick_headers(request),
        # NUL cannot be stored in PostgreSQL text: a hostile body must still leave its (bounded) evidence.
        body_excerpt=body[: RejectedWebhook.EXCERPT_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd"),
        body_size=len(body),
    )
    log.warning("webhook %s rejected from %s: %s", source, client_ip(request), reason)
    webhook_rejected.send(sender=RejectedWebhook, source=source, reason=reason, remote_addr=client_ip(request))


def receive(request: HttpRequest, *, model: type[InboxEvent], source: str,
            verify: Callable[[HttpRequest, bytes], Verdict], task, success: Callable[[], HttpResponse],
            headers: tuple[str, ...] = ()) -> HttpResponse:
    """Verify a webhook call, store it once, start its processing on commit, answer at once.

    A duplicate (same source and key) answers success and does nothing; a bad call answers 4xx and leaves
    only a RejectedWebhook row."""
    if request.method != "POST":
        return JsonResponse({"error": "method not allowed"}, status=405)
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        reject(request, source=source, reason="body too large", body=body[:256])
        return JsonResponse({"error": "body too large"}, status=413)
    try:
        verdict = verify(request, body)
    except Exception as exc:  # a verifier bug must not store the event
        log.exception("webhook %s verifier failed", source)
        verdict = Verdict.reject(f"verification error: {exc.__class__.__name__}", status=400)
    if not verdict.ok:
        reject(request, source=source, reason=verdict.reason, body=body)
        return JsonResponse({"error": verdict.reason}, status=verdict.status)

    try:
        # One INSERT needs no explicit transaction (autocommit); inside a caller's transaction it gets a
        # savepoint so a duplicate does not break the caller.
        in_transaction = not transaction.get_autocommit()
        with transaction.atomic() if in_transaction else nullcontext():
            event = model.objects.create(
                source=source, key=verdict.key[:191], topic=verdict.topic[:64],
                headers=pick_headers(request, headers), body=body.decode("utf-8", "replace"), **verdict.fields,
            )
        transaction.on_commit(lambda: nudge(task, event.pk))
    except IntegrityError:
        if not model.objects.filter(source=source, key=verdict.key[:191]).exists():
            raise  # not a duplicate: a real error, let it surface as a 500 so the platform retries
        log.info("webhook %s duplicate %s", source, verdict.key)
    return success()


def nudge(task, pk) -> None:
    """Tell a worker there is work. The row is the truth: if the broker is down, the sweeper finds it."""
    try:
        task.delay(pk)
    except Exception:
        log.warning("broker unavailable, %s(%s) left for the sweeper", task.name, pk, exc_info=True)


class Ignored(Exception):
    """Raised by a handler when the event is valid but needs no action (stale, unknown type)."""


class InboxWork(DueWork):
    """An inbox's due work: `next_attempt_at` is the due time of a pending or failed event and the lease of a
    processing one. The sweeper leaves a new event alone for NUDGE_GRACE (its nudge is on the way)."""

    def waiting_q(self, now):
        S = InboxEvent.Status
        return (Q(status=S.PENDING, next_attempt_at__lte=now, received_at__lte=now - NUDGE_GRACE)
                | Q(status=S.FAILED, next_attempt_at__lte=now))


_WORK: dict[type, InboxWork] = {}


def inbox_work(model: type[InboxEvent]) -> InboxWork:
    if model not in _WORK:
        S = InboxEvent.Status
        _WORK[model] = InboxWork(model, waiting=(S.PENDING, S.FAILED), busy=S.PROCESSING,
                                 due_field="next_attempt_at", lease_field="next_attempt_at", lease=LEASE)
    return _WORK[model]


def process(model: type[InboxEvent], pk, handler: Callable[[InboxEvent], str | None], *,
            force: bool = False) -> str:
    """Run `handler` for one stored event, at most one worker at a time, recording the outcome on the row.

    The claim is committed before the handler runs, so the handler may call platforms; it must be
    idempotent. `force` (operator replay) also re-runs a processed, ignored or failed-for-good event.
    Returns the final status."""
    work = inbox_work(model)
    claim = work.claim(pk, force=force)
    if claim is None:
        return model.objects.filter(pk=pk).values_list("status", flat=True).first() or "locked-or-missing"
    event = claim.row
    fields = {"processed_at": timezone.now(), "next_attempt_at": None, "last_error": "", "traceback": ""}
    try:
        result = handler(event) or ""
        fields.update(status=InboxEvent.Status.PROCESSED, result=str(result)[:255])
    except Ignored as exc:
        fields.update(status=InboxEvent.Status.IGNORED, result=str(exc)[:255])
    except Exception as exc:
        log.exception("inbox %s %s failed", model._meta.label, pk)
        failed_for_good = event.attempts >= settings.INBOX_MAX_ATTEMPTS
        fields.update(status=InboxEvent.Status.FAILED, processed_at=None,
                      last_error=f"{exc.__class__.__name__}: {exc}"[:4000], traceback=tb.format_exc()[-8000:],
                      next_attempt_at=None if failed_for_good else timezone.now() + backoff(event.attempts))
    work.record(event, **fields)
    return fields["status"]


def due_events(model: type[InboxEvent], *, now=None, limit: int = 500) -> list:
    """Events a sweeper should (re)dispatch: new ones whose nudge was lost, failures due for retry, and
    processing ones whose lease ran out (worker died)."""
    return inbox_work(model).due_ids(now=now, limit=limit)
