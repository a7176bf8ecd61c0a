"""Failures reach a person (DESIGN.md §4.5): an order message that failed for good and an order anomaly each
reach the staff's chat, at most once per 10 minutes per source or shop, the next one counting what was held
back. The staff's chat is a fake WeCom robot: these tests read what it received."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import shop_upsert
from common.models import InboxEvent
from notifications.events import EVENTS
from notifications.models import Channel, Notification, Subscription
from notifications.rendering import validate_template
from orders.adapters.base import OrderSnapshot
from orders.models import Order, OrderInboxEvent, Product
from orders.services import order_sync
from tests.fakes.notify import Clock, FakeWeCom
from tests.fakes.xianguanjia import FakeXianguanjia, signed_push

APP_KEY, SECRET = "xgj-alert", "xgj-alert-secret"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clock(monkeypatch):
    # A second ahead of the real clock: model defaults bound to the real timezone.now (an inbox event's first
    # due time) are then already due on the test's clock.
    c = Clock(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1))
    monkeypatch.setattr(timezone, "now", c)
    return c


@pytest.fixture
def staff_chat(clock):
    with FakeWeCom(keys={"robot"}, clock=clock) as chat:
        channel = Channel.objects.create(name="运营群", kind="wecom", config={"base_url": chat.url}, secret="robot")
        for event in ("inbox.failed", "order.anomaly"):
            Subscription.objects.create(event=event, channel=channel)
        yield chat


def said(chat) -> list[str]:
    return [doc["text"]["content"] for _, doc in chat.accepted]


@pytest.fixture
def platform(settings):
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        yield server


def test_new_events_render_with_their_samples():
    for key in ("inbox.failed", "order.anomaly"):
        event = EVENTS[key]
        validate_template(key, event.subject, event.body)


def test_an_order_message_that_failed_for_good_reaches_the_staff_chat_rate_limited(settings, clock, staff_chat,
                                                                                   platform):
    settings.INBOX_MAX_ATTEMPTS = 2
    shop = shop_upsert(platform="xianguanjia", name="告警店", app_key=APP_KEY, app_secret=SECRET)[0]
    platform.fail_next(100, status=500)  # the platform's order detail keeps failing

    def push(order_no):
        qs, body = signed_push(APP_KEY, SECRET, {"order_no": order_no, "order_status": 12, "refund_status": 0,
                                                 "modify_time": int(time.time())})
        assert Client().post(f"/webhooks/xianguanjia/?{qs}", data=body,
                             content_type="application/json").status_code == 200

    def retry_due():
        from orders.tasks import sweep_inbox

        clock.advance(minutes=5)
        sweep_inbox()

    push("3030")
    event = OrderInboxEvent.objects.get(platform_order_id="3030")
    assert event.status == InboxEvent.Status.FAILED and event.next_attempt_at is not None
    assert said(staff_chat) == []  # a retry is still coming: nobody is disturbed yet

    retry_due()
    event.refresh_from_db()
    assert event.status == InboxEvent.Status.FAILED and event.next_attempt_at is None and event.attempts == 2
    [message] = said(staff_chat)
    assert "3030" in message and "已处理 2 次仍失败" in message and "500" in message
    assert "replay_events --failed" in message

    push("3031")  # a second one fails for good within 10 minutes: held back, counted
    retry_due()
    assert OrderInboxEvent.objects.get(platform_order_id="3031").next_attempt_at is None
    assert len(said(staff_chat)) == 1

    clock.advance(minutes=10)
    push("3032")
    retry_due()
    assert len(said(staff_chat)) == 2
    assert "3032" in said(staff_chat)[1] and "共 2 条消息失败" in said(staff_chat)[1]
    assert Order.objects.count() == 0 and shop.pk


def test_an_order_anomaly_reaches_the_staff_chat_rate_limited_per_shop(clock, staff_chat):
    shop = shop_upsert(platform="sandbox", name="异常店", app_key="sbx-anomaly", app_secret="s")[0]
    Product.objects.create(shop=shop, item_id="i1", title="t")

    def report(order_no, status):
        clock.advance(seconds=1)
        return order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id=order_no, raw_status=status,
                                                            target_status=status, item_id="i1"))

    for order_no in ("A1", "A2", "A3"):
        report(order_no, "closed")
    assert report("A1", "shipped").outcome == "anomaly"
    [message] = said(staff_chat)
    assert "A1" in message and "已关闭" in message and "已发货" in message and "异常" in message

    assert report("A2", "shipped").outcome == "anomaly"  # within 10 minutes: counted, not sent
    assert len(said(staff_chat)) == 1
    clock.advance(minutes=10)
    assert report("A3", "shipped").outcome == "anomaly"
    assert len(said(staff_chat)) == 2 and "共 2 笔订单出现异常" in said(staff_chat)[1]
    assert Notification.objects.filter(event="order.anomaly").count() == 2
    assert Order.objects.filter(has_anomaly=True).count() == 3
