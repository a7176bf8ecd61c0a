"""Every write and business rule for orders, products and stock (DESIGN.md §3).

`order_sync` drives the state machine from what a platform reports; `order_transition` is the one place
a transition happens and its OrderEvent is written; later apps plug in through `orders.hooks`."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import BuyerIdentity, Shop
from accounts.services import buyer_upsert
from common.locks import lock_one, lock_rows

from . import hooks
from .adapters import get_adapter
from .adapters.base import OrderSnapshot
from .models import (
    PAID_STATES,
    PIPELINE,
    REFUNDABLE_STATES,
    Order,
    OrderEvent,
    OrderStatus,
    Product,
    StockMovement,
)

log = logging.getLogger(__name__)
S = OrderStatus
Actor = OrderEvent.Actor



def _platform_transitions() -> list[tuple[str, set[str], str]]:
    """(name, sources, target) of every transition marked as platform-driven on Order's FSM; a target decided
    at run time (RETURN_VALUE: back where a refund started) is "*". Our own post-payment steps (KYC hold,
    release to shipping) are not platform-driven: hooks decide them."""
    from django_fsm import State

    table: dict[str, tuple[set[str], str]] = {}
    for t in Order._meta.get_field("status").get_all_transitions(Order):
        if t.custom.get("platform"):
            sources, _ = table.setdefault(t.name, (set(), "*" if isinstance(t.target, State) else t.target))
            sources.add(t.source)
    return [(name, sources, target) for name, (sources, target) in table.items()]


PLATFORM_TRANSITIONS = _platform_transitions()
# The states a platform can report (where an order starts, and every platform transition's target), in
# pipeline order: what the sandbox platform lets an operator play.
PLATFORM_STATES = [str(s) for s in PIPELINE
                   if s == S.PENDING_PAYMENT or any(target == s for _, _, target in PLATFORM_TRANSITIONS)]
RANK = {state: info.rank for state, info in PIPELINE.items()}
TIMESTAMPS = {state: info.stamps for state, info in PIPELINE.items() if info.stamps}


class OrderError(Exception):
    """A request the order's state does not allow (shown to staff as is)."""


class OutOfStock(OrderError):
    pass


@dataclass
class SyncResult:
    order: Order
    created: bool
    applied: list[str]          # transition names applied
    outcome: str                # "applied", "unchanged", "stale", "anomaly"


def _satisfies(current: str, target: str) -> bool:
    """Is the order already where the platform says it is? (paid covers our post-payment states)."""
    if current == target:
        return True
    return target == S.PAID and current in PAID_STATES


def _path(current: str, target: str, before_refund: str = "") -> list[str] | None:
    """Shortest legal sequence of platform transitions from current to target, or None."""
    if _satisfies(current, target):
        return []
    queue = deque([(current, [])])
    seen = {current}
    while queue:
        state, names = queue.popleft()
        for name, sources, to in PLATFORM_TRANSITIONS:
            if state not in sources:
                continue
            nxt = (before_refund or S.PAID) if to == "*" else to
            if nxt in seen:
                continue
            if _satisfies(nxt, target):
                return [*names, name]
            seen.add(nxt)
            queue.append((nxt, [*names, name]))
    return None


def event_write(*, order: Order, actor: str, kind: str = OrderEvent.Kind.NOTE, from_status: str = "",
                to_status: str = "", user=None, message: str = "", data: dict | None = None) -> OrderEvent:
    return OrderEvent.objects.create(order=order, kind=kind, from_status=from_status, to_status=to_status,
                                     actor=actor, user=user, message=message[:500], data=data or {})


def order_transition(*, order: Order, name: str, actor: str, user=None, message: str = "",
                     data: dict | None = None, automate: bool = True, state_only: bool = False) -> Order:
    """Apply one named transition to a locked order, write its OrderEvent and run the hooks.

    Must run inside a transaction with `order` loaded by `select_for_update` (see `order_lock`).
    `automate=False` skips our own post-payment steps (used when a sync passes through `paid` on its way
    to a later state, e.g. backfilling an order that is already shipped). `state_only`: the caller changed
    nothing else on the order, so only the status, its timestamp and `updated_at` are written."""
    before = order.status
    method = getattr(order, name)
    from django_fsm import can_proceed

    if not can_proceed(method):
        raise OrderError(f"订单 {order.platform_order_id} 当前状态 {order.get_status_display()} 不能执行 {name}")
    method()
    stamp = TIMESTAMPS.get(order.status)
    if stamp and getattr(order, stamp) is None:
        setattr(order, stamp, timezone.now())
    if state_only:
        order.save(update_fields=["status", "updated_at", *([stamp] if stamp else [])])
    else:
        order.save()
    event_write(order=order, kind=OrderEvent.Kind.TRANSITION, from_status=before, to_status=order.status,
                actor=actor, user=user, message=message or name, data=data)
    _after(order, before=before, automate=automate)
    return order


def _after(order: Order, *, before: str, automate: bool) -> None:
    """What follows a state change: our own post-payment steps and the listeners."""
    if order.status == S.PAID:
        if not automate:
            return
        from notifications.services import notify

        notify("order.paid", shop=order.shop, order=order.platform_order_id, item=order.item_title or order.item_id,
               quantity=order.quantity, amount=order.amount)
        held = [reason for gate in hooks.paid_gates if (reason := gate(order))]
        if held:
            order_transition(order=order, name="require_kyc", actor=Actor.SYSTEM, message="；".join(held))
        else:
            order_transition(order=order, name="release", actor=Actor.SYSTEM, message="无需 KYC，进入待发货")
    elif order.status == S.READY_TO_SHIP:
        for fn in hooks.on_ready_to_ship:
            fn(order)
    elif order.status == S.SHIPPED:
        for fn in hooks.on_shipped:
            fn(order)
    elif order.status in (S.CLOSED, S.REFUNDING, S.REFUNDED) and before in PAID_STATES:
        for fn in hooks.on_closed:
            fn(order)


def order_lock(order_id: int, *, skip_locked: bool = False) -> Order | None:
    """Lock one order (with its shop and product joined, not locked) in the caller's transaction.
    Raises Order.DoesNotExist when it is missing; None when skip_locked and another transaction holds it."""
    order = lock_one(Order.objects.select_related("shop", "product"), pk=order_id, skip_locked=skip_locked)
    if order is None and not skip_locked:
        raise Order.DoesNotExist(f"order {order_id} does not exist")
    return order


def order_release(*, order: Order, actor: str = Actor.SYSTEM, user=None, message: str = "") -> Order:
    """awaiting_kyc → ready_to_ship (KYC passed, or staff released it)."""
    with transaction.atomic():
        order = order_lock(order.pk)
        return order_transition(order=order, name="release", actor=actor, user=user, message=message or "放行")


def order_mark_shipped(*, order: Order, actor: str, user=None, message: str = "", data: dict | None = None,
                       locked: bool = False) -> Order:
    """Record that the order was shipped on the platform (by us or elsewhere). Idempotent. `locked`: the
    caller holds `order` from `order_lock` in its open transaction (no second lock and re-read)."""
    if locked:
        if not transaction.get_connection().in_atomic_block:
            raise OrderError("order_mark_shipped(locked=True) outside the transaction that locked the order")
        if order.status in (S.SHIPPED, S.COMPLETED):
            return order
        return order_transition(order=order, name="ship", actor=actor, user=user, message=message or "已发货",
                                data=data, state_only=True)
    with transaction.atomic():
        order = order_lock(order.pk)
        if order.status in (S.SHIPPED, S.COMPLETED):
            return order
        return order_transition(order=order, name="ship", actor=actor, user=user, message=message or "已发货",
                                data=data)


def order_close(*, order: Order, actor: str, user=None, message: str = "", data: dict | None = None) -> Order:
    """Close the order here (after it was closed on the platform). Idempotent."""
    with transaction.atomic():
        order = order_lock(order.pk)
        if order.status == S.CLOSED:
            return order
        return order_transition(order=order, name="close", actor=actor, user=user, message=message or "关闭",
                                data=data)


def order_note(*, order: Order, actor: str, message: str, user=None, data: dict | None = None) -> OrderEvent:
    return event_write(order=order, actor=actor, user=user, message=message, data=data)


def _product_for(shop: Shop, item_id: str) -> Product | None:
    if not item_id:
        return None
    return Product.objects.filter(shop=shop, item_id=item_id).first()


@transaction.atomic
def order_sync(*, shop: Shop, snapshot: OrderSnapshot, event_at: datetime | None = None,
               target_status: str | None = None, actor: str = Actor.PLATFORM, user=None,
               source: str = "") -> SyncResult:
    """Bring our order in line with what the platform reports.

    Creates the order on first sight, refreshes its snapshot fields, and applies the legal path to the
    target state. A report older than the last one applied is ignored; a target our machine cannot reach
    is recorded as an anomaly (event + flag), never raised."""
    target = target_status or snapshot.target_status
    event_at = event_at or snapshot.updated_at or timezone.now()
    order = lock_one(Order.objects.select_related("shop", "product"), shop=shop,
                     platform_order_id=snapshot.platform_order_id)
    created = order is None
    if created:
        order = Order(shop=shop, platform_order_id=snapshot.platform_order_id)
        _fill(order, shop, snapshot)
        order.platform_status = snapshot.raw_status
        order.platform_event_at = event_at
        order.save()
        event_write(order=order, kind=OrderEvent.Kind.CREATED, to_status=order.status, actor=actor, user=user,
                    message=f"收到平台订单（{source or shop.platform}）", data={"platform_status": snapshot.raw_status})
    elif order.platform_event_at and event_at < order.platform_event_at:
        return SyncResult(order, False, [], "stale")
    elif (order.platform_event_at and event_at == order.platform_event_at and target
          and RANK.get(target, 0) < RANK.get(order.status, 0)):
        return SyncResult(order, False, [], "stale")
    else:
        _fill(order, shop, snapshot)
        order.platform_status = snapshot.raw_status
        order.platform_event_at = event_at
        order.save()

    if not target or target == S.PENDING_PAYMENT and order.status == S.PENDING_PAYMENT:
        return SyncResult(order, created, [], "applied" if created else "unchanged")
    path = _path(order.status, target, order.status_before_refund)
    if path is None:
        order.has_anomaly = True
        order.save(update_fields=["has_anomaly", "updated_at"])
        event_write(order=order, kind=OrderEvent.Kind.ANOMALY, from_status=order.status, to_status=target,
                    actor=actor, message=f"平台状态 {snapshot.raw_status} 无法从 {order.get_status_display()} 到达",
                    data={"platform_status": snapshot.raw_status, "target": target})
        log.warning("order %s: no path %s -> %s", order.platform_order_id, order.status, target)
        _anomaly_alert(order, target, snapshot.raw_status)
        return SyncResult(order, created, [], "anomaly")
    for i, name in enumerate(path):
        order_transition(order=order, name=name, actor=actor, user=user, automate=i == len(path) - 1,
                         message=f"平台状态 {snapshot.raw_status}", data={"platform_status": snapshot.raw_status})
    return SyncResult(order, created, path, "applied" if path or created else "unchanged")


def _anomaly_alert(order: Order, target: str, platform_status: str) -> None:
    """order.anomaly for staff (DESIGN.md §4.5), at most one per shop per 10 minutes (with the count)."""
    from notifications.services import staff_alert

    staff_alert("order.anomaly", key=f"order_anomaly:{order.shop_id}", shop=order.shop,
                order=order.platform_order_id, status=order.get_status_display(),
                target=S(target).label if target in S.values else target, platform_status=platform_status)


def _fill(order: Order, shop: Shop, snap: OrderSnapshot, *, products: dict[str, Product | None] | None = None,
          buyers: dict[str, BuyerIdentity] | None = None) -> None:
    """Copy the snapshot's descriptive fields; never blank out what an earlier, richer report gave.
    `products` (item id → product) and `buyers` (platform user id → buyer, already upserted) are given by the
    page sync, which looks them up for a whole page at once."""
    if snap.item_id:
        order.item_id = snap.item_id
        product = products.get(snap.item_id) if products is not None else _product_for(shop, snap.item_id)
        order.product = product or order.product
    for name in ("item_title", "sku"):
        if getattr(snap, name):
            setattr(order, name, getattr(snap, name))
    if snap.quantity:
        order.quantity = snap.quantity
    if snap.amount:
        order.amount = snap.amount
    if snap.receiver:
        order.receiver = snap.receiver
    for name in ("paid_at", "shipped_at", "closed_at"):
        if getattr(snap, name) and not getattr(order, name):
            setattr(order, name, getattr(snap, name))
    if snap.buyer_id and (order.buyer_id is None or order.buyer.platform_user_id != snap.buyer_id):
        order.buyer = (buyers[snap.buyer_id] if buyers is not None else
                       buyer_upsert(platform=shop.platform, platform_user_id=snap.buyer_id, nick=snap.buyer_nick))


# --- a page of orders at once (backfill) ---------------------------------------------------------------

# What the page sync writes on an order it refreshes (the fields `_fill` and `order_sync` set).
_SYNCED_FIELDS = ("item_id", "product", "item_title", "sku", "quantity", "amount", "receiver", "paid_at", "shipped_at",
                  "closed_at", "buyer", "platform_status", "platform_event_at")


def _buyers_upsert(platform: str, wanted: dict[str, str]) -> dict[str, BuyerIdentity]:
    """`buyer_upsert` for many buyers (platform user id → nick) in three statements at most."""
    from accounts.models import BuyerIdentity

    if not wanted:
        return {}
    have = {b.platform_user_id: b for b in BuyerIdentity.objects.filter(platform=platform,
                                                                       platform_user_id__in=list(wanted))}
    missing = [BuyerIdentity(platform=platform, platform_user_id=uid, nick=nick)
               for uid, nick in wanted.items() if uid not in have]
    if missing:
        BuyerIdentity.objects.bulk_create(missing, ignore_conflicts=True)
        have.update({b.platform_user_id: b for b in BuyerIdentity.objects.filter(
            platform=platform, platform_user_id__in=[b.platform_user_id for b in missing])})
    renamed = []
    for uid, nick in wanted.items():
        buyer = have[uid]
        if nick and buyer.nick != nick:
            buyer.nick = nick
            renamed.append(buyer)
    if renamed:
        now = timezone.now()
        for buyer in renamed:
            buyer.updated_at = now
        BuyerIdentity.objects.bulk_update(renamed, ["nick", "updated_at"])
    return have


def _quiet_new(path: list[str]) -> bool:
    """Can a new order take this path without running anything but its events? Its last step must not land
    on `paid` (a newly paid order gets the post-payment automation: `order_sync` does it). The listeners of
    later states (on_shipped, on_closed) act on a shipment or verification, which only that automation
    creates: a new order has none, so they have nothing to do."""
    if not path:
        return True
    last = next(to for name, _, to in PLATFORM_TRANSITIONS if name == path[-1])
    return last not in (S.PAID, "*")


def order_sync_page(*, shop: Shop, snapshots: list[OrderSnapshot], source: str = "",
                    actor: str = Actor.PLATFORM) -> list[tuple[OrderSnapshot, SyncResult | Exception]]:
    """`order_sync` for a page of orders (backfill), in a handful of statements instead of a transaction per
    order: the orders are locked together (pk order), products and buyers looked up and upserted at once, new
    orders and their events inserted in bulk, refreshed ones updated in bulk (only those that changed).

    Whatever needs more than rows goes through `order_sync`, one order at a time, after the page's
    transaction: an order newly paid (the post-payment automation: notification, KYC gate, shipment), an
    existing order that changes state (its listeners), a target the machine cannot reach (anomaly), an order
    listed twice. If the page's transaction fails (e.g. a webhook created one of its orders meanwhile), the
    whole page goes through `order_sync`. The same rules as `order_sync`: a stale report changes nothing, a
    re-run writes nothing. Returns (snapshot, SyncResult or the exception) per snapshot."""
    try:
        with transaction.atomic():
            done, slow = _sync_page_rows(shop, snapshots, source, actor)
    except Exception:
        log.warning("page sync for %s fell back to one order at a time", shop, exc_info=True)
        done, slow = [], list(snapshots)
    for snap in slow:
        try:
            done.append((snap, order_sync(shop=shop, snapshot=snap, source=source, actor=actor)))
        except Exception as exc:  # one bad order must not stop the rest
            done.append((snap, exc))
    return done


_EVENT_COLUMNS = ("order_id", "kind", "from_status", "to_status", "actor", "message", "data", "created_at")


def _events_insert(rows: list[tuple], now: datetime) -> None:
    """Insert many OrderEvents, (order_id, kind, from, to, actor, message, data) each, all created `now`: on
    PostgreSQL with one COPY (Django's bulk_create spends more CPU preparing the values than PostgreSQL
    spends storing them), else with bulk_create."""
    from django.db import connections, router

    connection = connections[router.db_for_write(OrderEvent)]
    if connection.vendor != "postgresql":
        OrderEvent.objects.bulk_create([OrderEvent(**dict(zip(_EVENT_COLUMNS, (*row, now), strict=True)))
                                        for row in rows])
        return
    from psycopg.types.json import Jsonb

    q = connection.ops.quote_name
    sql = f"COPY {q(OrderEvent._meta.db_table)} ({', '.join(q(c) for c in _EVENT_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for *head, data in rows:
            copy.write_row((*head, Jsonb(data), now))


def _sync_page_rows(shop: Shop, snapshots: list[OrderSnapshot], source: str, actor: str):
    now = timezone.now()
    seen: set[str] = set()
    page, slow = [], []
    for snap in snapshots:
        (slow if snap.platform_order_id in seen else page).append(snap)
        seen.add(snap.platform_order_id)
    existing = {o.platform_order_id: o for o in lock_rows(
        Order.objects.select_related("buyer").filter(shop=shop, platform_order_id__in=[s.platform_order_id
                                                                                          for s in page]))}
    item_ids = {s.item_id for s in page if s.item_id}
    products: dict[str, Product | None] = dict.fromkeys(item_ids)
    products.update({p.item_id: p for p in Product.objects.filter(shop=shop, item_id__in=item_ids).order_by("pk")
                     .reverse()})  # the first by pk wins, as in _product_for
    done: list[tuple[OrderSnapshot, SyncResult]] = []
    fast_new: list[tuple[OrderSnapshot, Order, list[str], datetime]] = []
    refreshed: list[Order] = []
    wanted_buyers: dict[str, str] = {}
    plans = []
    for snap in page:
        target = snap.target_status
        event_at = snap.updated_at or now
        order = existing.get(snap.platform_order_id)
        if order is None:
            path = _path(S.PENDING_PAYMENT, target) if target else []
            if path is None or not _quiet_new(path):
                slow.append(snap)
                continue
            plans.append(("new", snap, None, path, event_at))
        else:
            if order.platform_event_at and event_at < order.platform_event_at:
                done.append((snap, SyncResult(order, False, [], "stale")))
                continue
            if (order.platform_event_at and event_at == order.platform_event_at and target
                    and RANK.get(target, 0) < RANK.get(order.status, 0)):
                done.append((snap, SyncResult(order, False, [], "stale")))
                continue
            if target and not (target == S.PENDING_PAYMENT and order.status == S.PENDING_PAYMENT) \
                    and _path(order.status, target, order.status_before_refund) != []:
                slow.append(snap)  # a state change (listeners) or an anomaly
                continue
            plans.append(("old", snap, order, [], event_at))
        if snap.buyer_id and (order is None or order.buyer_id is None
                              or order.buyer.platform_user_id != snap.buyer_id):
            wanted_buyers[snap.buyer_id] = snap.buyer_nick
    buyers = _buyers_upsert(shop.platform, wanted_buyers)
    for kind, snap, order, path, event_at in plans:
        if kind == "new":
            order = Order(shop=shop, platform_order_id=snap.platform_order_id)
            _fill(order, shop, snap, products=products, buyers=buyers)
            order.platform_status, order.platform_event_at = snap.raw_status, event_at
            steps = []
            for name in path:
                before = order.status
                getattr(order, name)()
                stamp = TIMESTAMPS.get(order.status)
                if stamp and getattr(order, stamp) is None:
                    setattr(order, stamp, now)
                steps.append((name, before, order.status))
            fast_new.append((snap, order, steps, event_at))
        else:
            before = {f: getattr(order, Order._meta.get_field(f).attname) for f in _SYNCED_FIELDS}
            _fill(order, shop, snap, products=products, buyers=buyers)
            order.platform_status, order.platform_event_at = snap.raw_status, event_at
            if any(getattr(order, Order._meta.get_field(f).attname) != v for f, v in before.items()):
                order.updated_at = now
                refreshed.append(order)
            done.append((snap, SyncResult(order, False, [], "unchanged")))
    if fast_new:
        Order.objects.bulk_create([o for _, o, _, _ in fast_new])
        events = []
        for snap, order, steps, _ in fast_new:
            data = {"platform_status": snap.raw_status}
            events.append((order.pk, OrderEvent.Kind.CREATED, "", S.PENDING_PAYMENT, actor,
                           f"收到平台订单（{source or shop.platform}）"[:500], data))
            message = f"平台状态 {snap.raw_status}"[:500]
            for _name, before, after in steps:
                events.append((order.pk, OrderEvent.Kind.TRANSITION, before, after, actor, message, data))
            done.append((snap, SyncResult(order, True, [n for n, _, _ in steps], "applied")))
        _events_insert(events, now)
    if refreshed:
        Order.objects.bulk_update(refreshed, [*_SYNCED_FIELDS, "updated_at"])
    return done, slow


def summary_figures(since: datetime, until: datetime) -> dict:
    """Order figures for the daily summary (registered with notifications in OrdersConfig.ready)."""
    from django.db.models import Count

    created = Order.objects.filter(created_at__gte=since, created_at__lt=until)
    events = OrderEvent.objects.filter(created_at__gte=since, created_at__lt=until, kind=OrderEvent.Kind.TRANSITION)
    moved = dict(events.values_list("to_status").annotate(n=Count("id")).order_by())
    return {"新订单": created.count(), "付款": moved.get(S.PAID, 0), "发货": moved.get(S.SHIPPED, 0),
            "关闭": moved.get(S.CLOSED, 0), "退款": moved.get(S.REFUNDED, 0),
            "异常订单": Order.objects.filter(has_anomaly=True, updated_at__gte=since).count()}


# --- products and stock ------------------------------------------------------------------------------


def product_save(*, product: Product) -> Product:
    """Validate (Product.clean: delivery template sandbox, delivery rules the platform can carry) and save.
    Raises django.core.exceptions.ValidationError with the reasons."""
    product.full_clean()
    product.save()
    return product


def stock_adjust(*, product: Product, change: int, reason: str, order: Order | None = None, user=None,
                 note: str = "") -> Product:
    """Change a product's stock under a row lock and log a StockMovement. Unlimited stock (-1) is only
    logged. Raises OutOfStock rather than go below zero. Returns the locked, updated product."""
    with transaction.atomic():
        product = lock_one(Product.objects.all(), pk=product.pk)
        if product.unlimited:
            remaining = Product.UNLIMITED
        else:
            remaining = product.stock + change
            if remaining < 0:
                raise OutOfStock(f"商品 {product.title} 库存不足：剩余 {product.stock}，需要 {-change}")
            product.stock = remaining
            product.save(update_fields=["stock", "updated_at"])
        StockMovement.objects.create(product=product, reason=reason, change=change, remaining=remaining,
                                     order=order, user=user, note=note[:255])
        return product


# --- inbound messages and refresh --------------------------------------------------------------------


def _push_of(event, adapter):
    """Re-read a stored inbox event as the adapter's PushMessage."""
    from urllib.parse import parse_qsl

    query = dict(parse_qsl(event.headers.get("QUERY_STRING", ""), keep_blank_values=True))
    return adapter.parse_push(query=query, body=event.body.encode())


def order_event_handle(event) -> str:
    """Process one stored order message: skip it if stale, fetch the order (outside any transaction),
    then sync. Raises on platform failure so the inbox keeps it for retry."""
    from common.inbox import Ignored

    if event.shop_id is None:
        raise Ignored("no shop")
    shop = event.shop
    adapter = get_adapter(shop)
    msg = _push_of(event, adapter)
    last = (Order.objects.filter(shop=shop, platform_order_id=msg.platform_order_id)
            .values_list("platform_event_at", flat=True).first())
    if last and msg.event_at and msg.event_at < last:
        raise Ignored(f"stale: message of {msg.event_at:%Y-%m-%d %H:%M:%S} older than {last:%Y-%m-%d %H:%M:%S}")
    snap = adapter.fetch_order(msg.platform_order_id)
    target = snap.target_status
    # An order query does not show a refund in progress; the refund message does.
    if msg.target_status == S.REFUNDING and target in REFUNDABLE_STATES:
        target = S.REFUNDING
    times = [t for t in (msg.event_at, snap.updated_at) if t]
    result = order_sync(shop=shop, snapshot=snap, event_at=max(times) if times else None, target_status=target,
                        source=event.source)
    if result.outcome == "stale":
        raise Ignored("stale")
    return f"{result.outcome}: {result.order.status}"


def order_refresh(*, order: Order, user=None) -> SyncResult:
    """Re-read one order from its platform and sync it (admin action, `manage.py sync_order`)."""
    snap = get_adapter(order.shop).fetch_order(order.platform_order_id)
    actor = Actor.STAFF if user else Actor.PLATFORM
    return order_sync(shop=order.shop, snapshot=snap, actor=actor, user=user, source="refresh",
                      event_at=max(filter(None, [snap.updated_at, order.platform_event_at, timezone.now()])))


# --- sandbox platform ------------------------------------------------------------------------------


def sandbox_order_simulate(*, shop: Shop, item_id: str, quantity: int = 1, amount_fen: int = 100,
                           status: str = S.PAID, order_no: str | None = None):
    """Play the platform for a sandbox shop: create or move an order there and deliver its message to our
    inbox, exactly as a real push would arrive. Returns the inbox event."""
    import json
    import secrets

    from common.inbox import nudge

    from .models import OrderInboxEvent, SandboxOrder
    from .tasks import process_order_event

    if not shop.is_sandbox:
        raise OrderError("只有沙箱店铺可以模拟订单")
    if status not in PLATFORM_STATES:
        raise OrderError(f"沙箱平台没有状态 {status!r}；可选：{', '.join(PLATFORM_STATES)}")
    product = Product.objects.filter(shop=shop, item_id=item_id).first()
    if product is None:
        items = list(Product.objects.filter(shop=shop).order_by("item_id").values_list("item_id", flat=True)[:20])
        raise OrderError(f"沙箱店铺 {shop.name} 没有商品 {item_id!r}；本店商品：{', '.join(items) or '（无）'}")
    if quantity < 1 or amount_fen < 0:
        raise OrderError("数量至少为 1，金额不能为负")
    now = timezone.now()
    order_no = order_no or f"SBX{now:%Y%m%d%H%M%S}{secrets.randbelow(10**6):06d}"
    with transaction.atomic():
        SandboxOrder.objects.update_or_create(
            shop=shop, order_no=order_no,
            defaults={"status": status, "item_id": item_id, "title": product.title,
                      "quantity": quantity, "amount_fen": amount_fen, "modified_at": now})
        body = {"order_no": order_no, "status": status, "modified_at": now.isoformat()}
        event = OrderInboxEvent.objects.create(
            source="sandbox", key=f"sandbox:{order_no}:{status}:{now.timestamp()}", topic="order", shop=shop,
            platform_order_id=order_no, body=json.dumps(body))
        transaction.on_commit(lambda: nudge(process_order_event, event.pk))
    return event
