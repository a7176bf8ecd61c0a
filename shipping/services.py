"""Every write and business rule for shipping (DESIGN.md §3, §4).

Scheduling: `shipment_schedule` (the `on_ready_to_ship` hook) creates the order's Shipment, due after a
random delay in the product's window ("look like a person", seed 004), takes the stock and reserves the
card codes at once (so a sale is never promised twice), or puts it in the staff's queue.

Exactly once: `shipment_dispatch` (one shipment) and `shipment_dispatch_due` (a batch: the ship_shipment
task) lock the order, then the shipment (`skip_locked`), check state and due time, mark the attempt
(`sending`, attempts + 1, a lease until `lease_until`) and commit; only then call the platform, one shipment
at a time; then record each result under lock. A virtual shipment goes in steps, each recorded on the
row as soon as it is done, so a retry resumes at the first unfinished one: (1) the content reaches the buyer
(shipping.handover: platform message, 闲管家 card pool, or the link by SMS/e-mail — `content_handed_at`, a
`Handover` row as proof; codes become `delivered`), (2) the platform order is marked shipped (`ship_virtual`,
`status_sent_at`), unless the product is slow goods (then staff confirm it from the queue). An attempt whose
outcome is unknown (timeout, 5xx, lost answer, a worker killed while `sending`) sets `needs_reconcile` for
the step it was in: the next attempt first reconciles that step (shipping.handover says how for each way;
the status step asks `fetch_order`) and never repeats a call that went through. Content that cannot reach
the buyer is never `shipped`: the shipment fails into the manual queue with the reason and a rate-limited
`shipment.undelivered` alert.

Stock and card codes (one rule for every product):
- A product with limited stock (`stock` >= 0) loses `quantity` units when an order is scheduled
  (StockMovement SOLD) and gets them back if the order is closed before shipping (RELEASE).
- A virtual product "uses codes" when it has a card-code pool or its delivery template mentions `codes`.
  Such an order reserves `quantity` codes (all or nothing). For these products `stock` counts available
  codes: importing codes restocks by the number added (RESTOCK) when stock is limited, voiding an
  available code takes one off (ADJUST). A product left at unlimited stock (-1) is limited by its pool only.
- Not enough stock or codes: the shipment goes to the manual queue and "stock.out" is sent. Crossing the
  low-stock threshold sends "stock.low"; selling the last unit sends "stock.out".
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.due import DueWork
from common.http import ConfigurationError, PlatformError
from common.locks import lock_one, lock_rows
from common.text_templates import TemplateProblem
from orders.adapters import get_adapter
from orders.adapters.base import ShipRequest
from orders.delivery_content import describe as describe_template_problem
from orders.delivery_content import mentions_codes, render_delivery
from orders.models import Order, OrderEvent, OrderStatus, Product, StockMovement
from orders.services import OrderError, OutOfStock, order_lock, order_mark_shipped, order_note, stock_adjust

from . import handover
from .models import CANCELLABLE, MANUAL_QUEUE, CardCode, DeliveryView, Handover, Shipment, ShipmentStatus

log = logging.getLogger(__name__)
St = ShipmentStatus
Actor = OrderEvent.Actor
OS = OrderStatus

# A `sending` row older than this is taken to belong to a worker that died; it must exceed the task's
# hard time limit (CELERY_TASK_TIME_LIMIT) plus the platform HTTP timeouts.
LEASE = timedelta(minutes=5)
# Shipments as due work (common.due): waiting until `due_at`, leased while `sending`.
SHIPMENT_WORK = DueWork(Shipment, waiting=(St.SCHEDULED, St.RETRY_WAIT), busy=St.SENDING, lease=LEASE)
PLATFORM_SHIPPED = {OS.SHIPPED, OS.COMPLETED}
# At most one "content did not reach the buyer" alert per shop in this interval (it counts the others).
UNDELIVERED_ALERT_INTERVAL = timedelta(minutes=10)
_rng = random.SystemRandom()


class ShippingError(Exception):
    """A request the shipment's state does not allow (shown to staff as is)."""


# --- helpers ------------------------------------------------------------------------------------------


def notify_event(event: str, *, shop=None, **context) -> None:
    """Send a notification in the caller's transaction."""
    from notifications.services import notify

    notify(event, shop=shop, **context)


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def random_delay(product: Product | None) -> timedelta:
    """A random delay in [ship_delay_min, ship_delay_max] minutes, seconds granularity (zero allowed)."""
    if product is None:
        return timedelta(0)
    low = max(0, product.ship_delay_min) * 60
    high = max(low, product.ship_delay_max * 60)
    return timedelta(seconds=_rng.randint(low, high))


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode("utf-8")).hexdigest()


def uses_codes(product: Product | None) -> bool:
    if product is None or product.kind != Product.Kind.VIRTUAL:
        return False
    return mentions_codes(product.delivery_template) or product.card_codes.exists()


def manual_reason(product: Product | None) -> str:
    """Why an order of this product cannot ship by itself ('' if it can)."""
    if product is None:
        return "未配置商品规则"
    if not product.auto_ship:
        return "商品未开启自动发货"
    if product.kind == Product.Kind.PHYSICAL:
        return "实物商品需填写真实运单号"
    return ""


def stock_level(product: Product) -> int | None:
    """Units left to sell: limited stock, else the available codes of a code product; None = unlimited."""
    if not product.unlimited:
        return product.stock
    if uses_codes(product):
        return product.card_codes.filter(status=CardCode.Status.AVAILABLE).count()
    return None


def _stock_alerts(product: Product, before: int | None, after: int | None, order: Order) -> None:
    if before is None or after is None:
        return
    ctx = {"product_id": product.pk, "item_id": product.item_id, "title": product.title, "remaining": after,
           "order": order.platform_order_id}
    if after <= 0 < before:
        notify_event("stock.out", shop=product.shop, reason="已售罄", **ctx)
    elif before > product.low_stock_threshold >= after:
        notify_event("stock.low", shop=product.shop, threshold=product.low_stock_threshold, **ctx)


class _Short(Exception):
    pass


def _reserve(shipment: Shipment, order: Order, product: Product, now: datetime) -> str:
    """Take stock and reserve codes for the order, all or nothing (what it still holds from before counts).
    Returns '' or why it could not."""
    qty = max(1, order.quantity) - shipment.stock_taken
    need_codes = uses_codes(product)
    if need_codes:
        kept = 0  # a reopened shipment whose content had left kept its codes (see _release)
        if shipment.delivery_way:
            kept = CardCode.objects.filter(
                order=order, status__in=[CardCode.Status.RESERVED, CardCode.Status.DELIVERED]).count()
        qty = max(1, order.quantity) - kept
    if qty <= 0 or product.unlimited and not need_codes:
        return ""
    before = stock_level(product)
    try:
        with transaction.atomic():
            if need_codes:
                ids = [c.pk for c in lock_rows(CardCode.objects.filter(product=product,
                                                                      status=CardCode.Status.AVAILABLE)
                                               .only("pk"), skip_locked=True, limit=qty)]
                if len(ids) < qty:
                    raise _Short(f"卡密不足：需要 {qty}，可用 {len(ids)}")
                taken = (CardCode.objects.filter(pk__in=ids, status=CardCode.Status.AVAILABLE)
                         .update(status=CardCode.Status.RESERVED, order=order, reserved_at=now))
                if taken != qty:
                    raise _Short("卡密被并发占用，请重试")
            if not product.unlimited:
                try:
                    product = stock_adjust(product=product, change=-qty, reason=StockMovement.Reason.SOLD,
                                           order=order, note=f"订单 {order.platform_order_id}")
                except OutOfStock as exc:
                    raise _Short(str(exc)) from exc
                shipment.stock_taken += qty
    except _Short as exc:
        notify_event("stock.out", shop=product.shop, product_id=product.pk, item_id=product.item_id,
                     title=product.title, order=order.platform_order_id, quantity=qty, reason=str(exc))
        return f"库存不足：{exc}"
    if not product.unlimited:
        product.refresh_from_db(fields=["stock"])
    _stock_alerts(product, before, stock_level(product), order)
    return ""


def content_may_have_left(shipment: Shipment) -> bool:
    """Could the content already be with the buyer or the platform (handed over, sent with an unknown
    outcome, uploaded to the platform's card pool, or an SMS being sent)? Then its codes never go back."""
    if shipment.content_handed_at or shipment.pool_uploaded_at or (shipment.needs_reconcile and shipment.delivery_way):
        return True
    return shipment.pk is not None and Handover.objects.filter(shipment=shipment, status__in=[
        Handover.Status.PENDING, Handover.Status.DELIVERED, Handover.Status.HELD, Handover.Status.UNKNOWN]).exists()


def _release(shipment: Shipment, order: Order, *, note: str) -> tuple[int, int]:
    """Give back what the order held: reserved codes to the pool, taken stock to the product — unless the
    content may already have reached the buyer or the platform (its codes then stay with this order)."""
    if content_may_have_left(shipment):
        return 0, 0
    released = (CardCode.objects.filter(order=order, status=CardCode.Status.RESERVED)
                .update(status=CardCode.Status.AVAILABLE, order=None, reserved_at=None))
    stock = shipment.stock_taken
    if stock and order.product_id:
        stock_adjust(product=order.product, change=stock, reason=StockMovement.Reason.RELEASE, order=order, note=note)
    shipment.stock_taken = 0
    return released, stock


def _to_staff(shipment: Shipment, reason: str, *, notify: bool = True) -> None:
    shipment.to_staff()
    shipment.manual_reason = reason[:255]
    if notify:
        o = shipment.order
        notify_event("shipment.manual_needed", shop=o.shop, order=o.platform_order_id, shipment_id=shipment.pk,
                     item=o.item_title or o.item_id, quantity=o.quantity, reason=shipment.manual_reason)


# --- scheduling and cancellation (order hooks) ----------------------------------------------------------


def shipment_schedule(order: Order, *, now: datetime | None = None) -> Shipment:
    """on_ready_to_ship: create (or reopen) the order's shipment. Runs inside the order's transaction."""
    now = _now(now)
    product = order.product
    shipment = lock_one(Shipment.objects.all(), order=order)
    if shipment is not None and shipment.status != St.CANCELLED:
        return shipment  # already scheduled, in flight, queued or shipped
    if shipment is None:
        shipment = Shipment(order=order, due_at=now)
    else:
        shipment.reopen()
        shipment.attempts, shipment.needs_reconcile, shipment.cancel_requested = 0, False, False
        shipment.last_error = shipment.manual_reason = ""
    shipment.due_at = now + random_delay(product)
    if product is not None:
        shipment.logistics_company = product.logistics_company
        shipment.express_code = product.express_code
    shipment.save()
    reason = manual_reason(product)
    short = _reserve(shipment, order, product, now) if product is not None else ""
    if short:
        reason = short
    if reason:
        _to_staff(shipment, reason)
        shipment.save()
        return shipment
    # No OrderEvent here: the Shipment row is the record of the schedule (the order log stays platform-shaped).
    shipment.save()
    if shipment.due_at <= now:
        from .tasks import ship_shipment

        ship_shipment.delay_on_commit(shipment.pk)
    return shipment


def shipment_cancel(order: Order, *, reason: str = "订单已关闭") -> Shipment | None:
    """on_closed: cancel the order's shipment and release its codes and stock. Runs inside the order's
    transaction. A shipment being sent right now is not cancelled blindly: it is flagged, the attempt
    finishes, and its result decides (not shipped: cancelled and released; shipped: recorded as shipped,
    codes stay delivered, and an order note tells staff the buyer got the goods of a closed order)."""
    shipment = lock_one(Shipment.objects.all(), order=order)
    if shipment is None:
        return None
    if shipment.status == St.SENDING:
        shipment.cancel_requested = True
        shipment.save(update_fields=["cancel_requested", "updated_at"])
        order_note(order=order, actor=Actor.SYSTEM, message="订单关闭时发货正在进行：待本次发货结束后核对",
                   data={"shipment": shipment.pk})
        return shipment
    if shipment.status not in CANCELLABLE:
        return shipment
    _cancel(shipment, order, reason)
    return shipment


def _cancel(shipment: Shipment, order: Order, reason: str) -> None:
    shipment.cancel()
    kept = content_may_have_left(shipment)
    released, stock = _release(shipment, order, note=f"订单 {order.platform_order_id} {reason}")
    shipment.last_error = reason
    shipment.cancel_requested = False
    shipment.save_changed()
    what = ("发货内容可能已送达买家或平台卡密库：卡密与库存不退回" if kept
            else f"释放卡密 {released}，退回库存 {stock}")
    order_note(order=order, actor=Actor.SYSTEM, message=f"发货取消：{reason}；{what}", data={"shipment": shipment.pk})


def shipment_platform_shipped(order: Order) -> Shipment | None:
    """on_shipped: the order is shipped (by us, or on the platform by someone else). A shipment not in
    flight is closed as shipped by the platform; its reserved codes count as delivered (never reused). One
    whose own handover has started and not finished is left to the dispatcher (or to staff)."""
    if getattr(order, "_shipment_in_hand", None) is not None:
        return None  # the order is being shipped by its own shipment's attempt, which holds the row (_finish)
    shipment = lock_one(Shipment.objects.all(), order=order)
    if shipment is None or shipment.status in (St.SHIPPED, St.SENDING, St.CANCELLED):
        return shipment
    if shipment.delivery_way and shipment.content_handed_at is None:
        return shipment  # our handover is under way or with staff: the platform's status delivers nothing
    _finish(shipment, order, method=_platform_method(shipment), user=None, now=timezone.now())
    shipment.save_changed()
    return shipment


# --- card codes --------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    added: int = 0
    duplicates_in_input: int = 0
    duplicates_existing: int = 0
    blank: int = 0

    def __str__(self) -> str:
        return (f"新增 {self.added} 条，输入内重复 {self.duplicates_in_input} 条，"
                f"已存在 {self.duplicates_existing} 条，空行 {self.blank} 条")


def cardcode_import(*, product: Product, lines, user=None) -> ImportReport:
    """Add codes (one a line, stripped) to a product's pool; duplicates are counted, not added. Restocks
    by the number added when the product's stock is limited."""
    report = ImportReport()
    fresh: dict[str, str] = {}
    for raw in lines:
        code = (raw.decode("utf-8-sig") if isinstance(raw, bytes) else str(raw)).strip().lstrip("\ufeff")
        if not code:
            report.blank += 1
            continue
        h = code_hash(code)
        if h in fresh:
            report.duplicates_in_input += 1
            continue
        fresh[h] = code
    with transaction.atomic():
        product = lock_one(Product.objects.all(), pk=product.pk)
        existing = set(CardCode.objects.filter(product=product, code_hash__in=list(fresh))
                       .values_list("code_hash", flat=True))
        report.duplicates_existing = len(existing)
        rows = [CardCode(product=product, code=c, code_hash=h, imported_by=user)
                for h, c in fresh.items() if h not in existing]
        CardCode.objects.bulk_create(rows, batch_size=500)
        report.added = len(rows)
        if rows and not product.unlimited:
            stock_adjust(product=product, change=len(rows), reason=StockMovement.Reason.RESTOCK, user=user,
                         note=f"导入卡密 {len(rows)} 条")
    return report


def cardcode_void(*, codes, user=None) -> int:
    """Withdraw available codes (e.g. found invalid); limited stock loses one unit per code."""
    voided = 0
    with transaction.atomic():
        for code in lock_rows(CardCode.objects.select_related("product").filter(
                pk__in=[c.pk for c in codes], status=CardCode.Status.AVAILABLE)):
            CardCode.objects.filter(pk=code.pk).update(status=CardCode.Status.VOID)
            product = code.product
            if not product.unlimited:
                stock_adjust(product=product, change=-1 if product.stock > 0 else 0,
                             reason=StockMovement.Reason.ADJUST, user=user, note=f"作废卡密 #{code.pk}")
            voided += 1
    return voided


# --- delivery content --------------------------------------------------------------------------------


def _codes_of(order: Order) -> list[str]:
    """The order's codes (reserved or delivered), in reservation order (read for a whole batch at once by
    `shipment_dispatch_due`, under the orders' locks)."""
    prefetched = getattr(order, "_prefetched_codes", None)
    if prefetched is not None:
        return list(prefetched)
    return list(CardCode.objects.filter(order=order, status__in=[CardCode.Status.RESERVED, CardCode.Status.DELIVERED])
                .order_by("pk").values_list("code", flat=True))


def render_content(shipment: Shipment, order: Order, codes: list[str] | None = None) -> str:
    """The product's delivery template (orders.delivery_content: plain values only) as plain text."""
    product = order.product
    try:
        return render_delivery(
            product.delivery_template if product else "", codes=_codes_of(order) if codes is None else codes,
            quantity=max(1, order.quantity), order_no=order.platform_order_id,
            item_title=order.item_title or (product.title if product else "") or order.item_id,
            delivery_url=shipment.delivery_url)
    except TemplateProblem as exc:
        raise ConfigurationError(f"发货模板有误：{describe_template_problem(exc)}") from exc


def delivery_view_log(*, shipment: Shipment, ip: str | None, user_agent: str) -> DeliveryView:
    return DeliveryView.objects.create(shipment=shipment, ip=ip or None, user_agent=(user_agent or "")[:255])


# --- the exactly-once ship ---------------------------------------------------------------------------
#
# A virtual shipment's attempt runs the first unfinished step: the handover (shipping.handover: the content
# reaches the buyer, recorded as `content_handed_at` with its Handover row), then the platform status
# (`ship_virtual`, reconciled through `fetch_order`). `needs_reconcile` always belongs to the first unfinished
# step, so a retry resumes where the last attempt stopped and asks before it calls again.


@dataclass
class _Attempt:
    shipment_id: int
    order_id: int
    sent_at: datetime
    reconcile: bool
    may_call: bool
    staff: bool
    request: ShipRequest | None            # physical goods: the waybill shipment
    order_no: str = ""
    step: handover.Step | None = None      # virtual goods whose content has not reached the buyer yet
    status_sent: bool = False              # the platform order is marked shipped already
    staff_confirms: bool = False           # slow goods: stop once the content is with the buyer
    virtual: bool = False
    counted: bool = False                  # this attempt counts against SHIP_MAX_ATTEMPTS (it may call)


def _lock(pk: int) -> Shipment:
    return lock_one(Shipment.objects.select_related("order", "order__shop", "order__product"), pk=pk)


def _lock_pair(a: _Attempt) -> tuple[Order, Shipment]:
    """Lock an attempt's order (shop and product joined) then its shipment (its row only) to record an outcome."""
    order = order_lock(a.order_id)  # order before shipment, the same order as the hooks lock in
    s = lock_one(Shipment.objects.all(), pk=a.shipment_id)
    s.order = order
    return order, s


def _order_id_of(shipment_id: int) -> int | None:
    return Shipment.objects.filter(pk=shipment_id).values_list("order_id", flat=True).first()


def _pending_contact(s: Shipment) -> tuple[int, str, str] | None:
    """The contact handover still being sent (its notification exists): later attempts only read it."""
    if s.delivery_way != Shipment.Way.CONTACT or s.content_handed_at is not None:
        return None
    return (Handover.objects.filter(shipment=s, status=Handover.Status.PENDING).order_by("-pk")
            .values_list("pk", "channel", "destination").first())


def _step(s: Shipment, order: Order, *, codes: list[str], may_call: bool, reconcile: bool,
          pending: tuple[int, str, str] | None) -> handover.Step | None:
    """What the handover step needs, or None when the content is with the buyer already (or nothing was ever
    started and this attempt may not call). Raises ConfigurationError when it cannot work."""
    if s.content_handed_at is not None or not s.delivery_way or s.delivery_way == Shipment.Way.STAFF:
        return None
    product = order.product
    step = handover.Step(
        shipment_id=s.pk, order_id=order.pk, sent_at=None, attempt=s.attempts, order_no=order.platform_order_id,
        may_call=may_call, reconcile=reconcile, way=s.delivery_way, content=s.content, codes=codes,
        kind_id=(product.card_kind_id or "").strip() if product else "", pool_uploaded=s.pool_uploaded_at is not None)
    if s.delivery_way == Shipment.Way.CARD_POOL and not codes:
        raise ConfigurationError("闲管家卡密发货需要卡密：请为商品导入卡密")
    if s.delivery_way == Shipment.Way.CONTACT:
        if pending is not None:
            step.pending_handover = pending[0]
            step.contact = ("sms" if pending[1] == Handover.Channel.SMS else "email", pending[2])
        elif may_call:
            step.contact = handover.buyer_contact(order, order.shop)
        step.notify_context = {"order": order.platform_order_id, "shipment_id": s.pk, "quantity": order.quantity,
                               "item": order.item_title or (product.title if product else "") or order.item_id,
                               "url": s.delivery_url}
    return step


def _prepare(s: Shipment, order: Order, *, may_call: bool, staff: bool,
             pending: tuple[int, str, str] | None) -> _Attempt:
    """Plan an attempt under the lock (content rendered and way chosen once, then kept on the row)."""
    product = order.product
    a = _Attempt(s.pk, order.pk, s.sent_at, s.needs_reconcile, may_call, staff, None,
                 order_no=order.platform_order_id, status_sent=s.status_sent_at is not None
                 or order.status in PLATFORM_SHIPPED)
    if product is None or product.kind == Product.Kind.PHYSICAL or not product.auto_ship and not staff:
        if may_call:
            raise ConfigurationError(manual_reason(product) or "实物商品需填写真实运单号")
        return a
    a.virtual = True
    a.staff_confirms = product.staff_confirms_shipping and not staff
    if s.content_handed_at is None and (may_call or s.delivery_way):
        codes = _codes_of(order)
        if not s.content:
            s.content = render_content(s, order, codes)
        if not s.delivery_way and may_call:
            s.delivery_way = handover.plan_way(product, get_adapter(order.shop))
        a.step = _step(s, order, codes=codes, may_call=may_call, reconcile=s.needs_reconcile, pending=pending)
    return a


def shipment_dispatch(*, shipment_id: int, now: datetime | None = None) -> str:
    """Send one due shipment. Safe to run any number of times, concurrently."""
    now = _now(now)
    order_id = _order_id_of(shipment_id)
    if order_id is None:
        return "locked-or-missing"
    with transaction.atomic():
        # Lock order: the order first, then its shipment (common.locks); a row another worker or a webhook
        # holds is skipped — the sweeper comes back to it.
        order = order_lock(order_id, skip_locked=True)
        if order is None:
            return "locked-or-missing"
        claim = SHIPMENT_WORK.lock(shipment_id, now=now)
        if claim is None:
            return _why_not_claimed(shipment_id, now)
        a, result = _mark(claim, order, now)
        if a is None:
            return result
    return _perform(a, order.shop)


def shipment_ready(shipment_id: int, *, now: datetime | None = None) -> str:
    """'due' when the shipment may be claimed now (a plain read, no lock), else why not."""
    row = Shipment.objects.filter(pk=shipment_id).only("status", "due_at", "lease_until").first()
    if row is None:
        return "locked-or-missing"
    now = _now(now)
    if SHIPMENT_WORK.is_claimable(row, now) is not None:
        return "due"
    if row.status == St.SENDING:
        return "busy"
    return "not-due" if row.status in SHIPMENT_WORK.waiting else row.status


def _why_not_claimed(shipment_id: int, now: datetime) -> str:
    current = Shipment.objects.filter(pk=shipment_id).values_list("status", "due_at").first()
    if current is None:
        return "locked-or-missing"
    status, due_at = current
    if status == St.SENDING:
        return "busy"
    return "not-due" if status in (St.SCHEDULED, St.RETRY_WAIT) and due_at > now else status


def shipment_dispatch_due(*, first: int | None = None, limit: int | None = None, now: datetime | None = None,
                          budget: timedelta | None = None) -> dict[int, str]:
    """Send up to `limit` due shipments (`first` among them if it is due) in one go (the ship_shipment task).

    The same exactly-once protocol as `shipment_dispatch`, per shipment: one transaction locks the due
    shipments' orders then the shipments (pk order, SKIP LOCKED: rows another worker holds are left to it),
    checks and marks each attempt (`sending`, a lease) and commits; then each shipment's platform calls run
    and each outcome is recorded on its own, fenced on its attempt. A worker that dies mid-batch leaves the
    unfinished ones `sending`: their lease runs out and the sweeper reconciles them, as for one shipment.
    A shipment whose calls have not started within `budget` (SHIP_BATCH_SECONDS) of the mark is given
    back, unsent, to be sent again at once (its lease is far longer, so no other worker can take it over
    while this one might still call). Returns {shipment id: result}."""
    now = _now(now)
    limit = max(1, limit or settings.SHIP_BATCH_SIZE)
    budget = budget if budget is not None else timedelta(seconds=settings.SHIP_BATCH_SECONDS)
    due = Q(shipment__status__in=SHIPMENT_WORK.waiting, shipment__due_at__lte=now) | Q(
        shipment__status=SHIPMENT_WORK.busy, shipment__lease_until__lte=now)
    results: dict[int, str] = {}
    attempts: list[tuple[_Attempt, object]] = []
    with transaction.atomic():
        # SKIP LOCKED on both: a row another worker holds is left to it, so taking `first`'s order before the
        # others (not in one pk-ordered statement) can never wait, hence never deadlock.
        orders_qs = Order.objects.select_related("shop", "product")
        orders = {}
        if first is not None:
            orders = {o.pk: o for o in lock_rows(orders_qs.filter(shipment__pk=first), skip_locked=True)}
        if len(orders) < limit:
            orders.update((o.pk, o) for o in lock_rows(orders_qs.filter(due).exclude(pk__in=list(orders)),
                                                       skip_locked=True, limit=limit - len(orders)))
        if not orders:
            return results
        for o in orders.values():
            o._prefetched_codes = []
        for order_id, code in (CardCode.objects.filter(order_id__in=list(orders), status__in=[
                CardCode.Status.RESERVED, CardCode.Status.DELIVERED]).order_by("pk").values_list("order_id", "code")):
            orders[order_id]._prefetched_codes.append(code)
        for row in lock_rows(Shipment.objects.filter(order_id__in=list(orders)), skip_locked=True):
            claim = SHIPMENT_WORK.is_claimable(row, now)
            if claim is None:
                results[row.pk] = _why_not_claimed(row.pk, now) if row.pk == first else row.status
                continue
            a, result = _mark(claim, orders[row.order_id], now)
            if a is None:
                results[row.pk] = result
            else:
                attempts.append((a, orders[row.order_id].shop))
    adapters: dict[int, object] = {}
    for a, shop in attempts:
        if a.counted and timezone.now() > now + budget:
            results[a.shipment_id] = _give_back(a)
            continue
        adapter = adapters.get(shop.pk) or adapters.setdefault(shop.pk, get_adapter(shop))
        results[a.shipment_id] = _perform(a, shop, adapter=adapter)
    return results


def _give_back(a: _Attempt) -> str:
    """A batch ran out of time before this attempt's first call: undo the mark (nothing was sent), due now."""
    with transaction.atomic():
        _order, s = _lock_pair(a)
        if not _still_ours(s, a):
            return s.status
        s.wait_retry()
        s.attempts = max(0, s.attempts - 1)
        s.due_at, s.lease_until = timezone.now(), None
        s.save_changed()
        from common.inbox import nudge

        from .tasks import ship_shipment

        pk = s.pk
        transaction.on_commit(lambda: nudge(ship_shipment, pk))
    return s.status


def _mark(claim, order: Order, now: datetime) -> tuple[_Attempt | None, str]:
    """Under the order's and the shipment's locks: check the claimed shipment and mark its attempt (saved;
    the caller commits before any call). (attempt, "") to perform, or (None, the shipment's new status)."""
    s = claim.row
    s.order = order
    if claim.reclaimed:
        s.needs_reconcile = True  # the worker that sent it died: its call may have gone through
    handing_over = bool(s.delivery_way) and s.content_handed_at is None
    if order.status in PLATFORM_SHIPPED and not handing_over:
        _finish(s, order, method=_platform_method(s), user=None, now=now)
        s.save_changed()
        return None, s.status
    staff_owned = s.method == Shipment.Method.STAFF and s.status == St.SENDING
    order_ok = order.status == OS.READY_TO_SHIP or (order.status in PLATFORM_SHIPPED and handing_over)
    pending = _pending_contact(s)
    may_call = (order_ok and not s.cancel_requested and not staff_owned
                and (pending is not None or s.attempts < settings.SHIP_MAX_ATTEMPTS))
    if not may_call and not s.needs_reconcile:
        if not order_ok or s.cancel_requested:
            _cancel(s, order, f"订单状态 {order.get_status_display()}，不再发货")
        elif handing_over:
            _undeliverable(s, order, "已达最大尝试次数")
            s.save_changed()
        else:
            _give_up(s, "已达最大尝试次数")
            s.save_changed()
        return None, s.status
    try:
        a = _prepare(s, order, may_call=may_call, staff=staff_owned, pending=pending)
    except ConfigurationError as exc:
        s.last_error = str(exc)
        if s.content_handed_at is None and order.product is not None and order.product.auto_ship \
                and order.product.kind == Product.Kind.VIRTUAL:
            _undeliverable(s, order, str(exc))
        else:
            _give_up(s, str(exc))
        s.save_changed()
        return None, s.status
    if may_call and pending is None:  # reading how a sent notification ended is not another attempt
        s.attempts += 1
        s.method = Shipment.Method.AUTO
        a.counted = True
    s.start_sending()
    s.sent_at, s.lease_until = now, now + LEASE
    s.save_changed()
    a.sent_at = now
    if a.step is not None:
        a.step.sent_at, a.step.attempt = now, s.attempts
    return a, ""


def _platform_method(s: Shipment) -> str:
    return Shipment.Method.AUTO if s.status_sent_at else Shipment.Method.PLATFORM


def _perform(a: _Attempt, shop, *, adapter=None) -> str:
    """Outside any transaction: reconcile if needed, run the unfinished steps, record each result."""
    adapter = adapter or get_adapter(shop)
    reconcile = a.reconcile
    if a.may_call and not reconcile and Shipment.objects.filter(pk=a.shipment_id, cancel_requested=True).exists():
        return _record_not_shipped(a, "订单已关闭，未交付")  # closed since the mark: nothing was sent
    if a.step is not None:
        result = _record_handover(a, handover.run(a.step, adapter))
        if result is not None:
            return result
        reconcile = False  # the status step starts fresh
    if a.virtual and a.staff_confirms and not a.status_sent:
        return _record_awaiting_confirmation(a)
    if a.status_sent:
        return _record_shipped(a, note="发货内容已送达，平台订单已是已发货")
    if reconcile:
        try:
            snap = adapter.fetch_order(a.order_no)
        except PlatformError as exc:
            return _record_failure(a, exc, during="reconcile")
        if snap.target_status in PLATFORM_SHIPPED:
            return _record_shipped(a, note="核对平台：已发货，未重复调用")
        if not a.may_call:
            return _record_not_shipped(a, f"核对平台：未发货（平台状态 {snap.raw_status}）")
    if not a.may_call:
        return _record_not_shipped(a, "发货内容已送达买家，平台发货状态未更新")
    try:
        result = adapter.ship(a.request) if a.request is not None else adapter.ship_virtual(a.order_no)
    except PlatformError as exc:
        if not isinstance(exc, ConfigurationError) and (exc.outcome_unknown or not exc.retryable):
            # Unknown: it may have gone through. Refused: perhaps it is shipped already. Ask the platform.
            try:
                snap = adapter.fetch_order(a.order_no)
                if snap.target_status in PLATFORM_SHIPPED:
                    return _record_shipped(a, note=f"发货结果未知或被拒（{exc}），核对平台：已发货")
            except PlatformError:
                pass
        return _record_failure(a, exc, during="ship")
    except Exception as exc:  # a bug or an unexpected transport error: the call may have gone through
        log.exception("shipment %s: unexpected error while shipping", a.shipment_id)
        return _record_failure(a, PlatformError(f"{exc.__class__.__name__}: {exc}", retryable=True,
                                                outcome_unknown=True), during="ship")
    return _record_shipped(a, note=result.message or "平台已受理")


def _clock(a: _Attempt) -> datetime:
    """Now, never earlier than the attempt's own clock (tests pass `now` in to travel in time)."""
    return max(timezone.now(), a.sent_at)


def _still_ours(s: Shipment, a: _Attempt) -> bool:
    return s.status == St.SENDING and s.sent_at == a.sent_at


HANDOVER_STATUS = {"delivered": Handover.Status.DELIVERED, "pending": Handover.Status.PENDING,
                   "held": Handover.Status.HELD, "failed": Handover.Status.FAILED, "unknown": Handover.Status.UNKNOWN}


def _record_handover(a: _Attempt, o: handover.Outcome) -> str | None:
    """Record a handover step (its Handover row, the step on the shipment). None: go on to the status step;
    else the shipment's new status (waiting, in the manual queue, cancelled)."""
    now = _clock(a)
    with transaction.atomic():
        order, s = _lock_pair(a)
        if not _still_ours(s, a):
            return s.status  # another worker took the row over after our lease ran out; it reconciles
        if o.status == "not_done":
            return _not_shipped(a, s, order, o.reason)
        if o.handover_id is not None:
            h = Handover.objects.get(pk=o.handover_id)
        else:
            h = Handover(shipment=s, attempt=a.step.attempt, channel=o.channel, carried=o.carried,
                         destination=o.destination, destination_hint=o.hint[:64])
        h.status = HANDOVER_STATUS.get(o.status) or (Handover.Status.UNKNOWN if o.unknown else Handover.Status.FAILED)
        h.answer = (o.answer or o.reason)[:500]
        h.finished_at = None if h.status == Handover.Status.PENDING else now
        h.save()
        if o.status_sent and s.status_sent_at is None:
            s.status_sent_at = now
            a.status_sent = True
        if o.status == "delivered":
            s.content_handed_at = now
            s.needs_reconcile = False
            s.last_error = ""
            CardCode.objects.filter(order=order, status=CardCode.Status.RESERVED).update(
                status=CardCode.Status.DELIVERED, delivered_at=now)
            if o.delivered_codes and sorted(o.delivered_codes) != sorted(a.step.codes):
                order_note(order=order, actor=Actor.SYSTEM, data={"shipment": s.pk},
                           message=f"闲管家发给买家的卡密（{len(o.delivered_codes)} 张）与本单预留的不一致："
                                   f"卡种 {a.step.kind_id} 里有其他来源的卡密")
            if s.cancel_requested or order.status not in (OS.READY_TO_SHIP, *PLATFORM_SHIPPED):
                _cancel(s, order, "订单已关闭，但发货内容已送达买家")
                return s.status
            if a.status_sent:  # the platform order is shipped too (card pool): finish under this same lock
                _ship_locked(a, s, order, note="发货内容已送达，平台订单已是已发货", codes_done=True)
                return s.status
            s.save_changed()
            return None
        s.needs_reconcile = o.unknown or o.status in ("pending", "held")
        s.last_error = o.reason[:4000]
        if a.staff:
            _to_staff(s, f"人工发货：{o.reason}", notify=False)
        elif s.cancel_requested:
            _cancel(s, order, f"订单已关闭；{o.reason}")
            return s.status
        elif o.status in ("failed", "unknown"):
            _undeliverable(s, order, o.reason)
        elif o.status != "pending" and s.attempts >= settings.SHIP_MAX_ATTEMPTS:
            _undeliverable(s, order, f"已尝试 {s.attempts} 次：{o.reason}")
        else:
            s.wait_retry()
            s.due_at = now + timedelta(seconds=settings.SHIP_RETRY_DELAY_SECONDS)
        s.save_changed()
        return s.status


def _record_awaiting_confirmation(a: _Attempt) -> str:
    """Slow goods: the content is with the buyer; the platform shipment waits for staff in the manual queue."""
    with transaction.atomic():
        _order, s = _lock_pair(a)
        if not _still_ours(s, a):
            return s.status
        s.needs_reconcile = False
        _to_staff(s, "发货内容已送达买家，等待员工确认平台发货")
        s.save_changed()
        return s.status


def _record_shipped(a: _Attempt, *, note: str) -> str:
    with transaction.atomic():
        order, s = _lock_pair(a)
        if s.status == St.SHIPPED:
            return s.status
        _ship_locked(a, s, order, note=note)
        return s.status


def _ship_locked(a: _Attempt, s: Shipment, order: Order, *, note: str, codes_done: bool = False) -> None:
    """The platform order is shipped: finish the locked shipment and save it."""
    method = Shipment.Method.STAFF if a.staff else Shipment.Method.AUTO
    if a.virtual and s.status_sent_at is None:
        s.status_sent_at = _clock(a)
    _finish(s, order, method=method, user=s.shipped_by if a.staff else None, now=_clock(a), note=note,
            codes_done=codes_done)
    s.save_changed()


def _finish(s: Shipment, order: Order, *, method: str, user, now: datetime, note: str = "",
            codes_done: bool = False) -> None:
    """Mark shipped, deliver the reserved codes (unless the caller just did), move the locked order (caller
    saves the shipment)."""
    s.mark_shipped()
    s.method = method
    s.shipped_at = now
    s.needs_reconcile = False
    s.last_error = ""
    if not codes_done:
        CardCode.objects.filter(order=order, status=CardCode.Status.RESERVED).update(
            status=CardCode.Status.DELIVERED, delivered_at=now)
    data = {"shipment": s.pk, "method": method, "waybill_no": s.waybill_no, "express": s.logistics_company,
            "delivery_way": s.delivery_way}
    actor = {Shipment.Method.STAFF: Actor.STAFF, Shipment.Method.PLATFORM: Actor.PLATFORM}.get(method, Actor.SYSTEM)
    if order.status in PLATFORM_SHIPPED:
        return
    order._shipment_in_hand = s.pk  # the on_shipped hook has nothing to do for the shipment we hold
    try:
        order_mark_shipped(order=order, actor=actor, user=s.shipped_by if method == Shipment.Method.STAFF else None,
                           message=note or "已发货", data=data, locked=True)
    except OrderError as exc:  # the order was closed while the attempt ran: the buyer has the goods
        order_note(order=order, actor=Actor.SYSTEM, data=data,
                   message=f"注意：订单已{order.get_status_display()}，但平台已发货（{exc}）")
        s.cancel_requested = False
    finally:
        del order._shipment_in_hand


def _record_not_shipped(a: _Attempt, why: str) -> str:
    with transaction.atomic():
        order, s = _lock_pair(a)
        if not _still_ours(s, a):
            return s.status
        return _not_shipped(a, s, order, why)


def _not_shipped(a: _Attempt, s: Shipment, order: Order, why: str) -> str:
    s.needs_reconcile = False
    if s.cancel_requested or order.status not in (OS.READY_TO_SHIP, *PLATFORM_SHIPPED):
        _cancel(s, order, f"订单状态 {order.get_status_display()}，{why}")
        return s.status
    if a.staff:
        s.last_error = why
        _to_staff(s, f"人工发货中断：{why}", notify=False)
    elif a.virtual and s.content_handed_at is None:
        _undeliverable(s, order, why)
    else:
        _give_up(s, why)
    s.save_changed()
    return s.status


def _record_failure(a: _Attempt, exc: PlatformError, *, during: str) -> str:
    with transaction.atomic():
        order, s = _lock_pair(a)
        if not _still_ours(s, a):
            return s.status  # another worker took the row over after our lease ran out; it reconciles
        if during == "ship":
            s.needs_reconcile = exc.outcome_unknown
        s.last_error = f"{'核对' if during == 'reconcile' else '发货'}失败：{exc}"[:4000]
        if s.cancel_requested and not s.needs_reconcile:
            _cancel(s, order, "订单已关闭，发货未完成")
            return s.status
        if a.staff:
            _to_staff(s, s.last_error, notify=False)
        elif (isinstance(exc, ConfigurationError) or s.attempts >= settings.SHIP_MAX_ATTEMPTS
              or not (exc.retryable or exc.outcome_unknown)):
            _give_up(s, s.last_error)  # configuration errors fail at once, with the reason
        else:
            s.wait_retry()
            s.due_at = _clock(a) + timedelta(seconds=settings.SHIP_RETRY_DELAY_SECONDS)
        s.save_changed()
        return s.status


def _give_up(s: Shipment, why: str) -> None:
    """Auto-ship is over for this shipment: failed, notified, in the manual queue (status `failed`)."""
    s.fail()
    s.last_error = s.last_error or why
    s.manual_reason = f"自动发货失败：{why}"[:255]
    _failed_notice(s, s.order)


def _failed_notice(s: Shipment, order: Order) -> None:
    notify_event("shipment.failed", shop=order.shop, order=order.platform_order_id, shipment_id=s.pk,
                 attempts=s.attempts, error=s.last_error[:500])
    order_note(order=order, actor=Actor.SYSTEM, message=f"自动发货失败：{s.last_error}"[:500],
               data={"shipment": s.pk, "attempts": s.attempts})


def _undeliverable(s: Shipment, order: Order, why: str) -> None:
    """The content did not reach the buyer: never shipped; failed, in the manual queue with the reason, and
    staff told (`shipment.undelivered`, at most one alert per shop per UNDELIVERED_ALERT_INTERVAL, carrying
    how many shipments it covers)."""
    from notifications.services import alert_gate

    s.fail()
    s.last_error = s.last_error or why
    s.manual_reason = f"发货内容未送达买家：{why}"[:255]
    count = alert_gate(key=f"shipment.undelivered:{order.shop_id}", interval=UNDELIVERED_ALERT_INTERVAL)
    if count is not None:
        notify_event("shipment.undelivered", shop=order.shop, order=order.platform_order_id, shipment_id=s.pk,
                     reason=why[:300], count=count)
    order_note(order=order, actor=Actor.SYSTEM, message=f"发货内容未送达买家：{why}"[:500],
               data={"shipment": s.pk, "attempts": s.attempts, "delivery_way": s.delivery_way})


# --- staff --------------------------------------------------------------------------------------------


def shipment_ship_manual(*, shipment: Shipment, user, logistics_company: str = "", express_code: str = "",
                         waybill_no: str = "", content: str = "", handed_over: bool = False,
                         now: datetime | None = None) -> Shipment:
    """Staff ship one order from the queue through the platform (same lock → mark → call → record path).

    Physical goods need a real waybill. Virtual goods: the content (given here, or the rendered template)
    goes to the buyer the product's way unless staff say they handed it over themselves (`handed_over`,
    recorded as a staff Handover); then the platform order is marked shipped (status only). Slow goods
    whose content was delivered only get the platform shipment. Raises ShippingError when the state or the
    input does not allow it; platform errors leave the shipment in the queue with the error (and the result
    is returned)."""
    now = _now(now)
    with transaction.atomic():
        order = order_lock(shipment.order_id)
        s = _lock(shipment.pk)
        s.order = order
        if s.status == St.SHIPPED:
            return s
        if s.status == St.SENDING:
            raise ShippingError(f"订单 {order.platform_order_id} 正在发货中，请稍后刷新")
        if s.status == St.CANCELLED or order.status not in (OS.READY_TO_SHIP, OS.SHIPPED, OS.COMPLETED):
            raise ShippingError(f"订单 {order.platform_order_id} 当前状态 {order.get_status_display()}，不能发货")
        product = order.product
        physical = product is None or product.kind == Product.Kind.PHYSICAL
        waybill_no, content = waybill_no.strip(), content.strip()
        if physical and not waybill_no:
            raise ShippingError(f"订单 {order.platform_order_id}：实物商品必须填写运单号")
        if physical and not (logistics_company.strip() or s.logistics_company):
            raise ShippingError(f"订单 {order.platform_order_id}：请填写物流公司")
        s.logistics_company = logistics_company.strip() or s.logistics_company
        s.express_code = express_code.strip() or s.express_code
        s.waybill_no = waybill_no or s.waybill_no
        s.shipped_by = user
        request = None
        if physical:
            request = ShipRequest(platform_order_id=order.platform_order_id, waybill_no=s.waybill_no,
                                  express_code=s.express_code, express_name=s.logistics_company)
        else:
            if content and s.content_handed_at is not None:
                raise ShippingError(f"订单 {order.platform_order_id}：发货内容已送达买家，不能再修改")
            try:
                if content:
                    s.content = content
                elif not s.content:
                    s.content = render_content(s, order)
            except ConfigurationError as exc:
                raise ShippingError(str(exc)) from exc
            if s.content_handed_at is None and handed_over:
                _staff_handover(s, order, user, now)
        platform_shipped = order.status in PLATFORM_SHIPPED
        if platform_shipped and (physical or s.content_handed_at is not None):
            _finish(s, order, method=Shipment.Method.PLATFORM, user=user, now=now)
            s.save_changed()
            return s
        reconcile = s.needs_reconcile or s.attempts > 0
        step = None
        if not physical and s.content_handed_at is None:
            try:
                if s.delivery_way in ("", Shipment.Way.STAFF):
                    s.delivery_way = handover.plan_way(product, get_adapter(order.shop))
                step = _step(s, order, codes=_codes_of(order), may_call=True, reconcile=reconcile,
                             pending=_pending_contact(s))
            except ConfigurationError as exc:
                raise ShippingError(f"订单 {order.platform_order_id}：无法自动交付发货内容（{exc}）。"
                                    "如已自行把内容交给买家，请勾选“已自行交付”后再发货") from exc
        s.start_sending()
        s.method = Shipment.Method.STAFF
        s.attempts += 1
        s.sent_at, s.lease_until = now, now + LEASE
        s.save_changed()
        if step is not None:
            step.sent_at, step.attempt = now, s.attempts
        attempt = _Attempt(s.pk, order.pk, now, reconcile, True, True, request, order_no=order.platform_order_id,
                           step=step, status_sent=platform_shipped or s.status_sent_at is not None,
                           virtual=not physical)
    _perform(attempt, order.shop)
    return Shipment.objects.select_related("order").get(pk=s.pk)


def _staff_handover(s: Shipment, order: Order, user, now: datetime) -> None:
    """Staff say they handed the content to the buyer themselves (e.g. in the Xianyu chat): recorded as such."""
    Handover.objects.create(shipment=s, attempt=s.attempts + 1, channel=Handover.Channel.STAFF,
                            carried=Handover.Carried.CONTENT, status=Handover.Status.DELIVERED,
                            destination_hint="员工确认已交付", answer=f"员工 {user} 确认已把发货内容交给买家"[:500],
                            finished_at=now)
    s.content_handed_at = now
    s.delivery_way = s.delivery_way or Shipment.Way.STAFF
    CardCode.objects.filter(order=order, status=CardCode.Status.RESERVED).update(
        status=CardCode.Status.DELIVERED, delivered_at=now)


# --- the sweeper -------------------------------------------------------------------------------------


def due_shipments(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Scheduled or retrying shipments that are due, and `sending` ones whose lease ran out."""
    return SHIPMENT_WORK.due_ids(now=now, limit=limit)


def manual_queue():
    return Shipment.objects.filter(status__in=MANUAL_QUEUE)


def shipment_ship_now(*, shipments, now: datetime | None = None) -> int:
    """Staff: make scheduled or retrying shipments due now and nudge a worker (the sweeper would too)."""
    from common.inbox import nudge

    from .tasks import ship_shipment

    ids = [s.pk for s in shipments]
    with transaction.atomic():
        n = Shipment.objects.filter(pk__in=ids, status__in=[St.SCHEDULED, St.RETRY_WAIT]).update(due_at=_now(now))
    for pk in ids:
        nudge(ship_shipment, pk)
    return n
