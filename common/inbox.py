"""Webhook inbox: verify, store, answer, then process on commit (DESIGN.md §4.1).

`receive()` is the one way a webhook view stores a message; `process()` is the one way a task runs the
handler for a stored message. Handlers must be idempotent: an event can be processed again by the sweeper
or by `manage.py replay_events`."""

from __future__ import annotations

import ipaddress
import logging
import traceback as tb
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .due import DueWork, backoff
from .middleware import request_problem
from .models import InboxEvent
from .nudge import fast_delay
from .rejects import rejection_record, webhook_rejected  # noqa: F401 (webhook_rejected: re-exported)
from .sanitize import clean_text, decode_body, is_hostile

log = logging.getLogger(__name__)

# Sent when a stored event failed for good (its attempts are used up; only an operator's replay runs it again),
# inside the transaction that records the failure: model (label), event_id, source, topic, reference (the
# order or other object it is about, if the model says), attempts, error. Notifications listens to it.
inbox_failed = Signal()

# Every concrete inbox model and its handler, for /healthz/ and replay_events.
INBOX_MODELS: list[type[InboxEvent]] = []
INBOX_HANDLERS: dict[type[InboxEvent], Callable[[InboxEvent], str | None]] = {}

SAFE_HEADERS = ("CONTENT_TYPE", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_X_REQUEST_ID",
                "HTTP_TRANSFER_ENCODING")
LEASE = timedelta(minutes=5)
NUDGE_GRACE = timedelta(seconds=30)  # a new event's own nudge is on its way
READ_CHUNK = 64 * 1024


def register_inbox(model, handler: Callable[[InboxEvent], str | None]):
    """Declare an app's inbox model and the (idempotent) handler that processes its events."""
    if model not in INBOX_MODELS:
        INBOX_MODELS.append(model)
    INBOX_HANDLERS[model] = handler
    return model


def webhook_view(view):
    """Mark a view as a webhook: no CSRF (platforms sign instead), and it checks hostile input itself
    (`receive`), so that a refused call is recorded under its source (common.middleware)."""
    view = csrf_exempt(view)
    view.handles_hostile_input = True
    return view


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
    """The caller's address: REMOTE_ADDR, or behind `TRUSTED_PROXY_COUNT` reverse proxies the address the
    outermost of them saw (X-Forwarded-For, counted from the right: entries further left are the client's
    own claims). Always an IP address or empty (it is stored in address columns)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies and _is_ip(hops[-proxies]):
            return hops[-proxies]
    remote = (request.META.get("REMOTE_ADDR") or "").strip()
    return remote if _is_ip(remote) else ""


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def pick_headers(request: HttpRequest, extra: tuple[str, ...] = ()) -> dict[str, str]:
    return {k: clean_text(request.META[k], 512) for k in (*SAFE_HEADERS, *extra) if k in request.META}


def reject(request: HttpRequest, *, source: str, reason: str, body: bytes) -> None:
    """Record a refused call (aggregated and capped, common.rejects) and log it."""
    rejection_record(source=source, reason=reason, remote_addr=client_ip(request), path=request.get_full_path(),
                     headers=pick_headers(request, ("QUERY_STRING",)), body=body)
    log.warning("webhook %s rejected from %s: %s", source, client_ip(request), clean_text(reason, 255))


class BodyTooLarge(Exception):
    pass


class LengthRequired(Exception):
    pass


def read_body(request: HttpRequest, limit: int) -> bytes:
    """The request body, at most `limit` bytes (BodyTooLarge beyond, without reading it all).

    A chunked body (Transfer-Encoding: chunked, no Content-Length) is read from the server's input, which
    gunicorn de-chunks and ends (`wsgi.input_terminated`); Django itself only reads Content-Length bytes.
    Behind nginx (proxy_request_buffering on) the body always arrives with a Content-Length."""
    length = request.META.get("CONTENT_LENGTH") or ""
    if length.strip():
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size > limit:
            raise BodyTooLarge
        return request.body
    if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return request.body
    if not request.META.get("wsgi.input_terminated"):
        raise LengthRequired
    stream, data = request.META["wsgi.input"], bytearray()
    while len(data) <= limit:
        chunk = stream.read(min(READ_CHUNK, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise BodyTooLarge
    return bytes(data)


def _verdict_problem(model: type[InboxEvent], verdict: Verdict) -> str:
    """A reason when what the verifier extracted cannot be stored as is (hostile or over-long text)."""
    texts = {"key": verdict.key, "topic": verdict.topic,
             **{k: v for k, v in verdict.fields.items() if isinstance(v, str)}}
    for name, value in texts.items():
        if is_hostile(value):
            return f"message {name} contains characters that are not allowed"
        limit = model._meta.get_field(name).max_length
        if limit is not None and len(value) > limit:
            return f"message {name} is longer than {limit} characters"
    return ""


def receive(request: HttpRequest, *, model: type[InboxEvent], source: str,
            verify: Callable[[HttpRequest, bytes], Verdict], task, success: Callable[[], HttpResponse],
            headers: tuple[str, ...] = ()) -> HttpResponse:
    """Verify a webhook call, store it once, start its processing on commit, answer at once.

    A duplicate (same source and key) answers success and does nothing; a bad call answers 4xx with a plain
    reason and leaves only a (cleaned, aggregated) RejectedWebhook record: over-long or chunked-over-limit
    bodies, hostile characters in the address, query or body, bodies that are not UTF-8, bad signatures,
    identifiers that cannot be stored."""

    def refuse(reason: str, status: int, body: bytes = b"") -> HttpResponse:
        reject(request, source=source, reason=reason, body=body)
        return JsonResponse({"error": reason}, status=status)

    if request.method != "POST":
        return JsonResponse({"error": "method not allowed"}, status=405)
    try:
        body = read_body(request, settings.WEBHOOK_MAX_BODY_BYTES)
    except BodyTooLarge:
        return refuse("body too large", 413)
    except LengthRequired:
        return refuse("chunked body not supported by this server: send a Content-Length", 411)
    problem = request_problem(request)
    if problem is not None:
        return refuse(problem[1], problem[0], body)
    if decode_body(body) is None:
        return refuse("body is not UTF-8 text or contains control characters", 400, body)
    try:
        verdict = verify(request, body)
    except Exception:  # a verifier bug must not store the event, nor tell the caller what broke
        log.exception("webhook %s verifier failed", source)
        verdict = Verdict.reject("the message could not be verified", status=400)
    if not verdict.ok:
        return refuse(verdict.reason, verdict.status, body)
    problem = _verdict_problem(model, verdict)
    if problem:
        return refuse(problem, 400, body)

    try:
        # One INSERT needs no explicit transaction (autocommit); inside a caller's transaction it gets a
        # savepoint so a duplicate does not break the caller.
        in_transaction = not transaction.get_autocommit()
        with transaction.atomic() if in_transaction else nullcontext():
            pk = insert_event(model, source=source, key=verdict.key, topic=verdict.topic,
                              headers=pick_headers(request, headers), body=body.decode("utf-8"), **verdict.fields)
        transaction.on_commit(lambda: nudge(task, pk))
    except IntegrityError:
        if not model.objects.filter(source=source, key=verdict.key).exists():
            raise  # not a duplicate: a real error, let it surface as a 500 so the platform retries
        log.info("webhook %s duplicate %s", source, verdict.key)
    return success()


_INSERTS: dict[tuple[type, str], tuple[str, list]] = {}


def insert_event(model: type[InboxEvent], **values) -> int:
    """Store a new inbox row and return its pk: `model.objects.create(**values)` on PostgreSQL as one
    prepared `INSERT … RETURNING`, without building a model instance, compiling the query and quoting its
    values in Python for every webhook (that was a third of the request's CPU). Defaults, `auto_now_add` and
    field adaptation (JSON) are the fields' own; a duplicate raises IntegrityError as `create` does. Other
    databases use `create`."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        return model.objects.create(**values).pk
    key = (model, connection.alias)
    if key not in _INSERTS:
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        q = connection.ops.quote_name
        sql = (f"INSERT INTO {q(model._meta.db_table)} ({', '.join(q(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {q(model._meta.pk.column)}")
        _INSERTS[key] = sql, fields
    sql, fields = _INSERTS[key]
    params, now = [], None
    for f in fields:
        if f.name in values:
            value = values.pop(f.name)
            if f.is_relation and value is not None:
                value = value.pk
        elif f.attname in values:
            value = values.pop(f.attname)
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now = now or timezone.now()
        else:
            value = f.get_default()
        params.append(f.get_db_prep_save(value, connection))
    if values:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(values)}")
    # A server-side-binding cursor and a prepared statement: Django's client-side binding quotes each of the
    # fifteen values in Python, and PostgreSQL would parse and plan the same INSERT every time. Same
    # connection, so the same transaction; errors are translated as Django's own cursor does.
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone()[0]


def nudge(task, pk) -> None:
    """Tell a worker there is work. The row is the truth: if the broker is down, the sweeper finds it.
    On a Redis broker the message is one LPUSH (common.nudge), else `task.delay`."""
    try:
        if not fast_delay(task, pk):
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
        if failed_for_good:
            with transaction.atomic():  # the alert's rows commit with the failure, or neither does
                if work.record(event, **fields):
                    inbox_failed.send(sender=model, model=model._meta.label, event_id=event.pk, source=event.source,
                                      topic=event.topic, reference=str(getattr(event, "platform_order_id", "")),
                                      attempts=event.attempts, error=fields["last_error"][:500])
            return fields["status"]
    work.record(event, **fields)
    return fields["status"]


def due_events(model: type[InboxEvent], *, now=None, limit: int = 500) -> list:
    """Events a sweeper should (re)dispatch: new ones whose nudge was lost, failures due for retry, and
    processing ones whose lease ran out (worker died)."""
    return inbox_work(model).due_ids(now=now, limit=limit)
