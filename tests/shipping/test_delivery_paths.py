"""How content reaches the buyer, step by step: each way's exactly-once rules when an answer is lost, a worker
dies or a channel is slow; the manual queue when the content cannot get there; slow goods; staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from accounts.services import shop_upsert
from notifications.models import Notification
from orders.adapters.base import OrderSnapshot
from orders.models import Order, Product
from orders.services import order_sync
from shipping import services
from shipping.models import CardCode, Shipment
from shipping.services import LEASE, ShippingError, cardcode_import, shipment_dispatch, shipment_ship_manual
from tests.fakes.goofish import FakeGoofish
from tests.fakes.server import Response

from .conftest import events, paid, sms_to_buyer, sync_status, travel

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) + timedelta(hours=1)
LATER = T0 + timedelta(seconds=301)
NO = "3001000000000000001"


def get(pk) -> Shipment:
    return Shipment.objects.select_related("order").get(pk=pk)


def dispatch(order_or_shipment, when=T0) -> str:
    pk = order_or_shipment.shipment.pk if isinstance(order_or_shipment, Order) else order_or_shipment.pk
    with travel(when):
        return shipment_dispatch(shipment_id=pk, now=when)


def undelivered() -> list[dict]:
    return list(Notification.objects.filter(event="shipment.undelivered").order_by("pk")
                .values_list("context", flat=True))


# --- 闲管家 card pool -----------------------------------------------------------------------------------------


@pytest.fixture
def pool_product(fake, shop):
    product = Product.objects.create(shop=shop, item_id="card-1", title="会员激活码", kind="virtual", auto_ship=True,
                                     card_kind_id="84")
    cardcode_import(product=product, lines=["POOL-1"])
    fake.add_kind(84, item_id="card-1")
    return product


def test_card_pool_send_whose_answer_is_lost_is_proven_without_a_second_send(fake, shop, pool_product):
    order = paid(fake, shop, NO)
    fake.drop_answer_after_next_ship()
    assert dispatch(order) == "shipped"
    assert fake.calls("dummy_send") == 1 and fake.buyer_received == {NO: ["POOL-1"]}
    assert list(get(order.shipment.pk).handovers.values_list("status", flat=True)) == ["delivered"]


def test_card_pool_upload_whose_answer_is_lost_adds_the_code_only_once(fake, shop, pool_product):
    order = paid(fake, shop, NO)
    fake.drop_answer_after_next_upload()
    assert dispatch(order) == "retry_wait"
    s = get(order.shipment.pk)
    assert s.needs_reconcile and s.pool_uploaded_at is None
    assert fake.kinds[84] == [{"card_no": "", "card_pwd": "POOL-1"}]
    assert fake.calls("dummy_send") == 0
    assert dispatch(order, LATER) == "shipped"
    assert fake.calls("storage_create") == 2          # sent again: is_repeat=0 kept a single copy
    assert fake.sold[84] == [{"card_no": "", "card_pwd": "POOL-1"}] and fake.kinds[84] == []
    assert fake.buyer_received == {NO: ["POOL-1"]}
    assert list(get(s.pk).handovers.values_list("status", flat=True)) == ["unknown", "delivered"]


def test_card_pool_codes_held_by_a_declaration_are_not_shipped_until_the_buyer_confirms(fake, shop, pool_product):
    fake.declare("card-1")  # the item has a 发货申明
    order = paid(fake, shop, NO)
    assert dispatch(order) == "retry_wait"
    s = get(order.shipment.pk)
    assert s.status_sent_at is not None and s.content_handed_at is None and s.needs_reconcile
    assert fake.orders[NO]["order_status"] == 21 and fake.buyer_received == {}
    assert list(s.handovers.values_list("status", flat=True)) == ["held"]
    assert CardCode.objects.get().status == "reserved"

    sync_status(shop, NO, "shipped", "21")  # the platform's push: shipped; our handover is not done
    assert get(s.pk).status == "retry_wait" and Order.objects.get(pk=order.pk).status == "shipped"

    fake.buyer_confirms(NO)
    assert dispatch(order, LATER) == "shipped"
    assert fake.calls("dummy_send") == 1 and fake.buyer_received == {NO: ["POOL-1"]}
    assert CardCode.objects.get().status == "delivered"


def test_card_pool_held_too_long_goes_to_the_queue(fake, shop, pool_product, settings):
    fake.declare("card-1")
    order = paid(fake, shop, NO)
    when = T0
    results = []
    for _ in range(settings.SHIP_MAX_ATTEMPTS):
        results.append(dispatch(order, when))
        when += timedelta(seconds=301)
    assert results == ["retry_wait", "retry_wait", "failed"]
    s = get(order.shipment.pk)
    assert s.manual_reason.startswith("发货内容未送达买家：已尝试 3 次：闲管家已标记发货，但卡密尚未发出")
    assert fake.calls("dummy_send") == 1 and [n["order"] for n in undelivered()] == [NO]


def test_card_pool_without_a_kind_goes_to_the_queue_with_the_reason(fake, shop):
    Product.objects.create(shop=shop, item_id="card-1", title="会员激活码", kind="virtual", auto_ship=True)
    order = paid(fake, shop, NO)
    assert dispatch(order) == "failed"
    s = get(order.shipment.pk)
    assert s.manual_reason.startswith("发货内容未送达买家：闲管家没有给买家发消息的接口：请为商品填写卡种 ID")
    assert fake.ship_calls[NO] == 0 and [n["order"] for n in undelivered()] == [NO]


# --- open platform: delivery message ---------------------------------------------------------------------


@pytest.fixture
def top(settings):
    with FakeGoofish() as server:
        server.apps["gk"] = "gs"
        server.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = server.url + "/router/rest"
        settings.PUBLIC_BASE_URL = "https://shop.example"
        yield server


@pytest.fixture
def gshop(top):
    return shop_upsert(platform="goofish", name="开放平台店", app_key="gk", app_secret="gs",
                       session_token="seller-session")[0]


# The TOP fake checks the request timestamp against the real clock (±10 minutes): these tests travel from now.
RETRY = timedelta(seconds=301)


def top_paid(top, gshop, oid: str, *, codes=("TOP-1",), **rules) -> Order:
    product = Product.objects.filter(shop=gshop, item_id="card-1").first() or Product.objects.create(
        shop=gshop, item_id="card-1", title="会员激活码", kind="virtual", auto_ship=True,
        delivery_template="卡密：{{ codes }}", **rules)
    cardcode_import(product=product, lines=list(codes))
    top.add_order(oid, status=2, item_id="card-1")
    return order_sync(shop=gshop, snapshot=OrderSnapshot(platform_order_id=oid, raw_status="2", target_status="paid",
                                                         item_id="card-1", updated_at=timezone.now())).order


def test_message_whose_answer_is_lost_goes_again_to_the_same_buyer(top, gshop):
    order = top_paid(top, gshop, "7201")
    now = timezone.now() + timedelta(seconds=1)
    top.drop_next("alibaba.idle.order.msg.send")
    assert dispatch(order, now) == "retry_wait"
    assert get(order.shipment.pk).needs_reconcile and top.method_calls["alibaba.idle.order.dummy.send"] == 0
    assert dispatch(order, now + RETRY) == "shipped"
    # no API reads a sent message back: the same text went to the same buyer again, nowhere else
    assert top.buyer_received == {"7201": ["卡密：TOP-1", "卡密：TOP-1"]}
    assert top.method_calls["alibaba.idle.order.dummy.send"] == 1
    assert list(CardCode.objects.values_list("order_id", "status")) == [(order.pk, "delivered")]


def test_status_answer_lost_after_the_message_is_reconciled_without_a_second_message(top, gshop):
    order = top_paid(top, gshop, "7202")
    now = timezone.now() + timedelta(seconds=1)
    top.drop_next("alibaba.idle.order.dummy.send")
    assert dispatch(order, now) == "shipped"
    assert top.buyer_received == {"7202": ["卡密：TOP-1"]}
    assert top.method_calls["alibaba.idle.order.dummy.send"] == 1 and top.orders["7202"]["order_status"] == 3


def test_worker_killed_between_the_message_and_the_status_resumes_at_the_status(top, gshop, monkeypatch):
    order = top_paid(top, gshop, "7203")
    now = timezone.now() + timedelta(seconds=1)
    real = services._record_handover

    def killed(*args, **kwargs):
        real(*args, **kwargs)
        raise SystemExit("worker killed after recording the handover")

    monkeypatch.setattr(services, "_record_handover", killed)
    with pytest.raises(SystemExit):
        dispatch(order, now)
    monkeypatch.undo()
    s = get(order.shipment.pk)
    assert s.status == "sending" and s.content_handed_at is not None
    assert dispatch(order, now + LEASE + timedelta(seconds=1)) == "shipped"
    assert top.buyer_received == {"7203": ["卡密：TOP-1"]}      # not sent again
    assert top.method_calls["alibaba.idle.order.dummy.send"] == 1


def test_message_of_a_code_reaches_the_buyer_exactly_and_the_page_escapes_it_once(top, gshop):
    order = top_paid(top, gshop, "7204", codes=["A&B<C>'D"])
    now = timezone.now() + timedelta(seconds=1)
    assert dispatch(order, now) == "shipped"
    assert top.buyer_received == {"7204": ["卡密：A&B<C>'D"]}
    s = get(order.shipment.pk)
    assert s.content == "卡密：A&B<C>'D"
    html = Client().get(s.delivery_path).content.decode()
    assert "<pre>卡密：A&amp;B&lt;C&gt;&#x27;D</pre>" in html and "&amp;amp;" not in html


# --- contact: SMS -------------------------------------------------------------------------------------------


def test_sms_whose_outcome_is_unknown_is_never_sent_again(fake, shop, product, sms):
    order = paid(fake, shop, "U1")
    sms.drop_after_accepting(1)
    assert dispatch(order) == "failed"
    s = get(order.shipment.pk)
    assert s.manual_reason.startswith("发货内容未送达买家：短信发送结果未知，不会重发")
    assert len(sms.accepted) == 1 and fake.ship_calls["U1"] == 0
    assert list(s.handovers.values_list("channel", "status")) == [("sms", "unknown")]
    assert dispatch(order, LATER) == "failed" and len(sms.accepted) == 1
    assert [n["order"] for n in undelivered()] == ["U1"]


def test_sms_still_being_sent_is_looked_at_again_without_a_new_message(fake, shop, product, sms):
    order = paid(fake, shop, "P1")
    sms.force(Response(200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发流控"}))  # refused: retry later
    assert dispatch(order) == "retry_wait"
    s = get(order.shipment.pk)
    assert list(s.handovers.values_list("status", flat=True)) == ["pending"] and s.attempts == 1
    assert fake.ship_calls["P1"] == 0 and sms.accepted == []
    assert dispatch(order, LATER) == "shipped"
    s = get(s.pk)
    assert s.attempts == 1  # looking at the notification again is not another attempt
    assert len(sms_to_buyer(sms)) == 1 and Notification.objects.filter(event="shipment.delivered").count() == 1
    assert list(s.handovers.values_list("status", flat=True)) == ["delivered"]


def test_slow_goods_deliver_the_content_and_wait_for_staff_to_ship(fake, shop, product, sms, notes):
    product.staff_confirms_shipping = True
    product.save()
    order = paid(fake, shop, "S1")
    assert dispatch(order) == "awaiting_staff"
    s = get(order.shipment.pk)
    assert s.manual_reason == "发货内容已送达买家，等待员工确认平台发货" and s.content_handed_at is not None
    assert len(sms_to_buyer(sms)) == 1 and fake.ship_calls["S1"] == 0
    assert fake.orders["S1"]["order_status"] == 12 and "shipment.manual_needed" in events(notes)

    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    done = shipment_ship_manual(shipment=s, user=staff)
    assert done.status == "shipped" and done.method == "staff"
    assert len(sms_to_buyer(sms)) == 1  # not sent again
    assert fake.orders["S1"]["order_status"] == 21 and fake.ship_calls["S1"] == 1


def test_staff_who_handed_the_content_over_themselves_ship_status_only(fake, shop, product, sms):
    fake.add_order("H1", status=12, item_id="card-1")
    order = order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id="H1", raw_status="12", target_status="paid",
                                                         item_id="card-1", updated_at=timezone.now())).order
    assert dispatch(order) == "failed"  # no phone, no e-mail
    s = get(order.shipment.pk)
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    with pytest.raises(ShippingError, match="已自行交付"):
        shipment_ship_manual(shipment=s, user=staff)
    done = shipment_ship_manual(shipment=s, user=staff, handed_over=True)
    assert done.status == "shipped" and sms.accepted == []
    assert list(done.handovers.values_list("channel", "status")) == [("staff", "delivered")]
    assert fake.orders["H1"]["order_status"] == 21


def test_a_closed_order_whose_content_reached_the_buyer_keeps_its_codes(fake, shop, product, sms):
    product.staff_confirms_shipping, product.stock = True, 0
    product.delivery_template = "{{ codes }}"
    product.save()
    cardcode_import(product=product, lines=["KEEP-1", "SPARE-1"])
    order = paid(fake, shop, "K1")
    assert dispatch(order) == "awaiting_staff"
    sync_status(shop, "K1", "closed", "24")
    s = get(order.shipment.pk)
    assert s.status == "cancelled"
    assert list(CardCode.objects.order_by("pk").values_list("code", "status")) == [
        ("KEEP-1", "delivered"), ("SPARE-1", "available")]
    assert Product.objects.get(pk=product.pk).stock == 1  # the delivered unit is not restocked


def test_undelivered_alerts_are_rate_limited_per_shop(fake, shop, product, sms):
    for no in ("A1", "A2"):
        fake.add_order(no, status=12, item_id="card-1")
        order = order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id=no, raw_status="12",
                                                             target_status="paid", item_id="card-1",
                                                             updated_at=timezone.now())).order
        assert dispatch(order) == "failed"
    assert [(n["order"], n["count"]) for n in undelivered()] == [("A1", 1)]
    fake.add_order("A3", status=12, item_id="card-1")
    with travel(T0 + timedelta(minutes=11)):
        order = order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id="A3", raw_status="12",
                                                             target_status="paid", item_id="card-1",
                                                             updated_at=timezone.now())).order
    assert dispatch(order, T0 + timedelta(minutes=11)) == "failed"
    assert [(n["order"], n["count"]) for n in undelivered()] == [("A1", 1), ("A3", 2)]


def test_refund_withdrawn_after_the_content_left_ships_with_the_same_codes(fake, shop, product, sms):
    product.staff_confirms_shipping = True
    product.delivery_template = "{{ codes }}"
    product.save()
    cardcode_import(product=product, lines=["SAME-1", "OTHER-1"])
    order = paid(fake, shop, "R1")
    assert dispatch(order) == "awaiting_staff"
    sync_status(shop, "R1", "refunding", "12")
    assert get(order.shipment.pk).status == "cancelled"
    sync_status(shop, "R1", "paid", "12")  # refund withdrawn: back to ready_to_ship
    s = get(order.shipment.pk)
    assert s.status == "scheduled" and s.content == "SAME-1"
    assert list(CardCode.objects.order_by("pk").values_list("code", "status", "order_id")) == [
        ("SAME-1", "delivered", order.pk), ("OTHER-1", "available", None)]
    assert dispatch(order, LATER) == "awaiting_staff"  # content already with the buyer: straight to staff
    assert len(sms_to_buyer(sms)) == 1


def test_link_by_e_mail_when_the_buyer_has_no_phone(fake, shop, product, mailoutbox):
    from notifications.models import Channel, Subscription

    channel = Channel.objects.create(name="买家邮件", kind="email", config={"to": ["ops@example.com"]})
    Subscription.objects.create(event="shipment.delivered", channel=channel)
    fake.add_order("E1", status=12, item_id="card-1")
    snap = OrderSnapshot(platform_order_id="E1", raw_status="12", target_status="paid", item_id="card-1",
                         buyer_id="buyer-e1", updated_at=timezone.now())
    order = order_sync(shop=shop, snapshot=snap).order
    order.buyer.email = "buyer@example.com"
    order.buyer.save()
    assert dispatch(order) == "shipped"
    s = get(order.shipment.pk)
    assert [(m.to, m.body) for m in mailoutbox] == [(["buyer@example.com"], (
        f"您好，您在闲鱼购买的「会员激活码」已发货（订单号 E1）。请打开链接查看发货内容：{s.delivery_url}"))]
    assert list(s.handovers.values_list("channel", "carried", "status")) == [("email", "link", "delivered")]
