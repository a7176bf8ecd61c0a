"""Ingest against a real Redis broker: the webhook's nudge is a real Celery message, and a broker outage
at ingest loses nothing (the row is stored; the sweeper dispatches it later)."""

import json
import time

import pytest
from django.test import Client

from accounts.services import shop_upsert
from common.models import InboxEvent
from config.celery import app
from orders.models import Order, OrderInboxEvent
from tests.fakes.xianguanjia import signed_push

APP_KEY, SECRET = "xgj-broker", "xgj-broker-secret"
pytestmark = pytest.mark.django_db(transaction=True)
QUEUE = "xianyu-test-ingest"


def _reset_pool():
    """Drop cached broker connections so the next publish uses the current broker_url."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def real_broker(redis_url):
    import redis

    r = redis.Redis.from_url(redis_url)
    r.delete(QUEUE)
    saved = (app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = QUEUE
    app.conf.broker_url = redis_url
    _reset_pool()
    yield r
    app.conf.task_always_eager, app.conf.broker_url, app.conf.task_default_queue = saved
    _reset_pool()
    r.delete(QUEUE)


def _push(order_no):
    qs, body = signed_push(APP_KEY, SECRET, {"order_no": order_no, "order_status": 12, "refund_status": 0,
                                             "modify_time": int(time.time())})
    return Client().post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")


def test_the_webhook_nudge_is_a_real_celery_message_on_redis(postgres, real_broker):
    shop_upsert(platform="xianguanjia", name="s", app_key=APP_KEY, app_secret=SECRET)
    assert _push("4001").status_code == 200
    event = OrderInboxEvent.objects.get()
    messages = real_broker.lrange(QUEUE, 0, -1)
    assert len(messages) == 1
    msg = json.loads(messages[0])
    assert msg["headers"]["task"] == "orders.tasks.process_order_event"
    assert event.status == InboxEvent.Status.PENDING  # no worker here: the message waits, the row is the truth


def test_broker_down_at_ingest_answers_success_and_keeps_the_event(postgres, real_broker, redis_url):
    shop_upsert(platform="xianguanjia", name="s", app_key=APP_KEY, app_secret=SECRET)
    app.conf.broker_url = "redis://127.0.0.1:1/0"  # nothing listens there
    _reset_pool()
    t0 = time.monotonic()
    resp = _push("4002")
    elapsed = time.monotonic() - t0
    assert resp.status_code == 200 and resp.json() == {"result": "success"}
    assert OrderInboxEvent.objects.get().status == InboxEvent.Status.PENDING
    assert Order.objects.count() == 0
    assert elapsed < 3.0, f"the platform waits at most 3 s for our answer; took {elapsed:.1f}s"
