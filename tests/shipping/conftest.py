"""Shipping fixtures: a fake 闲管家 server, a shop on it, products, and paid orders made through order_sync.

闲管家 has no buyer message API, so the default product delivers to the buyer's contact: the delivery link
by SMS (a fake Aliyun SMS server, subscribed to `shipment.delivered`) to the order's receiver phone, then a
status-only virtual ship."""

from __future__ import annotations

from datetime import datetime
from unittest import mock

import pytest
from django.utils import timezone

from accounts.services import shop_upsert
from notifications.models import Channel, Subscription
from orders.adapters.base import OrderSnapshot
from orders.models import Order, Product
from orders.services import order_sync
from shipping import services
from tests.fakes.notify import FakeAliyunSms
from tests.fakes.xianguanjia import FakeXianguanjia

APP_KEY, SECRET = "xgj-ship", "xgj-ship-secret"


@pytest.fixture
def fake(settings):
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        settings.SHIP_MAX_ATTEMPTS = 3
        settings.SHIP_RETRY_DELAY_SECONDS = 300
        settings.PUBLIC_BASE_URL = "https://shop.example"
        yield server


@pytest.fixture
def shop(fake):
    return shop_upsert(platform="xianguanjia", name="发货测试店", app_key=APP_KEY, app_secret=SECRET)[0]


BUYER_PHONE = "13800138000"


@pytest.fixture
def sms(db):
    """The buyer's SMS channel: a fake Aliyun SMS server (following the tests' time travel)."""
    clock = lambda: timezone.now()  # noqa: E731 (looked up at call time: follows `travel`)
    with FakeAliyunSms(keys={"ak-ship": "sk-ship"}, templates=("SMS_DELIVERY",), clock=clock) as server:
        channel = Channel.objects.create(name="买家短信", kind="sms", secret="sk-ship", rate_limit_per_minute=1000,
                                         config={"access_key_id": "ak-ship", "sign_name": "闲鱼助手",
                                                 "template_code": "SMS_DELIVERY", "base_url": server.url})
        Subscription.objects.create(event="shipment.delivered", channel=channel)
        yield server


def sms_to_buyer(server) -> list[str]:
    """The texts the fake SMS service accepted for the buyer's phone."""
    return [params["TemplateParam"]["content"] for _, params in server.accepted
            if params["PhoneNumbers"] == BUYER_PHONE]


@pytest.fixture
def product(shop, sms):
    return Product.objects.create(
        shop=shop, item_id="card-1", title="会员激活码", kind=Product.Kind.VIRTUAL, auto_ship=True,
        ship_delay_min=0, ship_delay_max=0, logistics_company="虚拟发货", express_code="other",
        delivery_way=Product.DeliveryWay.CONTACT, delivery_template="您购买的「{{ item_title }}」已发货")


CODES_TEMPLATE = "您的激活码：{% for c in codes %}{{ c }}{% if not forloop.last %}, {% endif %}{% endfor %}"


def with_codes(product, lines):
    """Give the product a card-code pool and a template that delivers the codes."""
    product.delivery_template = CODES_TEMPLATE
    product.save(update_fields=["delivery_template"])
    return services.cardcode_import(product=product, lines=lines)


@pytest.fixture
def notes(monkeypatch):
    """Every notification shipping sends, recorded on its way to the real notifications.services.notify."""
    sent: list[tuple[str, dict]] = []
    real = services.notify_event

    def record(event, *, shop=None, **context):
        sent.append((event, context))
        real(event, shop=shop, **context)

    monkeypatch.setattr(services, "notify_event", record)
    return sent


def events(sent) -> list[str]:
    return [e for e, _ in sent]


def stored_notifications(event: str) -> list[dict]:
    """The stored notifications of an event (what the staff's channels are sent), oldest first, as contexts."""
    from notifications.models import Notification

    return list(Notification.objects.filter(event=event).order_by("pk").values_list("context", flat=True))


def paid(fake, shop, order_no: str, *, item_id: str = "card-1", quantity: int = 1) -> Order:
    """A paid order on the fake platform and in our machine (→ ready_to_ship, which fires the hook)."""
    fake.add_order(order_no, status=12, item_id=item_id, quantity=quantity)
    snap = OrderSnapshot(platform_order_id=order_no, raw_status="12", target_status="paid", item_id=item_id,
                         quantity=quantity, updated_at=timezone.now(), receiver={"phone": BUYER_PHONE})
    return order_sync(shop=shop, snapshot=snap).order


def sync_status(shop, order_no: str, target: str, raw: str) -> Order:
    snap = OrderSnapshot(platform_order_id=order_no, raw_status=raw, target_status=target,
                         updated_at=timezone.now())
    return order_sync(shop=shop, snapshot=snap, event_at=timezone.now()).order


def travel(to: datetime):
    """Time travel: every timezone.now() call returns `to` while the context is open."""
    return mock.patch("django.utils.timezone.now", return_value=to)
