"""order_sync: the state machine driven by platform reports (no HTTP here)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import shop_upsert
from orders import hooks
from orders.adapters.base import OrderSnapshot
from orders.models import Order, Product
from orders.services import OutOfStock, order_sync, stock_adjust

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop():
    return shop_upsert(platform="sandbox", name="沙箱", app_key="sbx", app_secret="s")[0]


def snap(status, oid="A1", **kw):
    kw.setdefault("item_id", "i1")
    return OrderSnapshot(platform_order_id=oid, raw_status=status, target_status=status, **kw)


def test_first_sight_of_a_shipped_order_does_not_trigger_our_post_payment_steps(shop):
    seen = []
    hooks.on_ready_to_ship.append(seen.append)
    try:
        result = order_sync(shop=shop, snapshot=snap("shipped"))
    finally:
        hooks.on_ready_to_ship.remove(seen.append)
    assert result.order.status == "shipped" and result.applied == ["pay", "ship"]
    assert seen == []


def test_paid_order_is_held_by_a_gate_then_released(shop):
    def gate(order):
        return "需要 KYC"

    hooks.paid_gates.append(gate)
    try:
        order = order_sync(shop=shop, snapshot=snap("paid")).order
    finally:
        hooks.paid_gates.remove(gate)
    assert order.status == "awaiting_kyc"
    from orders.services import order_release

    assert order_release(order=order).status == "ready_to_ship"


def test_money_is_decimal_yuan(shop):
    order = order_sync(shop=shop, snapshot=snap("paid", amount=Decimal("12.30"))).order
    order.refresh_from_db()
    assert order.amount == Decimal("12.30")


def test_same_report_twice_changes_nothing(shop):
    t = timezone.now()
    first = order_sync(shop=shop, snapshot=snap("paid"), event_at=t).order
    events = first.events.count()
    result = order_sync(shop=shop, snapshot=snap("paid"), event_at=t)
    assert result.outcome == "unchanged" and result.order.events.count() == events


def test_stale_report_is_ignored(shop):
    t = timezone.now()
    order_sync(shop=shop, snapshot=snap("completed"), event_at=t)
    result = order_sync(shop=shop, snapshot=snap("paid"), event_at=t - timedelta(seconds=1))
    assert result.outcome == "stale"
    assert Order.objects.get().status == "completed"


def test_refund_path_from_ready_to_ship(shop):
    t = timezone.now()
    order_sync(shop=shop, snapshot=snap("paid"), event_at=t)
    result = order_sync(shop=shop, snapshot=snap("refunded"), event_at=t + timedelta(seconds=1))
    assert result.applied == ["start_refund", "refund"] and result.order.status == "refunded"


def test_receiver_is_encrypted_at_rest(shop):
    from django.db import connection

    order_sync(shop=shop, snapshot=snap("paid", receiver={"name": "张三", "phone": "13800138000"}))
    with connection.cursor() as cur:
        cur.execute("SELECT receiver FROM orders_order")
        raw = cur.fetchone()[0]
    assert "13800138000" not in raw and "张三" not in raw
    assert Order.objects.get().receiver["phone"] == "13800138000"


def test_stock_never_goes_below_zero(shop):
    p = Product.objects.create(shop=shop, item_id="i1", title="t", stock=2)
    stock_adjust(product=p, change=-2, reason="sold")
    with pytest.raises(OutOfStock):
        stock_adjust(product=p, change=-1, reason="sold")
    p.refresh_from_db()
    assert p.stock == 0 and p.movements.count() == 1
