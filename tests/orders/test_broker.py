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
from tests.conftest import BROKER_QUEUE, reset_broker_pool
from tests.fakes.xianguanjia import signed_push

APP_KEY, SECRET = "xgj-broker", "xgj-broker-secret"
pytestmark = pytest.mark.django_db(transaction=True)


def _push(order_no):
    qs, body = signed_push(APP_KEY, SECRET, {"order_no": order_no, "order_status": 12, "refund_status": 0,
                                             "modify_time": int(time.time())})
    return Client().post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")


def test_the_webhook_nudge_is_a_real_celery_message_on_redis(real_broker):
    shop_upsert(platform="xianguanjia", name="s", app_key=APP_KEY, app_secret=SECRET)
    assert _push("4001").status_code == 200
    event = OrderInboxEvent.objects.get()
    messages = real_broker.lrange(BROKER_QUEUE, 0, -1)
    assert len(messages) == 1
    msg = json.loads(messages[0])
    assert msg["headers"]["task"] == "orders.tasks.process_order_event"
    assert event.status == InboxEvent.Status.PENDING  # no worker here: the message waits, the row is the truth


class FakeDeadBroker:
    """A "Redis" that is down in one of two ways, counting the connections a publisher makes to it: it hangs
    up on each connection at once, or (`hang=True`) keeps it open and never answers."""

    def __init__(self, *, hang: bool = False):
        import socket
        import threading

        self.hang = hang
        self.connections: list = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            if not self.hang:
                conn.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        for conn in self.connections:
            conn.close()


def _push_with_a_dead_broker(dead: FakeDeadBroker, order_no: str):
    """The webhook call, in a thread with a generous guard: a publish that never gives up fails the test
    instead of hanging it."""
    import threading

    app.conf.broker_url = f"redis://127.0.0.1:{dead.port}/0"
    reset_broker_pool()
    from django.db import connection

    answers = []

    def call():
        try:
            answers.append(_push(order_no))
        finally:
            connection.close()

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(30)
    assert not caller.is_alive(), "the webhook is still waiting for the broker: the platform would give up"
    [resp] = answers
    return resp


@pytest.mark.parametrize("hang", [False, True], ids=["hangs-up", "never-answers"])
def test_broker_down_at_ingest_answers_success_and_keeps_the_event(real_broker, redis_url, monkeypatch, hang):
    """The platform waits only seconds for our answer. With the broker down the webhook tries to publish at
    most twice (CELERY_TASK_PUBLISH_RETRY_POLICY), without sleeping in between, and a broker that never
    answers is given up after the socket timeout; then the webhook answers success and the stored row waits
    for the sweeper. Counted, not timed: connections made and sleeps asked for."""
    import kombu.utils.functional

    shop_upsert(platform="xianguanjia", name="s", app_key=APP_KEY, app_secret=SECRET)
    slept: list[float] = []
    monkeypatch.setattr(kombu.utils.functional, "sleep", slept.append)
    with FakeDeadBroker(hang=hang) as dead:
        resp = _push_with_a_dead_broker(dead, "4002")
    assert resp.status_code == 200 and resp.json() == {"result": "success"}
    assert 1 <= len(dead.connections) <= 2 and sum(slept) == 0
    assert OrderInboxEvent.objects.get().status == InboxEvent.Status.PENDING
    assert Order.objects.count() == 0
