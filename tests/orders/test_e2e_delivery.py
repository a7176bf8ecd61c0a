"""Delivery end to end, on each platform (issue 7, "Done means"): a signed platform message → inbox → order →
shipment → the code in front of the buyer, as the fake platform or the buyer's channel records it; the
shipment says how it got there (its Handover); the platform order is shipped. A content that cannot reach
the buyer lands in the manual queue with a staff notification and is never marked shipped.

Runs on SQLite (`./test`): the on-commit chain runs in-process (Celery eager), the platforms are local fakes
that check signatures as the real ones do."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import shop_upsert
from notifications.models import Channel, Notification, Subscription
from orders.adapters.goofish import TOPIC_ORDER
from orders.models import Order, Product, SandboxOrder
from orders.services import product_save, sandbox_order_simulate
from shipping.models import CardCode
from shipping.services import cardcode_import
from tests.fakes.goofish import FakeGoofish, signed_relay
from tests.fakes.notify import FakeAliyunSms
from tests.fakes.xianguanjia import FakeXianguanjia, signed_push

pytestmark = pytest.mark.django_db(transaction=True)

XGJ_KEY, XGJ_SECRET = "xgj-e2e", "xgj-e2e-secret"
ORDER_NO = "3001000000000000001"   # 闲管家 order numbers are 19+ digits
CODE = "VIP-AAAA-1111"
BASE_URL = "https://shop.example"


@pytest.fixture
def xgj(settings):
    with FakeXianguanjia() as server:
        server.accounts[XGJ_KEY] = XGJ_SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        settings.PUBLIC_BASE_URL = BASE_URL
        yield server


@pytest.fixture
def xshop(xgj):
    return shop_upsert(platform="xianguanjia", name="闲管家店", app_key=XGJ_KEY, app_secret=XGJ_SECRET)[0]


@pytest.fixture
def top(settings):
    with FakeGoofish() as server:
        server.apps["gk"] = "gs"
        server.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = server.url + "/router/rest"
        settings.PUBLIC_BASE_URL = BASE_URL
        yield server


@pytest.fixture
def gshop(top):
    return shop_upsert(platform="goofish", name="开放平台店", app_key="gk", app_secret="gs",
                       session_token="seller-session")[0]


@pytest.fixture
def sms(db):
    with FakeAliyunSms(keys={"ak-e2e": "sk-e2e"}, templates=("SMS_DELIVERY",)) as server:
        channel = Channel.objects.create(name="买家短信", kind="sms", secret="sk-e2e",
                                         config={"access_key_id": "ak-e2e", "sign_name": "闲鱼助手",
                                                 "template_code": "SMS_DELIVERY", "base_url": server.url})
        Subscription.objects.create(event="shipment.delivered", channel=channel)
        yield server


def code_product(shop, *, item_id="card-1", codes=(CODE,), **rules) -> Product:
    product = product_save(product=Product(shop=shop, item_id=item_id, title="会员激活码", kind="virtual",
                                           auto_ship=True, **rules))
    cardcode_import(product=product, lines=list(codes))
    return product


def xgj_push(order_no: str, status: int = 12):
    qs, body = signed_push(XGJ_KEY, XGJ_SECRET, {"seller_id": 1, "user_name": "卖家", "order_no": order_no,
                                                 "order_type": 1, "order_status": status, "refund_status": 0,
                                                 "modify_time": int(time.time())})
    return Client().post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")


def top_relay(order_id: str, status: int = 2):
    form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": order_id, "order_status": status}, msg_id=f"m-{order_id}")
    return Client().post("/webhooks/goofish/", data=urlencode(form), content_type="application/x-www-form-urlencoded")


def bodies(fake, path: str) -> list[dict]:
    return [json.loads(r.body) for r in fake.requests if r.path == path]


def undelivered_notifications() -> list[dict]:
    return list(Notification.objects.filter(event="shipment.undelivered").values_list("context", flat=True))


# --- 闲管家 -------------------------------------------------------------------------------------------------


def test_xianguanjia_card_pool_puts_the_code_in_front_of_the_buyer(xgj, xshop):
    code_product(xshop, card_kind_id="84")
    xgj.add_kind(84, item_id="card-1")  # the item bound to the 卡种 in the 闲管家 UI
    xgj.add_order(ORDER_NO, status=12, item_id="card-1")

    assert xgj_push(ORDER_NO).status_code == 200

    assert xgj.buyer_received == {ORDER_NO: [CODE]}         # 闲管家's 卡密 message to the buyer
    assert xgj.orders[ORDER_NO]["order_status"] == 21       # shipped on the platform
    assert bodies(xgj, "/api/open/kami/storage/create") == [{
        "kind_id": 84, "cost": 0, "is_cover": 0, "is_repeat": 0, "is_priority": 1,
        "cards": [{"card_no": "", "card_pwd": CODE}]}]
    assert bodies(xgj, "/api/open/trade/logistics/dummy/send") == [{"order_no": ORDER_NO, "send_way": 2}]
    assert bodies(xgj, "/api/open/order/ship") == []         # no invented waybill
    order = Order.objects.get(platform_order_id=ORDER_NO)
    s = order.shipment
    assert (order.status, s.status, s.delivery_way) == ("shipped", "shipped", "card_pool")
    assert s.content_handed_at and s.status_sent_at
    assert list(s.handovers.values_list("channel", "carried", "status", "destination_hint", "answer")) == [
        ("card_pool", "content", "delivered", "闲管家卡种 84", "kam/list: 1 card(s)")]
    assert CardCode.objects.get().status == "delivered"


def test_xianguanjia_link_by_sms_then_status_only_shipment(xgj, xshop, sms):
    code_product(xshop, delivery_way="contact")
    xgj.add_order(ORDER_NO, status=12, item_id="card-1")     # the detail carries receiver_mobile 13800138000

    assert xgj_push(ORDER_NO).status_code == 200

    order = Order.objects.get(platform_order_id=ORDER_NO)
    s = order.shipment
    link = f"{BASE_URL}/delivery/{s.token}/"
    sent = [(p["PhoneNumbers"], p["TemplateParam"]["content"]) for _, p in sms.accepted]
    assert sent == [("13800138000",
                     f"您好，您在闲鱼购买的「测试商品」已发货（订单号 {ORDER_NO}）。请打开链接查看发货内容：{link}")]
    assert CODE not in sent[0][1]                             # the link, never the code, goes by SMS
    page = Client().get(f"/delivery/{s.token}/").content.decode()
    assert f"<pre>您好，您购买的「测试商品」已发货，订单号 {ORDER_NO}。\n卡密：\n{CODE}\n" in page
    assert bodies(xgj, "/api/open/trade/logistics/dummy/send") == [{"order_no": ORDER_NO, "send_way": 1}]
    assert xgj.orders[ORDER_NO]["order_status"] == 21
    assert (order.status, s.status, s.delivery_way) == ("shipped", "shipped", "contact")
    assert list(s.handovers.values_list("channel", "carried", "status", "destination_hint")) == [
        ("sms", "link", "delivered", "买家手机号（短信）")]
    assert s.handovers.get().destination == "13800138000"


def test_xianguanjia_buyer_without_contact_goes_to_the_queue_not_shipped(xgj, xshop, sms):
    code_product(xshop, delivery_way="contact")
    xgj.add_order(ORDER_NO, status=12, item_id="card-1")
    xgj.orders[ORDER_NO]["receiver_mobile"] = ""             # no phone in the order, no e-mail known

    assert xgj_push(ORDER_NO).status_code == 200

    order = Order.objects.get(platform_order_id=ORDER_NO)
    s = order.shipment
    assert order.status == "ready_to_ship" and s.status == "failed" and s.in_manual_queue
    assert s.manual_reason.startswith("发货内容未送达买家：买家没有可用的手机号或邮箱")
    assert xgj.ship_calls[ORDER_NO] == 0 and xgj.orders[ORDER_NO]["order_status"] == 12
    assert sms.accepted == []
    assert [(n["order"], n["count"]) for n in undelivered_notifications()] == [(ORDER_NO, 1)]
    assert CardCode.objects.get().status == "reserved"       # still this order's, for staff to hand over


# --- open platform (TOP) ------------------------------------------------------------------------------------


def test_open_platform_delivery_message_puts_the_code_in_front_of_the_buyer(top, gshop):
    code_product(gshop)
    top.add_order("7101", status=2, item_id="card-1")

    assert top_relay("7101").status_code == 200

    assert top.buyer_received == {"7101": [f"您好，您购买的「测试商品」已发货，订单号 7101。\n卡密：\n{CODE}\n"
                                           "请妥善保存，不要转发给他人。如有问题请在闲鱼联系卖家。"]}
    assert top.orders["7101"]["order_status"] == 3
    assert top.method_calls["alibaba.idle.order.dummy.send"] == 1
    assert top.method_calls["alibaba.idle.isv.order.ship"] == 0
    order = Order.objects.get(platform_order_id="7101")
    s = order.shipment
    assert (order.status, s.status, s.delivery_way) == ("shipped", "shipped", "platform_message")
    assert list(s.handovers.values_list("channel", "carried", "status", "answer")) == [
        ("platform_message", "content", "delivered", "order.msg.send: send_success=true request_id=fake-msg")]


def test_open_platform_refused_message_goes_to_the_queue_not_shipped(top, gshop):
    code_product(gshop)
    top.add_order("7102", status=2, item_id="card-1")
    top.refuse_messages.add("7102")

    assert top_relay("7102").status_code == 200

    order = Order.objects.get(platform_order_id="7102")
    s = order.shipment
    assert order.status == "ready_to_ship" and s.status == "failed"
    assert s.manual_reason == "发货内容未送达买家：平台拒绝：order.msg.send: send_success=false code=send_success_false"
    assert top.method_calls["alibaba.idle.order.dummy.send"] == 0 and top.orders["7102"]["order_status"] == 2
    assert list(s.handovers.values_list("channel", "status")) == [("platform_message", "failed")]
    assert [n["order"] for n in undelivered_notifications()] == ["7102"]


# --- sandbox ----------------------------------------------------------------------------------------------


def test_sandbox_records_what_the_buyer_received_and_shows_it_in_the_admin(db):
    shop = shop_upsert(platform="sandbox", name="沙箱店", app_key="sbx-e2e", app_secret="s")[0]
    code_product(shop, item_id="sbx-1", codes=["A&B<C>'D"], delivery_template="卡密：{{ code }}")

    sandbox_order_simulate(shop=shop, item_id="sbx-1", order_no="SBX1")

    platform_side = SandboxOrder.objects.get(order_no="SBX1")
    assert list(platform_side.messages.values_list("text", flat=True)) == ["卡密：A&B<C>'D"]
    assert platform_side.status == "shipped" and platform_side.waybill_no == ""
    s = Order.objects.get(platform_order_id="SBX1").shipment
    assert s.status == "shipped"
    assert list(s.handovers.values_list("channel", "status")) == [("sandbox", "delivered")]
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)
    page = client.get(f"/admin/orders/sandboxorder/{platform_side.pk}/change/").content.decode()
    assert "卡密：A&amp;B&lt;C&gt;&#x27;D" in page and "&amp;amp;" not in page


def test_sandbox_buyer_messages_are_masked_without_the_pii_permission(db):
    from django.contrib.auth.models import Permission

    shop = shop_upsert(platform="sandbox", name="沙箱店", app_key="sbx-mask", app_secret="s")[0]
    code_product(shop, item_id="sbx-2", codes=["SECRET-CODE-9999"], delivery_template="卡密：{{ code }}")
    sandbox_order_simulate(shop=shop, item_id="sbx-2", order_no="SBX2")
    platform_side = SandboxOrder.objects.get(order_no="SBX2")
    assert list(platform_side.messages.values_list("text", flat=True)) == ["卡密：SECRET-CODE-9999"]
    clerk = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_sandboxorder"))
    client = Client()
    client.force_login(clerk)
    page = client.get(f"/admin/orders/sandboxorder/{platform_side.pk}/change/")
    assert page.status_code == 200
    assert "SECRET-CODE" not in page.content.decode()
