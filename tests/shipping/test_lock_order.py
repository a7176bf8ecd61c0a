"""The hook path and the dispatcher at the same time, on PostgreSQL (DESIGN.md §4.3).

A platform message closes or refunds an order (order_sync → on_closed hook → shipment_cancel: locks the order,
its shipment, its codes, the product) while a worker dispatches the order's shipment (shipment_dispatch: gives
up, cancels, or ships and records the result under the order and shipment locks). Both run in their own
connection, released together by a barrier, many times over. Whatever the interleaving: no deadlock, no
LockOrderError, and one consistent end — codes released exactly once and stock back, or the goods shipped and
nothing released.

A path that locks against the one order (order → shipment → codes → product) fails here: through
`common.locks` as a LockOrderError, around it as PostgreSQL's "deadlock detected"."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.services import shop_upsert
from orders.adapters.base import OrderSnapshot
from orders.models import Order, Product, SandboxOrder, StockMovement
from orders.services import order_sync
from shipping.models import CardCode, Shipment
from shipping.services import cardcode_import, shipment_dispatch

pytestmark = pytest.mark.django_db(transaction=True)

ROUNDS = 12          # per scenario; each round is one race between the two paths
QUANTITY = 2
POOL = 5

# What the worker finds when it comes to the shipment:
#   ship      — a normal due shipment: it marks `sending`, ships on the (sandbox) platform, records the result
#   give_up   — attempts used up: it gives the shipment up (failed, notified, order note)
#   refused   — the platform refuses the ship call: it records the failure (cancel or give up)
# and what the platform message says: the order was closed, or a refund started.
SCENARIOS = list(itertools.product(["ship", "give_up", "refused"], ["closed", "refunding"]))
_seq = itertools.count()


def _race(*fns) -> list[BaseException]:
    """Run each function in its own thread and database connection, released together; return the errors."""
    barrier = threading.Barrier(len(fns))
    errors: list[BaseException] = []

    def run(fn):
        try:
            barrier.wait(timeout=10)
            fn()
        except BaseException as exc:  # noqa: BLE001 - every failure is the test's business
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(fn,)) for fn in fns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a path is still waiting for a lock after 60 s"
    return errors


@pytest.fixture
def shop():
    return shop_upsert(platform="sandbox", name="锁顺序测试店", app_key="sbx-locks", app_secret="s")[0]


def _order(shop, worker: str):
    """A paid sandbox order for QUANTITY codes of its own product, its shipment scheduled a minute ahead."""
    n = next(_seq)
    item, order_no = f"lock-item-{n}", f"LOCK{n:04d}"
    product = Product.objects.create(shop=shop, item_id=item, title=f"卡密 {n}", kind="virtual", auto_ship=True,
                                     ship_delay_min=1, ship_delay_max=1, stock=0,
                                     delivery_template="{% for c in codes %}{{ c }}\n{% endfor %}")
    cardcode_import(product=product, lines=[f"CODE-{n}-{i}" for i in range(POOL)])
    SandboxOrder.objects.create(shop=shop, order_no=order_no, status="paid" if worker != "refused" else "closed",
                                item_id=item, quantity=QUANTITY, modified_at=timezone.now())
    order = order_sync(shop=shop, snapshot=OrderSnapshot(
        platform_order_id=order_no, raw_status="paid", target_status="paid", item_id=item, quantity=QUANTITY,
        updated_at=timezone.now())).order
    shipment = Shipment.objects.get(order=order)
    assert shipment.status == "scheduled"
    if worker == "give_up":
        Shipment.objects.filter(pk=shipment.pk).update(attempts=settings.SHIP_MAX_ATTEMPTS)
    return order, shipment, product


def _platform_says(shop, order: Order, target: str):
    def hook_path():
        order_sync(shop=shop, snapshot=OrderSnapshot(
            platform_order_id=order.platform_order_id, raw_status=target, target_status=target,
            updated_at=timezone.now() + timedelta(seconds=1)))
    return hook_path


def _worker(shipment: Shipment):
    def dispatcher():
        shipment_dispatch(shipment_id=shipment.pk, now=shipment.due_at)
    return dispatcher


def _check(order: Order, shipment: Shipment, product: Product, target: str) -> str:
    """The end state is one of the three consistent ones; returns which."""
    s = Shipment.objects.get(pk=shipment.pk)
    o = Order.objects.get(pk=order.pk)
    p = Product.objects.get(pk=product.pk)
    codes = list(CardCode.objects.filter(product=product).values_list("status", "order_id"))
    released = list(StockMovement.objects.filter(order=order, reason="release").values_list("change", flat=True))
    assert o.status == target, (o.platform_order_id, o.status)
    if s.status == "shipped":
        # The goods went out before the close reached the shipment: nothing is given back.
        assert sorted(codes) == sorted([("delivered", o.pk)] * QUANTITY + [("available", None)] * (POOL - QUANTITY))
        assert released == [] and p.stock == POOL - QUANTITY
        return "shipped"
    assert s.status == "cancelled", (o.platform_order_id, s.status, s.last_error)
    if s.content_handed_at is not None:
        # The content reached the buyer before the close stopped the platform shipment: the codes stay with
        # this order (never sold again) and nothing is given back.
        assert sorted(codes) == sorted([("delivered", o.pk)] * QUANTITY + [("available", None)] * (POOL - QUANTITY))
        assert released == [] and p.stock == POOL - QUANTITY
        return "handed-then-cancelled"
    assert codes == [("available", None)] * POOL, (o.platform_order_id, codes)
    assert released == [QUANTITY], (o.platform_order_id, released)  # released exactly once
    assert p.stock == POOL and s.stock_taken == 0
    return "cancelled"


@pytest.mark.parametrize("worker, target", SCENARIOS)
def test_closing_an_order_while_its_shipment_is_dispatched_never_deadlocks(postgres, shop, worker, target):
    ends = []
    for _ in range(ROUNDS):
        order, shipment, product = _order(shop, worker)
        errors = _race(_platform_says(shop, order, target), _worker(shipment))
        assert errors == [], f"{order.platform_order_id}: {errors!r}"
        ends.append(_check(order, shipment, product, target))
    if worker != "ship":
        assert set(ends) == {"cancelled"}  # nothing was sent: every code and unit comes back

