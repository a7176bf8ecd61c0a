"""Handing a shipment's content to the buyer: the ways, and how each is reconciled (platform facts and what
is confirmed or assumed about them: docs/platforms.md).

`plan_way()` picks the way for a product on its platform and `buyer_contact()` the buyer's address; both
run at mark time under the shipment's lock (shipping.services). Each way then runs outside any transaction
(it calls a platform) and returns an `Outcome`, which shipping.services records under lock as a `Handover`.

- Platform message (TOP `alibaba.idle.order.msg.send`; the sandbox records it): the rendered content itself.
  No API reads a sent message back, so a send whose outcome is unknown is sent again — the same text to the
  same order's buyer, never to anyone else — at most SHIP_MAX_ATTEMPTS times.
- 闲管家 card pool: (1) add the order's codes to the product's 卡种, recorded at once as `pool_uploaded_at`
  (repeating it after an unknown outcome relies on is_repeat=0 skipping codes already in the 卡种);
  (2) `dummy/send` send_way 2: 闲管家 sends the codes in its 卡密 message and marks the order shipped;
  (3) `kam/list`: which codes the buyer got — the proof. An unknown or refused (2) is reconciled by (3) and
  then by the order's status: shipped without codes means a 发货申明 holds them until the buyer confirms
  (`held`: looked at again later, never sent again).
- Contact: a `shipment.delivered` notification (the delivery-page link, never the codes) to the buyer's
  phone by SMS or to their e-mail, written once together with its pending Handover; every later attempt only
  reads how its deliveries ended. An SMS whose outcome is unknown is never sent again (staff check the SMS
  console).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from common.http import ConfigurationError, PlatformError
from common.locks import lock_one
from orders.models import OrderStatus, Product
from orders.services import order_lock

from .models import Handover, Shipment, ShipmentStatus

log = logging.getLogger(__name__)
Way = Shipment.Way
H = Handover
SHIPPED_TARGETS = {OrderStatus.SHIPPED, OrderStatus.COMPLETED}
CONTACT_EVENT = "shipment.delivered"


@dataclass
class Outcome:
    """What one handover step came to.

    status: delivered | pending (the channel is still sending) | held (the platform holds the codes) |
    retry (try again later) | failed (will not get there by retrying) | unknown (may or may not have got
    there; staff decide) | not_done (nothing happened and this attempt may not call)."""

    status: str
    channel: str
    carried: str
    destination: str = ""
    hint: str = ""
    answer: str = ""
    reason: str = ""
    unknown: bool = False            # the last call may have gone through: reconcile before calling again
    status_sent: bool = False        # the same call marked the order shipped (card pool)
    delivered_codes: list[str] = field(default_factory=list)
    handover_id: int | None = None   # the pending Handover this outcome completes (contact)


@dataclass
class Step:
    """What a handover step needs to know (built at mark time, under the lock)."""

    shipment_id: int
    order_id: int
    sent_at: object
    attempt: int
    order_no: str
    may_call: bool
    reconcile: bool
    way: str
    content: str
    codes: list[str]
    kind_id: str = ""
    pool_uploaded: bool = False
    contact: tuple[str, str] | None = None     # (sms | email, address)
    pending_handover: int | None = None
    notify_context: dict = field(default_factory=dict)


# --- planning (at mark time, under the shipment's lock) -------------------------------------------------


def plan_way(product: Product, adapter) -> str:
    """The way this product's content reaches the buyer on this platform. ConfigurationError says why none."""
    if product.delivery_way == Product.DeliveryWay.CONTACT:
        return Way.CONTACT
    if adapter.can_message_buyer:
        return Way.PLATFORM_MESSAGE
    if adapter.can_card_pool:
        if not (product.card_kind_id or "").strip():
            raise ConfigurationError("闲管家没有给买家发消息的接口：请为商品填写卡种 ID（由闲管家卡密发货），"
                                     "或改为发送到买家联系方式")
        if product.staff_confirms_shipping:
            raise ConfigurationError("闲管家卡密发货会同时标记发货，不能由员工另行确认：慢发货请改为发送到买家联系方式")
        return Way.CARD_POOL
    raise ConfigurationError(f"平台 {adapter.platform} 没有可把发货内容交给买家的接口")


def buyer_contact(order, shop) -> tuple[str, str]:
    """(sms | email, address) for the contact way: the order's receiver phone or the buyer's phone by SMS,
    else the buyer's e-mail, each only where a channel is subscribed to `shipment.delivered`."""
    from notifications.services import subscribed_kinds

    buyer = order.buyer if order.buyer_id else None
    phone = str((order.receiver or {}).get("phone") or (buyer.phone if buyer else "") or "").strip()
    email = str(buyer.email if buyer else "").strip()
    if not phone and not email:
        raise ConfigurationError("买家没有可用的手机号或邮箱（闲管家仅在待发货时提供收货手机号）")
    kinds = subscribed_kinds(event=CONTACT_EVENT, shop=shop)
    if phone and "sms" in kinds:
        return "sms", phone
    if email and "email" in kinds:
        return "email", email
    have = "手机号" if phone else "邮箱"
    raise ConfigurationError(f"买家有{have}，但没有启用的渠道订阅「发货提醒（买家）」（{'短信' if phone else '邮件'}）")


# --- the ways (outside any transaction) -------------------------------------------------------------------


def run(step: Step, adapter) -> Outcome:
    way = {Way.PLATFORM_MESSAGE: via_message, Way.CARD_POOL: via_card_pool, Way.CONTACT: via_contact}[step.way]
    try:
        return way(step, adapter)
    except Exception as exc:  # our bug or an unexpected transport error: the call may have gone through
        log.exception("shipment %s: handover %s crashed", step.shipment_id, step.way)
        channel = {Way.PLATFORM_MESSAGE: H.Channel.PLATFORM_MESSAGE, Way.CARD_POOL: H.Channel.CARD_POOL}.get(
            step.way, step.contact[0] if step.contact else H.Channel.SMS)
        return Outcome("retry", channel, H.Carried.CONTENT, reason=f"{exc.__class__.__name__}: {exc}", unknown=True,
                       handover_id=step.pending_handover)


def _from_error(exc: PlatformError, **base) -> Outcome:
    if isinstance(exc, ConfigurationError):
        return Outcome("failed", reason=str(exc), **base)
    if exc.outcome_unknown or exc.retryable:
        return Outcome("retry", reason=str(exc), unknown=exc.outcome_unknown, **base)
    return Outcome("failed", reason=f"平台拒绝：{exc}", **base)


def via_message(step: Step, adapter) -> Outcome:
    sandbox = adapter.platform == "sandbox"
    base = {"channel": H.Channel.SANDBOX if sandbox else H.Channel.PLATFORM_MESSAGE, "carried": H.Carried.CONTENT,
            "destination": f"order {step.order_no}", "hint": f"订单 {step.order_no} 的买家（平台消息）"}
    if not step.may_call:
        return Outcome("unknown", **base,
                       reason="平台消息的发送结果未知，且平台没有查询已发消息的接口：请在闲鱼核对买家是否收到")
    try:
        result = adapter.message_buyer(step.order_no, step.content)
    except PlatformError as exc:
        return _from_error(exc, **base)
    return Outcome("delivered", answer=result.message, **base)


def via_card_pool(step: Step, adapter) -> Outcome:
    base = {"channel": H.Channel.CARD_POOL, "carried": H.Carried.CONTENT, "destination": f"kind {step.kind_id}",
            "hint": f"闲管家卡种 {step.kind_id}"}
    if step.reconcile and step.pool_uploaded:
        try:
            proof = _pool_proof(step, adapter, base)
        except PlatformError as exc:
            return Outcome("retry", reason=f"核对闲管家卡密失败：{exc}", unknown=True, **base)
        if proof is not None:
            return proof
    if not step.may_call:
        return Outcome("not_done", reason="闲管家未发出卡密", **base)
    if not step.pool_uploaded:
        try:
            adapter.card_pool_add(kind_id=step.kind_id, codes=step.codes)
        except PlatformError as exc:
            return _from_error(exc, **base)
        if not step_done(step, pool_uploaded_at=timezone.now()):
            return Outcome("not_done", reason="发货单已被其他进程接管", **base)
    try:
        adapter.card_pool_send(step.order_no)
    except PlatformError as exc:
        if not isinstance(exc, ConfigurationError) and (exc.outcome_unknown or not exc.retryable):
            try:  # it may have gone through (unknown), or been done before (refused): look at the proof
                proof = _pool_proof(step, adapter, base)
            except PlatformError:
                proof = None
            if proof is not None:
                return proof
        return _from_error(exc, **base)
    try:
        proof = _pool_proof(step, adapter, base)
    except PlatformError as exc:
        return Outcome("retry", reason=f"闲管家已受理发货，核对卡密失败：{exc}", unknown=True, status_sent=True, **base)
    return proof or Outcome("retry", reason="闲管家受理了发货，但订单未显示已发货", unknown=True, status_sent=True,
                            **base)


def _pool_proof(step: Step, adapter, base: dict) -> Outcome | None:
    """delivered (kam/list lists codes), held (shipped without codes), or None (nothing happened yet)."""
    codes = adapter.card_pool_delivered(step.order_no)
    if codes:
        return Outcome("delivered", answer=f"kam/list: {len(codes)} card(s)", status_sent=True, delivered_codes=codes,
                       **base)
    if adapter.fetch_order(step.order_no).target_status in SHIPPED_TARGETS:
        return Outcome("held", reason="闲管家已标记发货，但卡密尚未发出（商品的发货申明等待买家确认）", unknown=True,
                       status_sent=True, answer="kam/list: 0 cards, order shipped", **base)
    return None


def via_contact(step: Step, adapter) -> Outcome:
    from notifications.services import notification_deliver_now

    if step.contact is None:  # nothing was sent, and this attempt may not send
        return Outcome("not_done", H.Channel.SMS, H.Carried.LINK, reason="未发送提货链接")
    kind, address = step.contact
    base = {"channel": H.Channel.SMS if kind == "sms" else H.Channel.EMAIL, "carried": H.Carried.LINK,
            "destination": address, "hint": "买家手机号（短信）" if kind == "sms" else "买家邮箱"}
    handover_id = step.pending_handover
    if handover_id is None:
        handover_id = begin_contact(step, base)
        if handover_id is None:
            return Outcome("not_done", reason="发货单已被其他进程接管", **base)
    notification_id = Handover.objects.filter(pk=handover_id).values_list("notification_id", flat=True).first()
    reports = notification_deliver_now(notification_id=notification_id) if notification_id else []
    base["handover_id"] = handover_id
    label = "短信" if kind == "sms" else "邮件"
    for r in reports:
        if r["status"] == "sent":
            return Outcome("delivered", answer=f"{kind}: sent {r['external_id']}".strip(), **base)
    if any(r["status"] in ("pending", "retry_wait", "sending") for r in reports):
        return Outcome("pending", reason=f"{label}正在发送", **base)
    unknown = [r for r in reports if r["status"] == "unknown"]
    if unknown:
        return Outcome("unknown", **base,
                       reason=f"{label}发送结果未知，不会重发：请在控制台核对（{unknown[0]['error'][:200]}）")
    if not reports:
        return Outcome("failed", reason=f"没有可用的{label}渠道", **base)
    return Outcome("failed", reason=f"{label}发送失败：{reports[0]['error'][:300]}", **base)


def begin_contact(step: Step, base: dict) -> int | None:
    """Write the buyer notification and its pending Handover in one transaction, fenced on this attempt
    (None when the shipment moved on): it exists once, and a later attempt only reads its outcome."""
    from notifications.services import notify

    with transaction.atomic():
        order = order_lock(step.order_id)
        s = lock_one(Shipment.objects.all(), pk=step.shipment_id)
        if s.status != ShipmentStatus.SENDING or s.sent_at != step.sent_at:
            return None
        kind, address = step.contact
        notification = notify(CONTACT_EVENT, shop=order.shop, recipient=address, only_kinds=(kind,),
                              **step.notify_context)
        h = Handover.objects.create(shipment=s, attempt=step.attempt, channel=base["channel"],
                                    carried=base["carried"], destination=address, destination_hint=base["hint"],
                                    notification=notification)
        return h.pk


def step_done(step: Step, **fields) -> bool:
    """Record a finished sub-step on the shipment at once, fenced on this attempt (False: it moved on)."""
    return Shipment.objects.filter(pk=step.shipment_id, status=ShipmentStatus.SENDING,
                                   sent_at=step.sent_at).update(**fields, updated_at=timezone.now()) == 1
