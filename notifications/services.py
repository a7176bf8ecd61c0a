"""Notifications: fan-out, delivery with retries and per-channel rate limits, sweeper, alerts, summary.

Durability (DESIGN.md §4): `notify()` writes a Notification and its Delivery rows in the caller's
transaction and nudges a worker on commit; the rows are the truth. `delivery_send()` locks the delivery and
its channel, checks state and the channel's per-minute budget, marks the attempt (`sending` with a lease),
commits, calls the channel, then records the result. The sweeper (every minute) re-dispatches due rows and
rows whose lease ran out — except SMS, which is not idempotent and goes to `unknown` for staff.

Time: every function reads `django.utils.timezone.now()` at the point of use (tests travel in time by
patching it), and the sweeper also takes `now=`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from common.due import DueWork, backoff
from common.http import ConfigurationError, PlatformError, RateLimited
from common.i18n import content_language
from common.inbox import nudge
from common.locks import lock_one, lock_rows

from .channels import Message, channel_for, get_channel_class
from .events import get_event
from .models import AlertGate, Channel, Delivery, Notification, Subscription
from .rendering import render

log = logging.getLogger(__name__)

S = Delivery.Status
WINDOW = timedelta(seconds=60)
LEASE = timedelta(minutes=5)
# Deliveries as due work (common.due): pending or waiting until `due_at`, leased while `sending`.
DELIVERY_WORK = DueWork(Delivery, waiting=(S.PENDING, S.RETRY_WAIT), busy=S.SENDING, lease=LEASE)
WEBHOOK_ALERT_INTERVAL = timedelta(minutes=10)
HEALTH_ALERT_INTERVAL = timedelta(minutes=30)
# Failures that need a person (DESIGN.md §4.5): at most one alert per key in this interval, with the count.
FAILURE_ALERT_INTERVAL = timedelta(minutes=10)


def max_attempts() -> int:
    return settings.NOTIFY_MAX_ATTEMPTS


# --- fan-out --------------------------------------------------------------------------------------------


def jsonable(context: dict) -> dict:
    """The context as stored: Decimal, datetime, date, time, UUID and lazy strings become strings (Django's
    JSON encoder; a lazy label in LANGUAGE_CODE, like the message it goes into, whatever the language of the
    staff action that caused it); anything else that JSON cannot hold (a model instance…) is the caller's bug."""
    try:
        with content_language():
            return json.loads(json.dumps(context, cls=DjangoJSONEncoder, ensure_ascii=False))
    except TypeError as exc:
        raise TypeError(f"notification context must be JSON-serialisable (pass ids and strings): {exc}") from exc


def _subscribed_channels(event: str, shop, kinds=None) -> dict[int, Channel]:
    subs = (Subscription.objects.filter(event=event, enabled=True, channel__enabled=True)
            .filter(Q(shop__isnull=True) | Q(shop=shop) if shop is not None else Q(shop__isnull=True))
            .select_related("channel"))
    if kinds is not None:
        subs = subs.filter(channel__kind__in=list(kinds))
    channels: dict[int, Channel] = {}
    for sub in subs:
        ch = sub.channel
        if ch.shop_id is not None and shop is not None and ch.shop_id != shop.pk:
            continue  # a shop's channel never receives another shop's events
        channels[ch.pk] = ch
    return channels


def subscribed_kinds(*, event: str, shop=None) -> set[str]:
    """The channel kinds (sms, email, …) an event would be delivered through for this shop."""
    return {ch.kind for ch in _subscribed_channels(event, shop).values()}


def notify(event: str, *, shop=None, recipient: str = "", only_kinds=None, **context) -> Notification:
    """Record an event and queue one delivery per subscribed, enabled channel.

    Runs in the caller's transaction; deliveries start once it commits. Always writes the Notification, even
    when nobody subscribes. `recipient` (phone or e-mail, buyer events) is stored encrypted; `only_kinds`
    limits the fan-out to those channel kinds (a phone number goes to SMS channels only). Unknown event →
    ValueError, nothing written."""
    get_event(event)
    data = jsonable({"shop": shop.name, **context} if shop is not None else context)
    now = timezone.now()
    with transaction.atomic():
        notification = Notification.objects.create(event=event, shop=shop, context=data, recipient=recipient or "")
        channels = _subscribed_channels(event, shop, only_kinds)
        Delivery.objects.bulk_create(
            [Delivery(notification=notification, channel=ch, due_at=now) for ch in channels.values()])
        for pk in notification.deliveries.values_list("pk", flat=True):
            transaction.on_commit(lambda pk=pk: nudge(deliver_task(), pk))
    return notification


def deliver_task():
    from .tasks import deliver

    return deliver


# --- one delivery --------------------------------------------------------------------------------------


def _free_at(channel: Channel, now: datetime) -> datetime | None:
    """None when the channel may send now; else when its 60-second window frees a slot. A slot is used by
    every attempt that went out (attempted_at), whatever its result, since the platform counted it too."""
    limit = channel.rate_limit
    times = list(Delivery.objects.filter(channel=channel, attempted_at__gt=now - WINDOW)
                 .order_by("attempted_at").values_list("attempted_at", flat=True))
    if len(times) < limit:
        return None
    return times[len(times) - limit] + WINDOW


def delivery_send(*, delivery_id: int) -> str:
    """Send one delivery if it is due and its channel has budget. Returns the resulting status (or
    "throttled" / "locked-or-missing")."""
    now = timezone.now()
    with transaction.atomic():
        claim = DELIVERY_WORK.lock(delivery_id, now=now, queryset=Delivery.objects.select_related("notification"))
        if claim is None:
            return Delivery.objects.filter(pk=delivery_id).values_list("status", flat=True).first() or \
                "locked-or-missing"
        d = claim.row
        # The channel row lock serialises the budget check between workers.
        channel = lock_one(Channel.objects.all(), pk=d.channel_id)
        if claim.reclaimed and not get_channel_class(channel.kind).idempotent:
            # The worker that held it died mid-send: an SMS may have gone out, and is never sent twice blindly.
            _finish(d, S.UNKNOWN, "发送中断，结果未知：短信不会自动重发，请在短信控制台按 OutId 核对后手动处理")
            return S.UNKNOWN
        if not channel.enabled:
            _finish(d, S.FAILED, "渠道已停用")
            return S.FAILED
        try:
            sender = channel_for(channel)
            sender.validate()
        except (ConfigurationError, ValueError) as exc:
            _finish(d, S.FAILED, f"配置错误：{exc}")
            return S.FAILED
        if not d.text:
            try:
                ctx = dict(d.notification.context)
                if d.notification.shop_id and "shop" not in ctx:
                    ctx["shop"] = str(d.notification.shop)
                d.subject, d.text = render(d.notification.event, ctx)
                d.subject = d.subject[:255]
            except Exception as exc:
                _finish(d, S.FAILED, f"模板渲染失败：{exc.__class__.__name__}: {exc}")
                return S.FAILED
        free_at = _free_at(channel, now)
        if free_at is not None:
            d.status = S.PENDING if d.status == S.PENDING else S.RETRY_WAIT
            d.due_at = free_at
            d.save(update_fields=["status", "due_at", "subject", "text", "updated_at"])
            return "throttled"
        d.attempted_at = now
        DELIVERY_WORK.mark(d, now=now, update_fields=("attempted_at", "subject", "text"))

    n = d.notification
    message = Message(event=n.event, subject=d.subject, text=d.text, context=n.context, recipient=n.recipient,
                      notification_id=n.pk, delivery_id=d.pk, created_at=n.created_at.isoformat(),
                      shop_id=n.shop_id)
    try:
        receipt = sender.send(message)
    except ConfigurationError as exc:
        return _record(d, S.FAILED, f"配置错误：{exc}")
    except PlatformError as exc:
        return _record_failure(d, sender, exc)
    except Exception as exc:  # our bug or an unexpected library error
        log.exception("notification delivery %s crashed", d.pk)
        return _record_failure(d, sender, PlatformError(f"{exc.__class__.__name__}: {exc}", retryable=True,
                                                        outcome_unknown=True))
    return _record(d, S.SENT, "", sent_at=timezone.now(), external_id=(receipt or "")[:128])


def _record_failure(d: Delivery, sender, exc: PlatformError) -> str:
    if exc.outcome_unknown and not sender.idempotent:
        return _record(d, S.UNKNOWN, f"结果未知，不会自动重发，请在平台控制台核对后手动处理：{exc}")
    if exc.retryable and d.attempts < max_attempts():
        wait = backoff(d.attempts)
        if isinstance(exc, RateLimited):
            wait = max(wait, sender.rate_limited_pause)
        return _record(d, S.RETRY_WAIT, str(exc), due_at=timezone.now() + wait)
    reason = str(exc) if not exc.retryable else f"已尝试 {d.attempts} 次仍失败：{exc}"
    return _record(d, S.FAILED, reason)


def _record(d: Delivery, status: str, error: str, **fields) -> str:
    """Store an attempt's result unless the row moved on meanwhile (lease expired and re-dispatched)."""
    fields.setdefault("due_at", None)
    if not DELIVERY_WORK.record(d, status=status, last_error=error[:4000], **fields):
        log.warning("delivery %s changed while sending; result %s not recorded: %s", d.pk, status, error)
    return status


def _finish(d: Delivery, status: str, error: str) -> None:
    d.status, d.last_error, d.due_at, d.lease_until = status, error[:4000], None, None
    d.save(update_fields=["status", "last_error", "due_at", "lease_until", "subject", "text", "updated_at"])


def notification_deliver_now(*, notification_id: int) -> list[dict]:
    """Send a notification's unfinished deliveries now, in this process (each through `delivery_send`: its
    lock, budget and lease; one another worker holds is left to it), then report every delivery as
    {"kind", "status", "external_id", "error"}. For callers that must know whether a message went out."""
    rows = list(Delivery.objects.filter(notification_id=notification_id).values_list("pk", "status"))
    for pk, status in rows:
        if status in (S.PENDING, S.RETRY_WAIT):
            delivery_send(delivery_id=pk)
    return [{"kind": kind, "status": status, "external_id": external_id, "error": error}
            for kind, status, external_id, error in Delivery.objects.filter(notification_id=notification_id)
            .order_by("pk").values_list("channel__kind", "status", "external_id", "last_error")]


# --- sweeper ------------------------------------------------------------------------------------------


def deliveries_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Every minute (beat): dispatch what is due, and deliveries whose worker died mid-send (their lease ran
    out: `delivery_send` sends an idempotent one again and leaves an SMS `unknown` for staff)."""
    return DELIVERY_WORK.sweep(deliver_task(), now=now, limit=limit)


# --- staff actions -------------------------------------------------------------------------------------


def deliveries_retry_now(*, ids: list[int]) -> int:
    """Put failed, waiting or unknown deliveries back in the queue now (staff decision; for SMS in `unknown`
    this may send a second message)."""
    now = timezone.now()
    with transaction.atomic():
        picked = [d.pk for d in lock_rows(Delivery.objects.filter(
            pk__in=ids, status__in=[S.FAILED, S.RETRY_WAIT, S.UNKNOWN, S.PENDING]).only("pk"), skip_locked=True)]
        Delivery.objects.filter(pk__in=picked).update(status=S.PENDING, due_at=now, lease_until=None,
                                                      updated_at=now)
        for pk in picked:
            transaction.on_commit(lambda pk=pk: nudge(deliver_task(), pk))
    return len(picked)


def channel_send_test(*, channel: Channel) -> Delivery:
    """Send the test message to one channel now (in this process) and return its delivery."""
    with transaction.atomic():
        n = Notification.objects.create(event="system.test", shop=channel.shop, context={"channel": channel.name})
        d = Delivery.objects.create(notification=n, channel=channel, due_at=timezone.now())
    delivery_send(delivery_id=d.pk)
    d.refresh_from_db()
    return d


# --- alerts --------------------------------------------------------------------------------------------


def alert_gate(*, key: str, interval: timedelta, now: datetime | None = None, occurrences: int = 1) -> int | None:
    """Count `occurrences`; return how many occurrences the alert should report, or None while the last
    alert for `key` is younger than `interval`. Call inside a transaction together with the notify()."""
    now = now or timezone.now()
    gate, _ = AlertGate.objects.select_for_update().get_or_create(key=key[:191])
    gate.pending_count += occurrences
    if gate.last_alert_at and now - gate.last_alert_at < interval:
        gate.save(update_fields=["pending_count"])
        return None
    count, gate.pending_count, gate.last_alert_at = gate.pending_count, 0, now
    gate.save(update_fields=["pending_count", "last_alert_at"])
    return count


def staff_alert(event: str, *, key: str, interval: timedelta = FAILURE_ALERT_INTERVAL, shop=None,
                **context) -> Notification | None:
    """notify(event) for staff, rate-limited: at most one per `key` per `interval`; the alert carries `count`,
    the occurrences since the previous one (this one included). Runs in the caller's transaction."""
    with transaction.atomic():
        count = alert_gate(key=key, interval=interval)
        if count is None:
            return None
        return notify(event, shop=shop, count=count, **context)


def on_inbox_failed(sender=None, *, model: str = "", event_id=None, source: str = "", topic: str = "",
                    reference: str = "", attempts: int = 0, error: str = "", **kwargs) -> None:
    """Receiver of common.inbox.inbox_failed: inbox.failed, at most one per source per 10 minutes. An alert
    problem is logged and never undoes the failure's record."""
    try:
        staff_alert("inbox.failed", key=f"inbox_failed:{model}:{source}", source=source, topic=topic,
                    event_id=event_id, order=reference, attempts=attempts, error=error)
    except Exception:
        log.exception("alert for failed %s event %s not recorded", model, event_id)


def webhook_rejected_alert(*, source: str, reason: str, remote_addr: str = "", count: int = 1) -> Notification | None:
    """security.webhook_rejected, at most one per source per 10 minutes, with the count since the last one
    (`count`: refused calls this report stands for)."""
    with transaction.atomic():
        count = alert_gate(key=f"webhook_rejected:{source}", interval=WEBHOOK_ALERT_INTERVAL, occurrences=count)
        if count is None:
            return None
        return notify("security.webhook_rejected", source=source, reason=reason, remote_addr=remote_addr,
                      count=count)


def on_webhook_rejected(sender=None, *, source: str = "", reason: str = "", remote_addr: str = "", count: int = 1,
                        **kwargs):
    """Receiver of common.rejects.webhook_rejected, sent from a Celery task (never in the refused request):
    an alert problem is logged, never raised."""
    try:
        webhook_rejected_alert(source=source, reason=reason, remote_addr=remote_addr, count=count)
    except Exception:
        log.exception("security alert for rejected %s webhook not recorded", source)


def health_alert_check(*, now: datetime | None = None) -> Notification | None:
    """health.alert when check_health() fails; the same set of failing checks alerts at most every 30
    minutes (a different set alerts at once)."""
    from common.health import check_health

    report = check_health()
    if report.get("ok"):
        return None
    failing = sorted(name for name, c in report.get("checks", {}).items() if not c.get("ok"))
    details = {name: ", ".join(f"{k}={v}" for k, v in report["checks"][name].items() if k != "ok") or "失败"
               for name in failing}
    with transaction.atomic():
        count = alert_gate(key=f"health:{','.join(failing)}", interval=HEALTH_ALERT_INTERVAL, now=now)
        if count is None:
            return None
        return notify("health.alert", failing=", ".join(failing), details=details, count=count)


# --- daily summary --------------------------------------------------------------------------------------

# Other apps add figures by appending a function (since, until) -> {"label": value}. Notifications calls no
# one (DESIGN.md §2): they register themselves, e.g. in their AppConfig.ready().
SUMMARY_PROVIDERS: list[Callable[[datetime, datetime], dict]] = []


def summary_daily_gather(*, since: datetime, until: datetime) -> dict:
    notifications = Notification.objects.filter(created_at__gte=since, created_at__lt=until)
    by_event = dict(notifications.values_list("event").annotate(n=Count("id")).order_by())
    by_status = dict(Delivery.objects.filter(created_at__gte=since, created_at__lt=until)
                     .values_list("status").annotate(n=Count("id")).order_by())
    figures: dict = {}
    for provider in SUMMARY_PROVIDERS:
        try:
            figures.update(provider(since, until))
        except Exception:
            log.exception("summary provider %r failed", provider)
    local = timezone.localtime
    return {"since": local(since).strftime("%Y-%m-%d %H:%M"), "until": local(until).strftime("%Y-%m-%d %H:%M"),
            "notifications": sum(by_event.values()), "by_event": by_event,
            "deliveries": by_status, "sent": by_status.get(S.SENT, 0), "failed": by_status.get(S.FAILED, 0),
            "unknown": by_status.get(S.UNKNOWN, 0), "figures": figures}


def summary_daily_send(*, now: datetime | None = None) -> Notification:
    """The last 24 hours, as summary.daily."""
    now = now or timezone.now()
    return notify("summary.daily", **summary_daily_gather(since=now - timedelta(days=1), until=now))
