"""The order spine end to end: a signed 闲管家 push → inbox → worker → order in its state machine."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from accounts.services import shop_upsert
from common.inbox import INBOX_HANDLERS, process
from common.models import InboxEvent, RejectedWebhook
from orders.models import Order, OrderEvent, OrderInboxEvent, Product
from tests.fakes.xianguanjia import FakeXianguanjia, signed_push

APP_KEY, SECRET = "xgj-app", "xgj-secret"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(settings):
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        yield server


@pytest.fixture
def shop(fake):
    shop, _ = shop_upsert(platform="xianguanjia", name="闲管家测试店", app_key=APP_KEY, app_secret=SECRET)
    Product.objects.create(shop=shop, item_id="item-1", title="激活码", auto_ship=False)
    return shop


def push(client: Client, payload: dict, *, secret: str = SECRET, query: str | None = None):
    qs, body = signed_push(APP_KEY, secret, payload)
    return client.post(f"/webhooks/xianguanjia/?{query if query is not None else qs}", data=body,
                       content_type="application/json")


def payload(order_no: str, status: int, modify_time: int, refund_status: int = 0) -> dict:
    return {"seller_id": 1, "user_name": "卖家", "order_no": order_no, "order_type": 1,
            "order_status": status, "refund_status": refund_status, "modify_time": modify_time}


def test_signed_paid_push_reaches_ready_to_ship_with_its_event_log(fake, shop):
    now = int(time.time())
    fake.add_order("3001", status=12, item_id="item-1", quantity=2, amount_fen=1999, update_time=now)

    resp = push(Client(), payload("3001", 12, now))

    assert resp.status_code == 200 and resp.json() == {"result": "success"}
    order = Order.objects.get(shop=shop, platform_order_id="3001")
    assert order.status == "ready_to_ship"
    assert str(order.amount) == "19.99" and order.quantity == 2 and order.product.item_id == "item-1"
    log = list(order.events.values_list("kind", "from_status", "to_status", "actor"))
    assert log == [
        ("created", "", "pending_payment", "platform"),
        ("transition", "pending_payment", "paid", "platform"),
        ("transition", "paid", "ready_to_ship", "system"),
    ]
    assert OrderInboxEvent.objects.get().status == InboxEvent.Status.PROCESSED


def test_same_push_three_times_at_once_yields_one_order_and_one_set_of_events(postgres, fake, shop):
    now = int(time.time())
    fake.add_order("3002", status=12, item_id="item-1", update_time=now)
    qs, body = signed_push(APP_KEY, SECRET, payload("3002", 12, now))
    barrier = threading.Barrier(3)
    answers = []

    def send():
        try:
            barrier.wait()
            r = Client().post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")
            answers.append((r.status_code, r.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert answers == [(200, {"result": "success"})] * 3
    assert OrderInboxEvent.objects.count() == 1
    assert Order.objects.count() == 1
    assert OrderEvent.objects.count() == 3
    assert Order.objects.get().status == "ready_to_ship"


@pytest.mark.parametrize("case", ["bad-sign", "missing-sign", "wrong-secret", "unknown-appid", "old-timestamp"])
def test_bad_or_missing_signature_answers_4xx_and_changes_nothing(fake, shop, case):
    now = int(time.time())
    fake.add_order("3003", status=12, item_id="item-1", update_time=now)
    qs, body = signed_push(APP_KEY, SECRET, payload("3003", 12, now))
    if case == "bad-sign":
        qs = qs.replace("sign=", "sign=0")
    elif case == "missing-sign":
        qs = "&".join(p for p in qs.split("&") if not p.startswith("sign="))
    elif case == "wrong-secret":
        qs, body = signed_push(APP_KEY, "not-the-secret", payload("3003", 12, now))
    elif case == "unknown-appid":
        qs, body = signed_push("someone-else", SECRET, payload("3003", 12, now))
    elif case == "old-timestamp":
        qs, body = signed_push(APP_KEY, SECRET, payload("3003", 12, now), timestamp=now - 3600)

    resp = Client().post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")

    assert 400 <= resp.status_code < 500
    assert OrderInboxEvent.objects.count() == 0
    assert Order.objects.count() == 0 and OrderEvent.objects.count() == 0
    rejected = RejectedWebhook.objects.get()
    assert rejected.source == "xianguanjia" and len(rejected.body_excerpt) <= RejectedWebhook.EXCERPT_BYTES
    assert fake.calls("detail") == 0


def test_a_tampered_body_is_rejected(fake, shop):
    now = int(time.time())
    qs, body = signed_push(APP_KEY, SECRET, payload("3004", 12, now))
    tampered = body.replace(b"3004", b"3005")
    resp = Client().post(f"/webhooks/xianguanjia/?{qs}", data=tampered, content_type="application/json")
    assert resp.status_code == 401
    assert OrderInboxEvent.objects.count() == 0 and Order.objects.count() == 0


def test_older_status_after_newer_one_is_ignored(fake, shop):
    now = int(time.time())
    fake.add_order("3006", status=21, item_id="item-1", update_time=now)
    client = Client()
    assert push(client, payload("3006", 21, now)).status_code == 200
    order = Order.objects.get(platform_order_id="3006")
    assert order.status == "shipped"
    events_before = order.events.count()

    # The "paid" message was sent earlier but arrives late.
    assert push(client, payload("3006", 12, now - 120)).status_code == 200

    order.refresh_from_db()
    assert order.status == "shipped"
    assert order.events.count() == events_before
    late = OrderInboxEvent.objects.order_by("received_at").last()
    assert late.status == InboxEvent.Status.IGNORED and late.result.startswith("stale")


def test_platform_5xx_in_processing_leaves_the_event_stored_and_retryable(fake, shop):
    now = int(time.time())
    fake.add_order("3007", status=12, item_id="item-1", update_time=now)
    fake.fail_next(1, status=500)

    assert push(Client(), payload("3007", 12, now)).status_code == 200

    event = OrderInboxEvent.objects.get()
    assert event.status == InboxEvent.Status.FAILED
    assert "500" in event.last_error and event.next_attempt_at is not None
    assert Order.objects.count() == 0

    assert process(OrderInboxEvent, event.pk, INBOX_HANDLERS[OrderInboxEvent], force=True) == "processed"
    assert Order.objects.get(platform_order_id="3007").status == "ready_to_ship"


def test_a_crash_in_processing_keeps_the_event_with_its_traceback(fake, shop, monkeypatch):
    now = int(time.time())
    fake.add_order("3008", status=12, item_id="item-1", update_time=now)
    import orders.services

    def boom(**kwargs):
        raise RuntimeError("worker fell over")

    monkeypatch.setattr(orders.services, "order_sync", boom)
    assert push(Client(), payload("3008", 12, now)).status_code == 200
    event = OrderInboxEvent.objects.get()
    assert event.status == InboxEvent.Status.FAILED
    assert "worker fell over" in event.last_error and "Traceback" in event.traceback
    assert Order.objects.count() == 0

    monkeypatch.undo()
    from django.core.management import call_command

    call_command("replay_events", "--failed")
    assert Order.objects.get(platform_order_id="3008").status == "ready_to_ship"


def test_broker_down_at_ingest_still_stores_and_the_sweeper_processes(fake, shop, monkeypatch):
    now = int(time.time())
    fake.add_order("3009", status=12, item_id="item-1", update_time=now)
    from orders.tasks import process_order_event, sweep_inbox

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(process_order_event, "delay", down)
    assert push(Client(), payload("3009", 12, now)).status_code == 200
    event = OrderInboxEvent.objects.get()
    assert event.status == InboxEvent.Status.PENDING and Order.objects.count() == 0

    monkeypatch.undo()
    OrderInboxEvent.objects.filter(pk=event.pk).update(received_at=event.received_at.replace(year=2000))
    assert sweep_inbox() == 1
    assert Order.objects.get(platform_order_id="3009").status == "ready_to_ship"


def test_refund_then_refund_closed_returns_the_order_where_it_was(fake, shop):
    now = int(time.time())
    fake.add_order("3010", status=12, item_id="item-1", update_time=now)
    client = Client()
    push(client, payload("3010", 12, now))
    fake.orders["3010"]["refund_status"] = 1
    push(client, payload("3010", 12, now + 10, refund_status=1))
    assert Order.objects.get(platform_order_id="3010").status == "refunding"
    fake.orders["3010"]["refund_status"] = 6
    push(client, payload("3010", 12, now + 20, refund_status=6))
    assert Order.objects.get(platform_order_id="3010").status == "ready_to_ship"


def test_an_impossible_jump_is_recorded_as_an_anomaly_not_a_crash(fake, shop):
    now = int(time.time())
    fake.add_order("3011", status=24, item_id="item-1", update_time=now)
    client = Client()
    push(client, payload("3011", 24, now))
    assert Order.objects.get(platform_order_id="3011").status == "closed"
    fake.orders["3011"]["order_status"] = 21
    push(client, payload("3011", 21, now + 5))
    order = Order.objects.get(platform_order_id="3011")
    assert order.status == "closed" and order.has_anomaly
    assert order.events.filter(kind="anomaly").count() == 1
    assert OrderInboxEvent.objects.filter(status=InboxEvent.Status.PROCESSED).count() == 2


def test_malformed_json_with_a_valid_signature_is_refused(fake, shop):
    from tests.fakes.xianguanjia import sign_query

    body = b"{not json"
    resp = Client().post(f"/webhooks/xianguanjia/?{sign_query(APP_KEY, SECRET, body)}", data=body,
                         content_type="application/json")
    assert resp.status_code == 400
    assert OrderInboxEvent.objects.count() == 0
    assert json.loads(resp.content)["error"].startswith("malformed")


def test_open_platform_relay_from_message_to_ready_to_ship(settings):
    from urllib.parse import urlencode

    from orders.adapters.goofish import TOPIC_ORDER
    from tests.fakes.goofish import FakeGoofish, signed_relay

    with FakeGoofish() as top:
        top.apps["gk"] = "gs"
        top.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = top.url + "/router/rest"
        shop, _ = shop_upsert(platform="goofish", name="开放平台店", app_key="gk", app_secret="gs",
                              session_token="seller-session")
        top.add_order("7101", status=2)
        form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7101", "order_status": 2}, msg_id="m-7101")
        for _ in range(2):  # the relay retries: one order, one set of events
            resp = Client().post("/webhooks/goofish/", data=urlencode(form),
                                 content_type="application/x-www-form-urlencoded")
            assert resp.status_code == 200
    order = Order.objects.get(shop=shop, platform_order_id="7101")
    assert order.status == "ready_to_ship"
    assert OrderInboxEvent.objects.count() == 1


def test_paid_push_to_shipped_with_the_code_in_front_of_the_buyer(fake, shop):
    """The whole spine on any database: signed push → inbox → order → shipment → platform ship → the buyer's
    page shows the card code."""
    from shipping.models import CardCode, Shipment
    from shipping.services import cardcode_import

    product = Product.objects.create(shop=shop, item_id="card-9", title="会员卡", kind="virtual", auto_ship=True,
                                     card_kind_id="84",
                                     delivery_template="激活码：{% for c in codes %}{{ c }}{% endfor %}")
    cardcode_import(product=product, lines=["SPINE-CODE-1"])
    fake.add_kind(84, item_id="card-9")  # the item bound to the 卡种 in the 闲管家 UI
    now = int(time.time())
    order_no = "3020000000000000001"  # 闲管家 order numbers have 19+ digits
    fake.add_order(order_no, status=12, item_id="card-9", update_time=now)

    assert push(Client(), payload(order_no, 12, now)).status_code == 200

    order = Order.objects.get(platform_order_id=order_no)
    assert order.status == "shipped"
    assert fake.orders[order_no]["order_status"] == 21  # shipped on the platform too
    assert fake.buyer_received == {order_no: ["SPINE-CODE-1"]}  # 闲管家's card message reached the buyer
    shipment = Shipment.objects.get(order=order)
    assert shipment.status == "shipped" and shipment.attempts == 1
    assert CardCode.objects.get().status == "delivered"
    page = Client().get(f"/delivery/{shipment.token}/")
    assert page.status_code == 200 and "SPINE-CODE-1" in page.content.decode()
    assert [e.to_status for e in order.events.filter(kind="transition")] == ["paid", "ready_to_ship", "shipped"]


def test_open_platform_refund_reopened_later_is_applied_and_an_exact_redelivery_is_not(settings):
    """Relayed messages without msg_id: the same refund status published again later is a new message (the
    buyer asked again after the seller refused); the same publication relayed twice is one."""
    from datetime import datetime, timedelta
    from urllib.parse import urlencode

    from orders.adapters.goofish import TOPIC_ORDER, TOPIC_REFUND
    from tests.fakes.goofish import CST, FakeGoofish, signed_relay

    def at(seconds: int) -> str:
        return (datetime.now(CST) + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")

    def relay(form: dict) -> None:
        resp = Client().post("/webhooks/goofish/", data=urlencode(form),
                             content_type="application/x-www-form-urlencoded")
        assert resp.status_code == 200

    with FakeGoofish() as top:
        top.apps["gk"] = "gs"
        top.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = top.url + "/router/rest"
        shop, _ = shop_upsert(platform="goofish", name="开放平台店", app_key="gk", app_secret="gs",
                              session_token="seller-session")
        top.add_order("7102", status=2)
        order_of = lambda: Order.objects.get(shop=shop, platform_order_id="7102")  # noqa: E731

        relay(signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7102", "order_status": 2}, pub_time=at(1)))
        assert order_of().status == "ready_to_ship"
        relay(signed_relay("gk", "gs", TOPIC_REFUND, {"order_id": "7102", "order_status": 1}, pub_time=at(2)))
        assert order_of().status == "refunding"
        relay(signed_relay("gk", "gs", TOPIC_REFUND, {"order_id": "7102", "order_status": 6}, pub_time=at(3)))
        assert order_of().status == "ready_to_ship"  # the seller refused the refund
        reopened = signed_relay("gk", "gs", TOPIC_REFUND, {"order_id": "7102", "order_status": 1}, pub_time=at(4))
        relay(reopened)
        assert order_of().status == "refunding"  # the same content as the first refund message: applied
        relay(reopened)  # the relay delivers it again

    assert OrderInboxEvent.objects.count() == 4
    assert [e.to_status for e in order_of().events.filter(kind="transition")] == [
        "paid", "ready_to_ship", "refunding", "ready_to_ship", "refunding"]
