"""The webhook's nudge as one LPUSH of a ready-made Celery message (common.nudge, issue 11 part 1): the same
message `task.delay()` publishes, consumed by a real worker; duplicates still give one row and one message;
with Redis down the webhook answers success and the sweeper processes the row later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.services import shop_upsert
from common.inbox import NUDGE_GRACE
from common.models import InboxEvent
from common.nudge import fast_delay
from config.celery import app
from orders.models import Order, OrderInboxEvent, Product
from orders.tasks import process_order_event, sweep_inbox
from tests.conftest import BROKER_QUEUE
from tests.fakes.xianguanjia import FakeXianguanjia, signed_push
from tests.orders.test_broker import FakeDeadBroker, _push_with_a_dead_broker

ROOT = Path(__file__).resolve().parents[2]
APP_KEY, SECRET = "xgj-broker", "xgj-broker-secret"  # _push_with_a_dead_broker signs with these
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(settings):
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        yield server


@pytest.fixture
def shop(fake):
    shop, _ = shop_upsert(platform="xianguanjia", name="nudge shop", app_key=APP_KEY, app_secret=SECRET)
    Product.objects.create(shop=shop, item_id="item-1", title="激活码", auto_ship=False)
    return shop


def _push(order_no: str, modify_time: int | None = None):
    qs, body = signed_push(APP_KEY, SECRET, {"seller_id": 1, "order_no": order_no, "order_type": 1,
                                             "order_status": 12, "refund_status": 0,
                                             "modify_time": modify_time or int(time.time())})
    return Client().post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")


def _flat(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_the_one_lpush_message_is_the_message_celery_publishes(real_broker):
    process_order_event.delay(4711)
    assert fast_delay(process_order_event, 4711) is True
    by_celery, by_lpush = (dict(_flat(json.loads(m))) for m in reversed(real_broker.lrange(BROKER_QUEUE, 0, -1)))
    ids = {"headers.id", "headers.root_id", "properties.correlation_id", "properties.delivery_tag"}
    assert set(by_celery) == set(by_lpush)
    assert {k: v for k, v in by_celery.items() if k not in ids} == {k: v for k, v in by_lpush.items() if k not in ids}
    assert by_lpush["headers.id"] == by_lpush["headers.root_id"] == by_lpush["properties.correlation_id"]
    assert by_lpush["headers.task"] == "orders.tasks.process_order_event"


def test_eager_mode_and_the_filesystem_broker_keep_task_delay(real_broker, settings):
    app.conf.task_always_eager = True
    assert fast_delay(process_order_event, 1) is False
    app.conf.task_always_eager = False
    app.conf.broker_url = "filesystem://localhost/"
    assert fast_delay(process_order_event, 1) is False
    assert real_broker.llen(BROKER_QUEUE) == 0


def test_duplicate_pushes_give_one_row_and_one_message(real_broker, shop):
    now = int(time.time())
    answers = [_push("5001", now) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert OrderInboxEvent.objects.count() == 1
    assert real_broker.llen(BROKER_QUEUE) == 1


def _worker(env_extra: dict[str, str]) -> subprocess.Popen:
    db = connection.settings_dict
    env = {**os.environ, **env_extra,
           "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", BROKER_QUEUE, "-c", "1", "-P", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning",
         "-n", f"nudge-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_real_worker_processes_the_lpush_nudge(postgres, real_broker, redis_url, fake, shop):
    now = int(time.time())
    fake.add_order("5002", status=12, item_id="item-1", update_time=now)
    assert _push("5002", now).status_code == 200
    assert real_broker.llen(BROKER_QUEUE) == 1
    worker = _worker({"REDIS_URL": redis_url, "XIANGUANJIA_BASE_URL": fake.url})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not Order.objects.filter(platform_order_id="5002").exists():
            assert worker.poll() is None, worker.stdout.read().decode(errors="replace")
            time.sleep(0.2)
    finally:
        worker.terminate()
        try:
            out = worker.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            out = worker.communicate()[0].decode(errors="replace")
    order = Order.objects.filter(platform_order_id="5002").first()
    assert order is not None, f"the worker never processed the nudge:\n{out[-3000:]}"
    assert order.status == "ready_to_ship"
    assert OrderInboxEvent.objects.get().status == InboxEvent.Status.PROCESSED
    assert real_broker.llen(BROKER_QUEUE) == 0


def test_redis_down_at_ingest_the_sweeper_processes_the_row_later(real_broker, fake, shop):
    fake.add_order("4002", status=12, item_id="item-1", update_time=int(time.time()))
    with FakeDeadBroker() as dead:
        resp = _push_with_a_dead_broker(dead, "4002")
    assert resp.status_code == 200 and resp.json() == {"result": "success"}
    event = OrderInboxEvent.objects.get()
    assert event.status == InboxEvent.Status.PENDING and not Order.objects.exists()
    # Redis is back; the sweeper (beat, every minute) finds the row once its own nudge's grace is over.
    app.conf.task_always_eager = True
    assert sweep_inbox() == 0  # still within the grace: its nudge may be on its way
    OrderInboxEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - NUDGE_GRACE * 2)
    assert sweep_inbox() == 1
    assert Order.objects.get(platform_order_id="4002").status == "ready_to_ship"
    assert OrderInboxEvent.objects.get().status == InboxEvent.Status.PROCESSED
