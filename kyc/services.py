"""Every write and business rule of KYC (DESIGN.md §3): the policy and the paid gate, reaching the buyer,
applying Sumsub's results to a verification and its order, and cancelling with the order. Staff actions are
in kyc.staff, the due work (reminders, expiry, status checks, closing on the platform) in kyc.work.

Locks: always the order first, then its verification (common.locks); outcomes move the order through
`orders.services` (release, close) inside the same transaction. Calls to Sumsub or a platform never happen
inside a transaction: they live in `kyc.work` (due work) and the verify page's views.

Outcomes: GREEN releases the order to ready_to_ship (shipping takes over); RED + RETRY keeps the link valid
and tells the buyer what to fix; RED + FINAL notifies staff and marks the order to be closed on the platform
(`closure = due`, done by `kyc.work`); the link's lifetime ends in expiry and the policy's action.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.i18n import content_language
from common.inbox import nudge
from common.locks import lock_one, lock_rows
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import order_lock, order_note, order_release

from . import events as log_event
from .clients import sumsub_configured
from .models import (
    ACTIONABLE,
    OPEN,
    BuyerMessage,
    Closure,
    KycApplicant,
    KycPolicy,
    Verification,
    VerificationEvent,
    VerificationStatus,
    WorkState,
)

log = logging.getLogger(__name__)
V = VerificationStatus
OS = OrderStatus
Actor = VerificationEvent.Actor
OrderActor = OrderEvent.Actor
DEV_WEBHOOK_SECRET = "xianyu-ops-dev-sumsub-webhook-secret"

# Buyer-visible wording of Sumsub's most common reject labels.
LABELS_ZH = {
    "UNSATISFACTORY_PHOTOS": "照片不清晰或不完整", "SCREENSHOTS": "不接受截图，请上传原始照片",
    "DOCUMENT_PAGE_MISSING": "证件页面缺失", "DOCUMENT_DAMAGED": "证件破损", "BLACK_AND_WHITE": "不接受黑白照片",
    "EXPIRATION_DATE": "证件已过期", "ID_INVALID": "证件无效", "BAD_SELFIE": "自拍照不符合要求",
    "BAD_FACE_MATCHING": "自拍与证件照片不一致", "SELFIE_MISMATCH": "自拍与证件照片不一致",
    "BAD_VIDEO_SELFIE": "视频自拍不符合要求", "FRAUDULENT_LIVENESS": "活体检测未通过",
    "FORGERY": "证件疑似伪造", "GRAPHIC_EDITOR": "照片经过编辑", "DIGITAL_DOCUMENT": "不接受电子证件",
    "INCOMPLETE_DOCUMENT": "证件信息不完整", "WRONG_USER_REGION": "所在地区不支持", "AGE_REQUIREMENT_MISMATCH":
    "年龄不符合要求", "DUPLICATE": "重复认证", "REGULATIONS_VIOLATIONS": "不符合相关规定",
}


class KycError(Exception):
    """A request the verification's or order's state does not allow (shown as is)."""


# --- configuration --------------------------------------------------------------------------------------


def sandbox_active() -> bool:
    """The local sandbox stands in for Sumsub: no credentials, and KYC_SANDBOX allows it."""
    return not sumsub_configured() and bool(settings.KYC_SANDBOX)


def webhook_secret() -> str:
    """The secret Sumsub's webhooks are signed with; in sandbox mode a fixed development default."""
    return settings.SUMSUB_WEBHOOK_SECRET or (DEV_WEBHOOK_SECRET if sandbox_active() else "")


def check_interval() -> timedelta:
    return timedelta(minutes=max(1, settings.KYC_STATUS_CHECK_MINUTES))


@dataclass(frozen=True)
class Policy:
    level_name: str
    validity: timedelta
    link_ttl: timedelta
    expiry_action: str


def policy_for(product) -> Policy | None:
    """The effective policy of a product, or None when it does not need KYC."""
    if product is None or not product.needs_kyc:
        return None
    row = KycPolicy.objects.filter(product=product).first()
    return Policy(
        level_name=(row.level_name if row and row.level_name else settings.SUMSUB_LEVEL_NAME),
        validity=timedelta(days=row.validity_days if row and row.validity_days is not None
                           else settings.KYC_VALIDITY_DAYS),
        link_ttl=timedelta(hours=max(1, row.link_ttl_hours if row and row.link_ttl_hours
                                     else settings.KYC_LINK_TTL_HOURS)),
        expiry_action=(row.expiry_action if row and row.expiry_action else settings.KYC_EXPIRY_ACTION),
    )


def labels_text(labels) -> str:
    words = []
    for label in labels or []:
        text = LABELS_ZH.get(str(label), "")
        if text and text not in words:
            words.append(text)
    return "；".join(words)


def local_time(dt: datetime) -> str:
    return timezone.localtime(dt).strftime("%Y-%m-%d %H:%M")


def status_text(obj) -> str:
    """An order's or a verification's status label for a log row or a message: in LANGUAGE_CODE like the text
    around it, even when a staff action in another language caused it."""
    with content_language():
        return obj.get_status_display()


# --- the paid gate ---------------------------------------------------------------------------------------


def approval_for(*, buyer, level_name: str, validity: timedelta, now: datetime | None = None) -> Verification | None:
    """The buyer's latest approval at this level that is still valid."""
    if buyer is None:
        return None
    now = now or timezone.now()
    return (Verification.objects.filter(applicant__buyer=buyer, level_name=level_name, status=V.APPROVED,
                                        decided_at__gte=now - validity).order_by("-decided_at").first())


def applicant_for(buyer) -> KycApplicant:
    """The buyer's one applicant (created on first need); an order without a buyer gets one of its own."""
    if buyer is None:
        return KycApplicant.objects.create()
    existing = KycApplicant.objects.filter(buyer=buyer).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            return KycApplicant.objects.create(buyer=buyer)
    except IntegrityError:  # another order of the same buyer created it meanwhile
        return KycApplicant.objects.get(buyer=buyer)


def kyc_paid_gate(order: Order) -> str | None:
    """orders.hooks paid gate: hold the order for KYC (creating its verification and sending the link), or
    let it through when the product needs none or the buyer holds a valid approval at its level."""
    policy = policy_for(order.product)
    if policy is None:
        return None
    now = timezone.now()
    approved = approval_for(buyer=order.buyer, level_name=policy.level_name, validity=policy.validity, now=now)
    if approved is not None:
        order_note(order=order, actor=OrderActor.SYSTEM, data={"verification": approved.pk},
                   message=f"买家已于 {local_time(approved.decided_at)} 通过实名认证（{policy.level_name}），"
                           "仍在有效期内，无需再次认证")
        return None
    existing = Verification.objects.filter(order=order, status__in=OPEN).first()
    if existing is None:
        verification_create(order=order, policy=policy, now=now)
    return f"需要买家完成实名认证（{policy.level_name}）"


def verification_create(*, order: Order, policy: Policy, now: datetime | None = None, user=None) -> Verification:
    """A new verification with a fresh link for the order, sent to the buyer. In the order's transaction."""
    now = now or timezone.now()
    v = Verification(order=order, applicant=applicant_for(order.buyer), level_name=policy.level_name,
                     expires_at=now + policy.link_ttl, remind_at=now + policy.link_ttl / 2,
                     expiry_action=policy.expiry_action)
    v.save()
    log_event.created_event(v, policy_note=f"级别 {policy.level_name}，链接有效期至 {local_time(v.expires_at)}")
    channels = reach_buyer(v, order, kind=BuyerMessage.Kind.LINK)
    v.send_link()
    log_event.link_event(v, channels=channels, actor=Actor.STAFF if user else Actor.SYSTEM, user=user)
    schedule(v, order)
    v.save()
    return v


# --- reaching the buyer ----------------------------------------------------------------------------------


def can_message_buyer(shop) -> bool:
    from orders.adapters import get_adapter

    try:
        return bool(getattr(get_adapter(shop), "can_message_buyer", False))
    except ValueError:
        return False


def buyer_text(kind: str, v: Verification, order: Order, reason: str = "") -> str:
    """What the buyer reads in the platform's chat (Chinese, plain text)."""
    expires, url = local_time(v.expires_at), v.url
    if kind == BuyerMessage.Kind.RETRY:
        reason = reason or "请按页面提示补充资料"
        return f"您好，您的实名认证需要重新提交：{reason}。请在 {expires} 前重新打开链接完成认证：{url}"
    if kind == BuyerMessage.Kind.REMINDER:
        return f"提醒：您购买的商品需要完成实名认证后才能发货，认证链接将于 {expires} 过期，请尽快完成：{url}"
    item = order.item_title or order.item_id or "商品"
    return f"您好！您购买的「{item}」需要先完成实名认证才能发货。请在 {expires} 前打开以下链接完成认证：{url}"


def reach_buyer(v: Verification, order: Order, *, kind: str, reason: str = "") -> list[str]:
    """Tell the buyer (link, retry, reminder) on every channel we have: a buyer notification per contact
    (SMS / e-mail subscriptions) and the platform's chat where its adapter can message buyers. Writes rows
    only (notifications and BuyerMessage start on commit). Returns the channels used."""
    from notifications.services import notify

    event = {BuyerMessage.Kind.LINK: "kyc.link_ready", BuyerMessage.Kind.RETRY: "kyc.retry_requested",
             BuyerMessage.Kind.REMINDER: "kyc.reminder"}[kind]
    context = {"order": order.platform_order_id, "url": v.url, "expires": local_time(v.expires_at)}
    if kind == BuyerMessage.Kind.RETRY:
        context["reason"] = reason or "请按页面提示补充资料"
    used = []
    buyer = order.buyer
    for label, contact in (("短信", buyer.phone if buyer else ""), ("邮件", buyer.email if buyer else "")):
        if contact:
            notify(event, shop=order.shop, recipient=contact, **context)
            used.append(label)
    if can_message_buyer(order.shop):
        message = BuyerMessage.objects.create(verification=v, kind=kind, text=buyer_text(kind, v, order, reason),
                                              due_at=timezone.now())
        transaction.on_commit(lambda: nudge(_task("send_buyer_message"), message.pk))
        used.append("平台消息")
    return used


def _task(name: str):
    from . import tasks

    return getattr(tasks, name)


# --- due work scheduling ---------------------------------------------------------------------------------


def next_due(v: Verification, order: Order, now: datetime) -> datetime | None:
    """When the verification next needs work (kyc.work.verification_tick), or None."""
    if v.closure == Closure.DUE:
        return v.due_at if v.due_at and v.work_state != WorkState.IDLE else now
    if order.status == OS.REFUNDING and (v.status in OPEN or v.status == V.APPROVED):
        return now + check_interval()  # the refund may end and bring the order back to awaiting_kyc
    if v.status == V.APPROVED:
        return now if order.status == OS.AWAITING_KYC else None
    if v.status not in OPEN:
        return None
    if v.expires_at <= now and v.next_check_at and v.next_check_at > now:
        return v.next_check_at  # expiry waits for the status query that failed to be answered
    due = [v.expires_at]
    if v.remind_at and not v.reminded_at and v.status in ACTIONABLE:
        due.append(v.remind_at)
    if v.next_check_at:
        due.append(v.next_check_at)
    return min(due)


def schedule(v: Verification, order: Order, *, now: datetime | None = None, finishing: bool = False) -> None:
    """Set the verification's due work from its state (caller saves). A row a worker holds is left to that
    worker (`finishing` is the worker recording its own attempt)."""
    if v.work_state == WorkState.BUSY and not finishing:
        return
    now = now or timezone.now()
    due = next_due(v, order, now)
    v.work_state = WorkState.WAITING if due else WorkState.IDLE
    v.due_at = due
    v.lease_until = None
    if due is not None and due <= now:
        pk = v.pk
        transaction.on_commit(lambda: nudge(_task("verification_tick"), pk))


def lock_pair(verification_id: int) -> tuple[Order, Verification]:
    """Lock the verification's order, then the verification (the project's lock order)."""
    order_id = Verification.objects.filter(pk=verification_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise Verification.DoesNotExist(f"verification {verification_id} does not exist")
    order = order_lock(order_id)
    v = lock_one(Verification.objects.select_related("applicant", "applicant__buyer"), pk=verification_id)
    return order, v


# --- applying results ------------------------------------------------------------------------------------


@dataclass
class Review:
    """A review result, from a webhook, a status query or staff."""

    answer: str                        # GREEN | RED
    reject_type: str = ""              # FINAL | RETRY (RED only)
    labels: list[str] = field(default_factory=list)
    moderation_comment: str = ""       # may be shown to the buyer
    client_comment: str = ""           # internal
    review_status: str = "completed"

    @classmethod
    def from_result(cls, result: dict, review_status: str = "completed") -> Review | None:
        if not isinstance(result, dict):
            return None
        answer = str(result.get("reviewAnswer") or "").upper()
        if answer not in ("GREEN", "RED"):
            return None
        labels = result.get("rejectLabels") or []
        return cls(answer=answer, reject_type=str(result.get("reviewRejectType") or "").upper()[:8],
                   labels=[str(x)[:64] for x in labels if isinstance(x, str | int)][:20] if isinstance(labels, list)
                   else [],
                   moderation_comment=str(result.get("moderationComment") or "")[:2000],
                   client_comment=str(result.get("clientComment") or "")[:2000], review_status=review_status)

    @property
    def final(self) -> bool:
        # A RED without a type is not treated as final: the buyer may retry, staff can still reject.
        return self.answer == "RED" and self.reject_type == "FINAL"


def buyer_reason(v: Verification) -> str:
    return v.moderation_comment or labels_text(v.reject_labels) or "请按页面提示补充资料"


def decide(v: Verification, order: Order, review: Review, *, actor: str, user=None, message: str = "",
           now: datetime | None = None) -> Order:
    """Apply a review to a locked verification and its locked order. Returns the order as it now stands;
    the caller schedules and saves `v`. Releasing the order runs only the shipping hooks, which leave the
    verification alone (closing is kyc.work's, after a platform call)."""
    now = now or timezone.now()
    before = v.status
    v.review_answer, v.review_status = review.answer, review.review_status[:32]
    v.reject_type = review.reject_type if review.answer == "RED" else ""
    v.reject_labels = review.labels if review.answer == "RED" else []
    v.moderation_comment = review.moderation_comment
    v.client_comment = review.client_comment
    v.next_check_at = None
    if review.answer == "GREEN":
        v.approve()
        v.decided_at = now
        v.closure, v.needs_staff, v.staff_reason = Closure.NONE, False, ""
        log_event.transition_event(v, before, actor=actor, user=user, message=message or "审核通过")
        if order.status == OS.AWAITING_KYC:
            v.save()
            order = order_release(order=order, actor=OrderActor.STAFF if user else OrderActor.SYSTEM, user=user,
                                  message=message or "实名认证通过，进入待发货")
        return order
    if review.final:
        v.reject()
        v.decided_at = now
        v.closure, v.needs_staff, v.staff_reason = Closure.DUE, False, ""
        v.due_at = now
        log_event.transition_event(v, before, actor=actor, user=user,
                                   message=message or f"审核拒绝（最终）：{buyer_reason(v)}")
        from notifications.services import notify

        notify("kyc.rejected", shop=order.shop, order=order.platform_order_id, final=True,
               reason=(v.client_comment or buyer_reason(v))[:300])
        return order
    v.request_retry()
    v.needs_staff, v.staff_reason = False, ""
    log_event.transition_event(v, before, actor=actor, user=user,
                               message=message or f"需要重新提交：{buyer_reason(v)}")
    channels = reach_buyer(v, order, kind=BuyerMessage.Kind.RETRY, reason=buyer_reason(v))
    log_event.note_event(v, message=f"已通知买家重新提交：{'、'.join(channels) or '无可用渠道'}")
    return order


def refetch(v: Verification) -> Verification:
    """The verification as the database holds it now (its FSM field is protected: no refresh_from_db)."""
    return Verification.objects.select_related("applicant", "applicant__buyer").get(pk=v.pk)


SUBMITTED_STATUSES = {"pending", "queued", "prechecked", "onHold", "awaitingService"}


def verification_apply(*, verification_id: int, kind: str, event_at: datetime | None, review: Review | None = None,
                       review_status: str = "", data: dict | None = None) -> str:
    """Apply one Sumsub event ("pending", "reviewed", "on_hold", "reset", "note") to one verification, under
    the order and verification locks. An event older than the last one applied is recorded and ignored.
    Returns what happened ("applied", "stale", "final", "ignored")."""
    now = timezone.now()
    with transaction.atomic():
        order, v = lock_pair(verification_id)
        data = data or {}
        if event_at and v.last_event_at and event_at < v.last_event_at:
            log_event.sumsub_event(v, kind="stale", data=data,
                                   message=f"忽略过期的 Sumsub 事件（{kind}，事件时间早于已应用的事件）")
            return "stale"
        if v.status not in OPEN:
            log_event.sumsub_event(v, kind="late", data=data, message=f"认证已结束（{status_text(v)}），"
                                                                         f"忽略 Sumsub 事件 {kind}")
            return "final"
        if event_at:
            v.last_event_at = max(filter(None, [v.last_event_at, event_at]))
        if review_status:
            v.review_status = review_status[:32]
        outcome = "applied"
        if kind == "reviewed" and review is not None:
            order = decide(v, order, review, actor=Actor.SUMSUB, now=now)
        elif kind == "pending":
            if v.status != V.PENDING:
                before = v.status
                v.submit()
                log_event.transition_event(v, before, actor=Actor.SUMSUB, message="买家已提交资料，等待审核", data=data)
            v.next_check_at = now + check_interval()
        else:
            log_event.sumsub_event(v, kind=kind, data=data, message=f"Sumsub 事件：{kind}")
            outcome = "ignored"
        schedule(v, order, now=now)
        v.save()
        return outcome


# --- the order closed or refunded meanwhile (orders.hooks.on_closed) ------------------------------------


def kyc_order_closed(order: Order) -> None:
    """on_closed: an order left its paid states (closed, refunding, refunded). Closed or refunded: open
    verifications are cancelled and a pending close is done. Refunding: nothing yet (the refund may end);
    the due work looks again later."""
    rows = lock_rows(Verification.objects.filter(order=order).exclude(status__in=[V.CANCELLED]).filter(
        _open_or_closing()))
    for v in rows:
        if order.status == OS.REFUNDING:
            log_event.note_event(v, message="订单退款中：暂停认证处理，退款结束后再继续")
        else:
            if v.status in OPEN:
                before = v.status
                v.cancel()
                log_event.transition_event(v, before, actor=Actor.SYSTEM,
                                           message=f"订单已{status_text(order)}，认证取消")
            if v.closure in (Closure.DUE, Closure.STAFF):
                v.closure = Closure.DONE
                log_event.note_event(v, message=f"订单已{status_text(order)}")
            v.needs_staff, v.staff_reason = False, ""
        schedule(v, order)
        v.save()


def _open_or_closing():
    from django.db.models import Q

    return (Q(status__in=OPEN) | Q(closure__in=[Closure.DUE, Closure.STAFF])
            | Q(status=V.APPROVED, work_state=WorkState.WAITING))
