"""KYC due work (DESIGN.md §4.2, common.due): what a verification still needs after the webhooks.

`verification_tick` is the one worker step for a verification whose `due_at` came: under the order and
verification locks it looks at both and does one thing —
- the order was closed or refunded meanwhile: cancel; the order came back from a refund: carry on;
- an approval not yet applied to its order (the order was refunding at the time): release the order;
- the halfway reminder: tell the buyer again;
- the link's lifetime is over: ask Sumsub once more (if the buyer started), then expire and apply the
  policy's action (close, or hand to staff; a buyer whose submission is still under review goes to staff);
- no Sumsub result for KYC_STATUS_CHECK_MINUTES although the buyer started: ask Sumsub (a lost webhook);
- the order must be closed on the platform (final rejection, expiry): close it through its adapter; where
  the platform cannot (闲管家) or keeps failing, staff are asked and the order waits in their queue.
Platform and Sumsub calls follow lock → check → mark (busy, lease) → commit → call → lock → record; a
worker whose lease ran out and was taken over records nothing.

`buyer_message_send` delivers one BuyerMessage through the platform's chat; `kyc_sweep` (beat, every minute)
nudges every due verification, message and stored webhook.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.due import DueWork, backoff
from common.http import ConfigurationError, PlatformError
from common.inbox import due_events, nudge
from common.locks import lock_one
from orders.adapters import get_adapter
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import order_close, order_lock, order_note, order_release, order_sync

from . import events as log_event
from .clients import SumsubClient, sumsub_configured
from .models import (
    ACTIONABLE,
    OPEN,
    BuyerMessage,
    Closure,
    ExpiryAction,
    SumsubInboxEvent,
    Verification,
    VerificationEvent,
    VerificationStatus,
    WorkState,
)
from .services import (
    SUBMITTED_STATUSES,
    Review,
    check_interval,
    decide,
    local_time,
    reach_buyer,
    refetch,
    schedule,
    status_text,
)

log = logging.getLogger(__name__)
V = VerificationStatus
OS = OrderStatus
Actor = VerificationEvent.Actor
OrderActor = OrderEvent.Actor
M = BuyerMessage.Status

LEASE = timedelta(minutes=5)
VERIFICATION_WORK = DueWork(Verification, waiting=(WorkState.WAITING,), busy=WorkState.BUSY, status_field="work_state",
                            attempts_field="work_attempts", lease=LEASE)
MESSAGE_WORK = DueWork(BuyerMessage, waiting=(M.PENDING, M.RETRY_WAIT), busy=M.SENDING, lease=LEASE)
CLOSE_MAX_ATTEMPTS = 5
MESSAGE_MAX_ATTEMPTS = 5
# How long expiry waits beyond the link's end for Sumsub to answer the last status query.
EXPIRY_GRACE = timedelta(hours=6)
CLOSE_REASONS = {V.REJECTED: "买家未通过实名认证", V.EXPIRED: "买家未在规定时间内完成实名认证"}
WHY = {V.REJECTED: "实名认证未通过", V.EXPIRED: "实名认证超时未完成"}


@dataclass
class _Job:
    """An outside call the tick makes after committing its claim."""

    kind: str                 # "close" | "check"
    verification_id: int
    order_id: int
    attempts: int             # the claim's work_attempts (the fence for recording)
    at_expiry: bool = False


# --- the tick ----------------------------------------------------------------------------------------------


def verification_tick(*, verification_id: int, now: datetime | None = None) -> str:
    """Do what one due verification needs (see the module docstring). Safe to run any number of times."""
    now = now or timezone.now()
    order_id = Verification.objects.filter(pk=verification_id).values_list("order_id", flat=True).first()
    if order_id is None:
        return "missing"
    with transaction.atomic():
        order = order_lock(order_id, skip_locked=True)
        if order is None:
            return "locked"
        claim = VERIFICATION_WORK.lock(verification_id, now=now, queryset=Verification.objects.select_related(
            "applicant", "applicant__buyer"))
        if claim is None:
            return "not-due"
        v = claim.row
        job_kind, at_expiry = _plan(v, order, now)
        if job_kind is None:
            # The order may have moved (released) under another instance: read its status again.
            schedule(v, Order.objects.get(pk=order.pk), now=now, finishing=True)
            v.save()
            return v.status
        VERIFICATION_WORK.mark(v, now=now)
        if job_kind == "close":
            v.close_attempts += 1
            v.save(update_fields=["close_attempts", "updated_at"])
        job = _Job(job_kind, v.pk, order.pk, v.work_attempts, at_expiry)
    return _perform(job, now)


def _can_check(v: Verification) -> bool:
    started = v.opened_at is not None or v.status in (V.PENDING, V.RETRY_REQUESTED)
    return sumsub_configured() and bool(v.applicant.applicant_id) and started


def _plan(v: Verification, order: Order, now: datetime) -> tuple[str | None, bool]:
    """Do the in-database work now; return the outside call to make ("close" / "check"), if any."""
    if v.closure == Closure.DUE:
        if order.status in (OS.CLOSED, OS.REFUNDED):
            v.closure = Closure.DONE
            log_event.note_event(v, message=f"订单已{status_text(order)}，无需再关闭")
            return None, False
        if order.status == OS.REFUNDING:
            return None, False
        if order.status != OS.AWAITING_KYC:
            v.closure, v.needs_staff = Closure.NONE, True
            v.staff_reason = f"订单状态为{status_text(order)}，无法按认证结果关闭，请人工处理"
            log_event.note_event(v, message=v.staff_reason)
            return None, False
        return "close", False
    if order.status in (OS.CLOSED, OS.REFUNDED):
        if v.status in OPEN:
            _cancel(v, f"订单已{status_text(order)}，认证取消")
        return None, False
    if order.status == OS.REFUNDING:
        return None, False
    if v.status == V.APPROVED:
        if order.status == OS.AWAITING_KYC:
            order_release(order=order, actor=OrderActor.SYSTEM, message="实名认证已通过（退款结束后），进入待发货")
            log_event.note_event(v, message="订单已放行")
        return None, False
    if v.status not in OPEN:
        return None, False
    if order.status != OS.AWAITING_KYC:
        _cancel(v, f"订单已{status_text(order)}，无需再认证")
        return None, False
    if now >= v.expires_at:
        unchecked = v.checked_at is None or v.checked_at < v.expires_at
        if _can_check(v) and unchecked and now < v.expires_at + EXPIRY_GRACE:
            return "check", True
        _expire(v, order, now)
        return None, False
    if v.next_check_at and now >= v.next_check_at:
        if _can_check(v):
            return "check", False
        v.next_check_at = None
    if v.remind_at and not v.reminded_at and now >= v.remind_at and v.status in ACTIONABLE:
        v.reminded_at = now
        channels = reach_buyer(v, order, kind=BuyerMessage.Kind.REMINDER)
        log_event.note_event(v, message=f"已提醒买家完成认证：{'、'.join(channels) or '无可用渠道'}")
    return None, False


def _cancel(v: Verification, message: str) -> None:
    before = v.status
    v.cancel()
    v.needs_staff, v.staff_reason = False, ""
    log_event.transition_event(v, before, actor=Actor.SYSTEM, message=message)


def _expire(v: Verification, order: Order, now: datetime) -> None:
    from notifications.services import notify

    before = v.status
    submitted = before == V.PENDING
    v.expire()
    v.next_check_at = None
    if v.expiry_action == ExpiryAction.CLOSE and not submitted:
        v.closure, v.due_at = Closure.DUE, now
        action = "订单将在平台关闭。"
    else:
        v.needs_staff = True
        v.staff_reason = ("买家已提交资料，但审核在链接有效期内未完成" if submitted
                          else "认证链接已过期，买家未完成认证")
        action = "订单已转人工处理：可重新发送链接、人工审核或关闭订单。"
    log_event.transition_event(v, before, actor=Actor.SYSTEM, message=f"认证链接已过期。{action}")
    notify("kyc.link_expired", shop=order.shop, order=order.platform_order_id, action=action)


# --- outside calls -----------------------------------------------------------------------------------------


def _perform(job: _Job, now: datetime) -> str:
    order = Order.objects.select_related("shop").get(pk=job.order_id)
    v = Verification.objects.select_related("applicant").get(pk=job.verification_id)
    if job.kind == "close":
        adapter = get_adapter(order.shop)
        try:
            adapter.close(order.platform_order_id, CLOSE_REASONS.get(v.status, "买家未完成实名认证"))
            return _record(job, now, outcome="closed")
        except PlatformError as exc:
            if exc.outcome_unknown or not exc.retryable:
                snapshot = _platform_closed(adapter, order.platform_order_id)
                if snapshot is not None:
                    return _record(job, now, outcome="already", payload=snapshot)
            return _record(job, now, outcome="error", payload=exc)
        except Exception as exc:  # a bug or an unexpected transport error: the close may have gone through
            log.exception("verification %s: unexpected error while closing", v.pk)
            return _record(job, now, outcome="error", payload=PlatformError(
                f"{exc.__class__.__name__}: {exc}", retryable=True, outcome_unknown=True))
    try:
        status = SumsubClient().review_status(v.applicant.applicant_id)
    except PlatformError as exc:
        return _record(job, now, outcome="error", payload=exc)
    return _record(job, now, outcome="status", payload=status)


def _platform_closed(adapter, platform_order_id: str):
    """The platform's snapshot when it already shows the order closed or refunded, else None."""
    try:
        snapshot = adapter.fetch_order(platform_order_id)
    except PlatformError:
        return None
    return snapshot if snapshot.target_status in (OS.CLOSED, OS.REFUNDED) else None


def _record(job: _Job, now: datetime, *, outcome: str, payload: Any = None) -> str:
    with transaction.atomic():
        order = order_lock(job.order_id)
        v = lock_one(Verification.objects.select_related("applicant", "applicant__buyer"), pk=job.verification_id)
        if v.work_state != WorkState.BUSY or v.work_attempts != job.attempts:
            return "superseded"  # our lease ran out and another worker took the row over
        if job.kind == "close":
            v = _record_close(v, order, outcome, payload, now)
        else:
            order = _record_check(v, order, outcome, payload, now, at_expiry=job.at_expiry)
        schedule(v, Order.objects.get(pk=order.pk), now=now, finishing=True)
        v.save()
        return v.status if job.kind == "check" else f"close:{v.closure or 'none'}"


def _record_close(v: Verification, order: Order, outcome: str, payload: Any, now: datetime) -> Verification:
    from notifications.services import notify

    why = WHY.get(v.status, "实名认证未完成")
    if outcome in ("closed", "already"):
        data = {"verification": v.pk}
        if outcome == "closed":
            order_close(order=order, actor=OrderActor.SYSTEM, data=data, message=f"{why}，已在平台关闭订单")
        else:
            snap = payload
            event_at = max(filter(None, [snap.updated_at, order.platform_event_at, now]))
            order_sync(shop=order.shop, snapshot=snap, event_at=event_at, actor=OrderActor.PLATFORM, source="kyc")
        v = refetch(v)  # the on_closed hook has written this row meanwhile
        v.closure, v.last_error, v.needs_staff, v.staff_reason = Closure.DONE, "", False, ""
        log_event.note_event(v, message="订单已在平台关闭" if outcome == "closed" else "核对平台：订单已关闭")
        return v
    exc: PlatformError = payload
    v.last_error = f"关闭订单失败：{exc}"[:4000]
    if exc.retryable and not isinstance(exc, ConfigurationError) and v.close_attempts < CLOSE_MAX_ATTEMPTS:
        v.due_at = now + backoff(v.close_attempts, base=timedelta(minutes=5))
        log_event.note_event(v, message=f"{v.last_error}；{local_time(v.due_at)} 重试")
        return v
    v.closure, v.needs_staff = Closure.STAFF, True
    v.staff_reason = "平台未能自动关闭订单，请在平台后台关闭，然后标记为已关闭"
    log_event.note_event(v, message=f"{v.last_error}；已转人工关闭")
    order_note(order=order, actor=OrderActor.SYSTEM, data={"verification": v.pk},
               message=f"{why}，平台未能自动关闭订单（{exc}），等待员工在平台关闭")
    notify("kyc.close_needed", shop=order.shop, order=order.platform_order_id, why=why, error=str(exc)[:300])
    return v


def _record_check(v: Verification, order: Order, outcome: str, payload: Any, now: datetime, *,
                  at_expiry: bool) -> Order:
    if v.status not in OPEN:
        return order  # a webhook decided meanwhile
    if outcome == "error":
        v.last_error = f"查询 Sumsub 状态失败：{payload}"[:4000]
        v.next_check_at = now + check_interval()
        log_event.note_event(v, message=v.last_error)
        return order
    status: dict = payload
    v.checked_at, v.last_error = now, ""
    review_status = str(status.get("reviewStatus") or "")[:32]
    level = str(status.get("levelName") or "")
    review = Review.from_result(status.get("reviewResult") or {}, review_status or "completed")
    data = {"reviewStatus": review_status, "levelName": level}
    if level and level != v.level_name:
        log_event.sumsub_event(v, kind="status", data=data,
                               message=f"Sumsub 状态查询：申请人当前级别 {level} 与本次认证级别不同，不采用")
    elif review_status == "completed" and review is not None:
        log_event.sumsub_event(v, kind="status", data=data, message="Sumsub 状态查询得到审核结果（回调未收到）")
        order = decide(v, order, review, actor=Actor.SUMSUB, now=now)
    else:
        v.review_status = review_status
        if review_status in SUBMITTED_STATUSES and v.status != V.PENDING:
            before = v.status
            v.submit()
            log_event.transition_event(v, before, actor=Actor.SUMSUB, message="Sumsub 状态查询：资料已提交，审核中")
        else:
            log_event.sumsub_event(v, kind="status", data=data, message=f"Sumsub 状态查询：{review_status or '无结果'}")
    if v.status in OPEN:
        v.next_check_at = now + check_interval()
        if at_expiry:
            _expire(v, order, now)
    return order


# --- messages to the buyer through the platform ---------------------------------------------------------------


def buyer_message_send(*, message_id: int, now: datetime | None = None) -> str:
    """Send one message through the platform's chat: lock, mark, commit, call, record. Never sent twice
    blindly: an attempt whose outcome is unknown (or whose worker died) is left `unknown` for staff."""
    now = now or timezone.now()
    with transaction.atomic():
        claim = MESSAGE_WORK.lock(message_id, now=now, queryset=BuyerMessage.objects.select_related(
            "verification", "verification__order", "verification__order__shop"))
        if claim is None:
            return BuyerMessage.objects.filter(pk=message_id).values_list("status", flat=True).first() or "missing"
        m = claim.row
        if claim.reclaimed:
            _finish(m, M.UNKNOWN, "发送中断，结果未知：不会自动重发，请在平台核对")
            return M.UNKNOWN
        if m.verification.status not in OPEN:
            _finish(m, M.FAILED, f"认证已{status_text(m.verification)}，不再发送")
            return M.FAILED
        MESSAGE_WORK.mark(m, now=now)
    order = m.verification.order
    adapter = get_adapter(order.shop)
    if not getattr(adapter, "can_message_buyer", False):
        return _record_message(m, M.FAILED, "平台不支持给买家发消息")
    try:
        adapter.message_buyer(order.platform_order_id, m.text)
    except PlatformError as exc:
        if exc.outcome_unknown:
            return _record_message(m, M.UNKNOWN, f"结果未知，不会自动重发：{exc}")
        if exc.retryable and m.attempts < MESSAGE_MAX_ATTEMPTS:
            return _record_message(m, M.RETRY_WAIT, str(exc), due_at=timezone.now() + backoff(m.attempts))
        return _record_message(m, M.FAILED, str(exc))
    except Exception as exc:
        log.exception("buyer message %s crashed", m.pk)
        return _record_message(m, M.UNKNOWN, f"{exc.__class__.__name__}: {exc}")
    return _record_message(m, M.SENT, "", sent_at=timezone.now())


def _finish(m: BuyerMessage, status: str, error: str) -> None:
    m.status, m.last_error, m.due_at, m.lease_until = status, error[:4000], None, None
    m.save(update_fields=["status", "last_error", "due_at", "lease_until", "updated_at"])


def _record_message(m: BuyerMessage, status: str, error: str, **fields) -> str:
    fields.setdefault("due_at", None)
    if not MESSAGE_WORK.record(m, status=status, last_error=error[:4000], **fields):
        log.warning("buyer message %s changed while sending; %s not recorded", m.pk, status)
    return status


# --- the sweeper ---------------------------------------------------------------------------------------------


def kyc_sweep(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Every minute (beat): nudge stored webhooks whose processing is due, verifications whose work is due
    (or whose worker died), and buyer messages due to go out."""
    from . import tasks

    events = due_events(SumsubInboxEvent, now=now, limit=limit)
    for pk in events:
        nudge(tasks.process_sumsub_event, pk)
    return {
        "events": len(events),
        "verifications": VERIFICATION_WORK.sweep(tasks.verification_tick, now=now, limit=limit),
        "messages": MESSAGE_WORK.sweep(tasks.send_buyer_message, now=now, limit=limit),
    }
