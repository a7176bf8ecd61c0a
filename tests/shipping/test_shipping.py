"""Shipping: delay window, exactly-once ship against the fake 闲管家 server, card codes, cancellation,
retries, the delivery page, the staff queue."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from orders.models import Order, Product, StockMovement
from shipping import services
from shipping.models import CardCode, DeliveryView, Shipment
from shipping.services import (
    LEASE,
    ShippingError,
    cardcode_import,
    due_shipments,
    shipment_dispatch,
    shipment_ship_manual,
)

from .conftest import events, paid, sms_to_buyer, stored_notifications, sync_status, travel, with_codes

pytestmark = pytest.mark.django_db

# A fixed instant an hour ahead, so orders created at the real now are due by then.
T0 = timezone.now().replace(microsecond=0) + timedelta(hours=1)


def ship_bodies(fake, order_no: str) -> list[dict]:
    """Bodies of the calls that ship an order: physical (order/ship) and virtual (dummy/send)."""
    return [json.loads(r.body) for r in fake.requests
            if r.path in ("/api/open/order/ship", "/api/open/trade/logistics/dummy/send")
            and json.loads(r.body).get("order_no") == order_no]


def get(pk) -> Shipment:
    return Shipment.objects.select_related("order").get(pk=pk)


# --- scheduling ------------------------------------------------------------------------------------------


def test_delay_window_is_respected_and_the_sweeper_only_sees_due_work(fake, shop, product):
    product.ship_delay_min, product.ship_delay_max = 5, 10
    product.save()
    with travel(T0):
        order = paid(fake, shop, "D1")
    s = order.shipment
    assert s.status == "scheduled"
    assert T0 + timedelta(minutes=5) <= s.due_at <= T0 + timedelta(minutes=10)
    assert s.due_at.microsecond == 0  # seconds granularity

    early = s.due_at - timedelta(seconds=1)
    assert s.pk not in due_shipments(now=early)
    with travel(early):
        assert shipment_dispatch(shipment_id=s.pk, now=early) == "not-due"
    assert fake.ship_calls["D1"] == 0
    assert s.pk in due_shipments(now=s.due_at)
    with travel(s.due_at):
        assert shipment_dispatch(shipment_id=s.pk, now=s.due_at) == "shipped"
    assert fake.ship_calls["D1"] == 1
    assert Order.objects.get(pk=order.pk).status == "shipped"


def test_random_delay_spans_the_window_in_whole_seconds(product):
    product.ship_delay_min, product.ship_delay_max = 1, 3
    delays = {services.random_delay(product).total_seconds() for _ in range(300)}
    assert min(delays) >= 60 and max(delays) <= 180 and len(delays) > 20
    assert all(d == int(d) for d in delays)
    product.ship_delay_min = product.ship_delay_max = 0
    assert services.random_delay(product) == timedelta(0)


@pytest.mark.django_db(transaction=True)
def test_zero_delay_order_ships_once_on_commit_with_rendered_codes(fake, shop, product, sms):
    with_codes(product, ["CODE-A"])
    order = paid(fake, shop, "Z1")
    s = get(order.shipment.pk)
    assert s.status == "shipped" and s.method == "auto" and s.attempts == 1
    assert s.content == "您的激活码：CODE-A"
    assert fake.ship_calls["Z1"] == 1
    # 闲管家 gets a status-only virtual shipment (no invented waybill); the buyer gets the link by SMS
    assert ship_bodies(fake, "Z1") == [{"order_no": "Z1", "send_way": 1}]
    assert sms_to_buyer(sms) == [
        f"您好，您在闲鱼购买的「会员激活码」已发货（订单号 Z1）。请打开链接查看发货内容：{s.delivery_url}"]
    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert CardCode.objects.get().status == "delivered"
    # the code is stored encrypted
    with connection.cursor() as cur:
        cur.execute("SELECT content FROM shipping_shipment WHERE id = %s", [s.pk])
        assert "CODE-A" not in cur.fetchone()[0]


def test_physical_goods_go_to_the_manual_queue_and_notify(fake, shop, notes):
    Product.objects.create(shop=shop, item_id="phys", title="手机壳", kind="physical", auto_ship=True)
    order = paid(fake, shop, "P1", item_id="phys")
    s = order.shipment
    assert s.status == "awaiting_staff" and "运单号" in s.manual_reason
    assert "shipment.manual_needed" in events(notes)
    [stored] = stored_notifications("shipment.manual_needed")
    assert stored["order"] == "P1" and "运单号" in stored["reason"]
    assert s.pk not in due_shipments(now=T0 + timedelta(days=1))


def test_auto_ship_off_or_unknown_product_go_to_the_manual_queue(fake, shop, product, notes):
    product.auto_ship = False
    product.save()
    assert paid(fake, shop, "M1").shipment.status == "awaiting_staff"
    assert paid(fake, shop, "M2", item_id="nope").shipment.manual_reason == "未配置商品规则"
    assert events(notes).count("shipment.manual_needed") == 2


# --- card codes --------------------------------------------------------------------------------------------


def test_import_reports_duplicates_and_restocks_limited_stock(product):
    product.stock = 0
    product.save()
    report = cardcode_import(product=product, lines=["A", " B ", "", "A", "\ufeffC", "   "])
    assert (report.added, report.duplicates_in_input, report.duplicates_existing, report.blank) == (3, 1, 0, 2)
    again = cardcode_import(product=product, lines=["B", "D"])
    assert (again.added, again.duplicates_existing) == (1, 1)
    product.refresh_from_db()
    assert product.stock == 4
    assert list(StockMovement.objects.filter(product=product).order_by("pk").values_list("reason", "change")) == [
        ("restock", 3), ("restock", 1)]
    assert sorted(c.code for c in CardCode.objects.all()) == ["A", "B", "C", "D"]


def test_three_unit_order_gets_three_codes(fake, shop, product):
    with_codes(product, ["K1", "K2", "K3", "K4"])
    order = paid(fake, shop, "Q3", quantity=3)
    assert CardCode.objects.filter(order=order, status="reserved").count() == 3
    assert shipment_dispatch(shipment_id=order.shipment.pk) == "shipped"
    mine = CardCode.objects.filter(order=order)
    assert mine.count() == 3 and set(mine.values_list("status", flat=True)) == {"delivered"}
    assert get(order.shipment.pk).content == "您的激活码：K1, K2, K3"
    assert CardCode.objects.filter(status="available").count() == 1


def test_empty_pool_sends_the_order_to_the_manual_queue_and_notifies(fake, shop, product, notes):
    product.stock, product.low_stock_threshold = 0, 1
    product.save()
    with_codes(product, ["ONLY"])
    first = paid(fake, shop, "E1")
    assert first.shipment.status == "scheduled"
    assert "stock.out" in events(notes)  # the last unit was sold
    notes.clear()
    second = paid(fake, shop, "E2", quantity=1)
    s = second.shipment
    assert s.status == "awaiting_staff" and "卡密不足" in s.manual_reason
    assert events(notes) == ["stock.out", "shipment.manual_needed"]
    assert Product.objects.get(pk=product.pk).stock == 0
    assert not CardCode.objects.filter(order=second).exists()


def test_low_stock_threshold_crossing_notifies(fake, shop, product, notes):
    product.stock, product.low_stock_threshold = 0, 2
    product.save()
    with_codes(product, ["a", "b", "c", "d"])
    paid(fake, shop, "L1")   # 4 -> 3
    assert "stock.low" not in events(notes)
    paid(fake, shop, "L2")   # 3 -> 2: crosses
    assert events(notes).count("stock.low") == 1
    paid(fake, shop, "L3")   # 2 -> 1: already low
    assert events(notes).count("stock.low") == 1


def test_a_code_is_never_delivered_twice(fake, shop, product):
    with_codes(product, ["X1", "X2"])
    orders = [paid(fake, shop, f"N{i}") for i in range(3)]
    for o in orders:
        shipment_dispatch(shipment_id=o.shipment.pk)
    delivered = list(CardCode.objects.filter(status="delivered").values_list("order_id", flat=True))
    assert sorted(delivered) == sorted([orders[0].pk, orders[1].pk])
    assert get(orders[2].shipment.pk).status == "awaiting_staff"
    # a refund after delivery does not bring a delivered code back to the pool
    sync_status(shop, "N0", "refunding", "12")
    assert CardCode.objects.filter(status="available").count() == 0
    # and the database refuses a delivered code without its order
    with pytest.raises(IntegrityError), transaction.atomic():
        CardCode.objects.filter(order=orders[0]).update(order=None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_never_share_a_code(postgres, fake, shop, product):
    product.ship_delay_min = product.ship_delay_max = 60  # keep them scheduled: this is about reservation
    product.save()
    with_codes(product, [f"C{i}" for i in range(4)])
    barrier = threading.Barrier(6)
    errors = []

    def buy(i):
        try:
            barrier.wait()
            paid(fake, shop, f"R{i}")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(6)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert errors == []
    reserved = list(CardCode.objects.filter(status="reserved").values_list("order_id", flat=True))
    assert len(reserved) == 4 and len(set(reserved)) == 4
    assert Shipment.objects.filter(status="awaiting_staff").count() == 2


# --- cancellation ------------------------------------------------------------------------------------------


def test_close_before_shipping_releases_codes_and_stock(fake, shop, product):
    product.stock, product.ship_delay_min, product.ship_delay_max = 0, 10, 20
    product.save()
    with_codes(product, ["r1", "r2", "r3", "r4", "r5"])
    order = paid(fake, shop, "C1", quantity=2)
    assert Product.objects.get(pk=product.pk).stock == 3
    assert CardCode.objects.filter(status="reserved").count() == 2

    sync_status(shop, "C1", "closed", "24")

    s = get(order.shipment.pk)
    assert s.status == "cancelled" and s.stock_taken == 0
    assert CardCode.objects.filter(status="available", order__isnull=True).count() == 5
    assert Product.objects.get(pk=product.pk).stock == 5
    assert StockMovement.objects.filter(product=product, reason="release", change=2).count() == 1
    assert shipment_dispatch(shipment_id=s.pk, now=timezone.now() + timedelta(hours=1)) == "cancelled"
    assert fake.ship_calls["C1"] == 0


def test_refund_withdrawn_reschedules_the_order(fake, shop, product):
    product.stock = 5
    product.save()
    order = paid(fake, shop, "W1")
    sync_status(shop, "W1", "refunding", "12")
    assert get(order.shipment.pk).status == "cancelled"
    assert Product.objects.get(pk=product.pk).stock == 5
    sync_status(shop, "W1", "paid", "12")  # refund closed: back to ready_to_ship
    s = get(order.shipment.pk)
    assert s.status == "scheduled" and Product.objects.get(pk=product.pk).stock == 4


def test_close_while_sending_lets_the_attempt_finish_then_cancels(fake, shop, product, monkeypatch):
    product.stock = 3
    product.save()
    order = paid(fake, shop, "CS1")
    s = order.shipment
    real = services._perform

    def close_during_call(attempt, shop_):
        # The platform closes the order while our worker is between "mark sending" and the call.
        fake.orders["CS1"]["order_status"] = 24
        sync_status(shop, "CS1", "closed", "24")
        assert get(s.pk).status == "sending" and get(s.pk).cancel_requested
        return real(attempt, shop_)

    monkeypatch.setattr(services, "_perform", close_during_call)
    assert shipment_dispatch(shipment_id=s.pk) == "cancelled"
    assert Product.objects.get(pk=product.pk).stock == 3
    assert Order.objects.get(pk=order.pk).status == "closed"


# --- exactly once, retries, reconcile -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_shipment_make_one_platform_call(postgres, fake, shop, product):
    product.ship_delay_min = product.ship_delay_max = 1
    product.save()
    order = paid(fake, shop, "RACE1")
    s = order.shipment
    fake.delay_next(1, 0.5)  # the first call is slow, so the second worker arrives while it is in flight
    barrier = threading.Barrier(2)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(shipment_dispatch(shipment_id=s.pk, now=s.due_at))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert sorted(results)[-1] == "shipped" and sorted(results)[0] in ("busy", "locked-or-missing")
    assert fake.ship_calls["RACE1"] == 1
    assert get(s.pk).attempts == 1


def test_crash_after_the_platform_call_is_reconciled_without_a_second_call(fake, shop, product, monkeypatch):
    product.stock = 1
    product.save()
    order = paid(fake, shop, "K1")
    s = order.shipment

    def killed(*args, **kwargs):
        raise SystemExit("worker killed after the platform call")

    monkeypatch.setattr(services, "_record_shipped", killed)
    with travel(T0), pytest.raises(SystemExit):
        shipment_dispatch(shipment_id=s.pk, now=T0)
    monkeypatch.undo()
    assert fake.ship_calls["K1"] == 1 and get(s.pk).status == "sending"

    later = T0 + timedelta(minutes=1)
    with travel(later):
        assert s.pk not in due_shipments(now=later)
        assert shipment_dispatch(shipment_id=s.pk, now=later) == "busy"
    expired = T0 + LEASE + timedelta(seconds=1)
    assert s.pk in due_shipments(now=expired)
    with travel(expired):
        assert shipment_dispatch(shipment_id=s.pk, now=expired) == "shipped"
    assert fake.ship_calls["K1"] == 1
    done = get(s.pk)
    assert done.method == "auto" and done.attempts == 2 and not done.needs_reconcile  # the check counts
    assert Order.objects.get(pk=order.pk).status == "shipped"


def test_lost_answer_is_reconciled_at_once(fake, shop, product):
    order = paid(fake, shop, "LA1")
    fake.drop_answer_after_next_ship()
    assert shipment_dispatch(shipment_id=order.shipment.pk) == "shipped"
    assert fake.ship_calls["LA1"] == 1


def test_platform_5xx_retries_after_the_delay_then_ships(fake, shop, product):
    order = paid(fake, shop, "F1")
    s = order.shipment
    fake.fail_next(2, status=503)  # the ship call and the immediate check both fail
    with travel(T0):
        assert shipment_dispatch(shipment_id=s.pk, now=T0) == "retry_wait"
    s = get(s.pk)
    assert s.due_at == T0 + timedelta(seconds=300) and s.needs_reconcile and "503" in s.last_error
    almost = T0 + timedelta(seconds=299)
    with travel(almost):
        assert shipment_dispatch(shipment_id=s.pk, now=almost) == "not-due"
    with travel(s.due_at):
        assert shipment_dispatch(shipment_id=s.pk, now=s.due_at) == "shipped"
    assert fake.ship_calls["F1"] == 1 and get(s.pk).attempts == 2


def test_platform_5xx_every_time_fails_after_max_attempts_and_notifies(fake, shop, product, notes):
    order = paid(fake, shop, "F2")
    s = order.shipment
    fake.fail_next(20, status=500)
    when = T0
    results = []
    for _ in range(3):
        with travel(when):
            results.append(shipment_dispatch(shipment_id=s.pk, now=when))
        when += timedelta(seconds=300)
    assert results == ["retry_wait", "retry_wait", "failed"]
    s = get(s.pk)
    assert s.attempts == 3 and s.in_manual_queue and "自动发货失败" in s.manual_reason
    assert events(notes).count("shipment.failed") == 1
    [stored] = stored_notifications("shipment.failed")
    assert stored["order"] == "F2" and stored["attempts"] == 3 and "500" in stored["error"]
    with travel(when):
        assert shipment_dispatch(shipment_id=s.pk, now=when) == "failed"  # no fourth try
    assert s.pk in set(services.manual_queue().values_list("pk", flat=True))


def test_timeouts_retry_then_fail(fake, shop, product, settings, notes):
    settings.PLATFORM_HTTP_TIMEOUT = (1.0, 0.2)
    order = paid(fake, shop, "TO1")
    s = order.shipment
    fake.delay_next(20, 0.4)
    fake.fail_next(20, status=500)  # after stalling, the platform does not ship
    when = T0
    results = []
    for _ in range(3):
        with travel(when):
            results.append(shipment_dispatch(shipment_id=s.pk, now=when))
        when += timedelta(seconds=300)
    assert results == ["retry_wait", "retry_wait", "failed"]
    assert "timeout" in get(s.pk).last_error
    assert "shipment.failed" in events(notes)
    assert fake.ship_calls["TO1"] == 0


def test_configuration_error_fails_at_once_with_the_reason(fake, shop, product, notes):
    order = paid(fake, shop, "CFG1")
    fake.accounts[shop.app_key] = "rotated-secret"  # our secret is now wrong: sign error
    assert shipment_dispatch(shipment_id=order.shipment.pk) == "failed"
    s = get(order.shipment.pk)
    assert s.attempts == 1 and "sign" in s.last_error and s.in_manual_queue
    assert "shipment.failed" in events(notes)


def test_order_shipped_on_the_platform_by_someone_else_closes_the_shipment(fake, shop, product):
    product.ship_delay_min = product.ship_delay_max = 30
    product.save()
    with_codes(product, ["S1"])
    order = paid(fake, shop, "EX1")
    sync_status(shop, "EX1", "shipped", "21")
    s = get(order.shipment.pk)
    assert s.status == "shipped" and s.method == "platform"
    assert CardCode.objects.get().status == "delivered"  # never offered to another buyer
    assert fake.ship_calls["EX1"] == 0


def test_sandbox_shop_ships_through_the_sandbox_adapter(product):
    from accounts.services import shop_upsert
    from orders.models import SandboxCall, SandboxOrder
    from orders.services import sandbox_order_simulate

    shop = shop_upsert(platform="sandbox", name="沙箱", app_key="sbx-ship", app_secret="s")[0]
    Product.objects.create(shop=shop, item_id="sbx-1", title="沙箱卡", kind="virtual", auto_ship=True,
                           delivery_template="内容 {{ order_no }}")
    from orders.adapters.base import OrderSnapshot
    from orders.services import order_sync

    sandbox_order_simulate(shop=shop, item_id="sbx-1", order_no="SB1")  # the platform's side
    order = order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id="SB1", raw_status="paid",
                                                          target_status="paid", item_id="sbx-1")).order
    assert shipment_dispatch(shipment_id=order.shipment.pk) == "shipped"
    assert SandboxOrder.objects.get(order_no="SB1").status == "shipped"
    assert SandboxCall.objects.filter(method="ship_virtual").count() == 1
    assert get(order.shipment.pk).content == "内容 SB1"
    assert list(SandboxOrder.objects.get(order_no="SB1").messages.values_list("text", flat=True)) == ["内容 SB1"]


# --- delivery page -------------------------------------------------------------------------------------------


def test_delivery_page_shows_content_and_logs_each_view(fake, shop, product):
    with_codes(product, ["PAGE-CODE"])
    order = paid(fake, shop, "V1")
    shipment_dispatch(shipment_id=order.shipment.pk)
    s = get(order.shipment.pk)
    assert ship_bodies(fake, "V1")  # and the link is what a platform able to carry content would get
    assert len(s.token) >= 43
    client = Client()
    resp = client.get(f"/delivery/{s.token}/", HTTP_USER_AGENT="UA-test", REMOTE_ADDR="10.1.2.3")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "PAGE-CODE" in html and "发货内容" in html and "V1" in html
    assert resp["Cache-Control"].startswith("max-age=0") or "no-cache" in resp["Cache-Control"]
    client.get(f"/delivery/{s.token}/")
    views = list(DeliveryView.objects.filter(shipment=s).order_by("pk"))
    assert len(views) == 2 and views[0].ip == "10.1.2.3" and views[0].user_agent == "UA-test"
    assert client.get("/delivery/not-a-token/").status_code == 404
    assert DeliveryView.objects.count() == 2


def test_delivery_page_shows_nothing_before_shipping(fake, shop, product):
    product.ship_delay_min = product.ship_delay_max = 10
    product.save()
    with_codes(product, ["HIDDEN"])
    s = paid(fake, shop, "V2").shipment
    html = Client().get(f"/delivery/{s.token}/").content.decode()
    assert "HIDDEN" not in html and "正在准备发货" in html


# --- staff ----------------------------------------------------------------------------------------------------


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")


def test_manual_ship_by_staff_records_the_user_and_the_waybill(fake, shop, staff, notes):
    Product.objects.create(shop=shop, item_id="phys", title="手机壳", kind="physical", auto_ship=True, stock=2)
    order = paid(fake, shop, "MS1", item_id="phys")
    s = order.shipment
    assert s.status == "awaiting_staff"
    with pytest.raises(ShippingError, match="运单号"):
        shipment_ship_manual(shipment=s, user=staff, logistics_company="顺丰速运", express_code="shunfeng")
    assert fake.ship_calls["MS1"] == 0

    done = shipment_ship_manual(shipment=s, user=staff, logistics_company="顺丰速运", express_code="shunfeng",
                                waybill_no="SF1234567890")
    assert done.status == "shipped" and done.method == "staff" and done.shipped_by == staff
    assert ship_bodies(fake, "MS1") == [{"order_no": "MS1", "waybill_no": "SF1234567890",
                                         "express_code": "shunfeng", "express_name": "顺丰速运"}]
    order = Order.objects.get(pk=order.pk)
    ev = order.events.filter(to_status="shipped").get()
    assert order.status == "shipped" and ev.actor == "staff" and ev.user == staff


def test_staff_ship_failure_stays_in_the_queue_with_the_error(fake, shop, staff):
    Product.objects.create(shop=shop, item_id="phys", title="手机壳", kind="physical", auto_ship=False)
    s = paid(fake, shop, "MS2", item_id="phys").shipment
    fake.fail_next(1, status=400)
    result = shipment_ship_manual(shipment=s, user=staff, logistics_company="圆通", express_code="yuantong",
                                  waybill_no="YT1")
    assert result.status == "awaiting_staff" and "400" in result.last_error
    again = shipment_ship_manual(shipment=result, user=staff, logistics_company="圆通", express_code="yuantong",
                                 waybill_no="YT1")
    assert again.status == "shipped" and fake.ship_calls["MS2"] == 1


def test_admin_queue_bulk_ship_and_card_code_import(fake, shop, staff, product):
    Product.objects.create(shop=shop, item_id="phys", title="手机壳", kind="physical", auto_ship=True)
    a = paid(fake, shop, "B1", item_id="phys").shipment
    b = paid(fake, shop, "B2", item_id="phys").shipment
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/shipping/manualshipment/")
    assert page.status_code == 200 and "B1" in page.content.decode()
    form = client.post("/admin/shipping/manualshipment/", {"action": "ship_manually",
                                                          "_selected_action": [a.pk, b.pk]})
    assert form.status_code == 200 and "批量人工发货" in form.content.decode()
    resp = client.post("/admin/shipping/manualshipment/", {
        "action": "ship_manually", "_selected_action": [a.pk, b.pk], "apply": "1",
        "logistics_company": "中通快递", "express_code": "zhongtong", "waybills": "B2 ZT002\nB1 ZT001"})
    assert resp.status_code == 302
    assert {get(a.pk).waybill_no, get(b.pk).waybill_no} == {"ZT001", "ZT002"}
    assert get(a.pk).status == get(b.pk).status == "shipped"
    assert ship_bodies(fake, "B1")[0]["waybill_no"] == "ZT001"

    single = client.get(f"/admin/shipping/manualshipment/{a.pk}/ship/")
    assert single.status_code == 200

    resp = client.post("/admin/shipping/cardcode/import/", {"product": product.pk, "text": "IMP1\nIMP2\nIMP1\n"})
    assert resp.status_code == 302 and CardCode.objects.filter(product=product).count() == 2
    listing = client.get("/admin/shipping/cardcode/").content.decode()
    assert "IMP1" in listing  # superuser holds accounts.view_pii

    clerk = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    clerk.user_permissions.add(Permission.objects.get(codename="view_cardcode"))
    client.force_login(clerk)
    listing = client.get("/admin/shipping/cardcode/").content.decode()
    assert "IMP1" not in listing and "IM**P1" not in listing and "**" in listing
