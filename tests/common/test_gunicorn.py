"""Webhooks through the production server: gunicorn with deploy/gunicorn.conf.py, in its own process, on the
test database. A chunked request body (Transfer-Encoding: chunked, no Content-Length) is read and verified
like any other, and bounded by WEBHOOK_MAX_BODY_BYTES like any other."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.services import shop_upsert
from common.models import RejectedWebhook
from orders.models import Order, OrderInboxEvent, Product
from tests.fakes.xianguanjia import FakeXianguanjia, sign_query

APP_KEY, SECRET = "xgj-gunicorn", "xgj-gunicorn-secret"
LIMIT = 4096
BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def fake():
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        yield server


@pytest.fixture
def gunicorn(transactional_db, fake):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=database_url(), CELERY_TASK_ALWAYS_EAGER="true", XIANGUANJIA_BASE_URL=fake.url,
               WEBHOOK_MAX_BODY_BYTES=str(LIMIT), GUNICORN_WORKERS="1", GUNICORN_BIND=f"127.0.0.1:{port}")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "-c", "deploy/gunicorn.conf.py"],
        cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz/")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gunicorn did not start:\n" + proc.stdout.read().decode()) from None
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def post_chunked(port: int, path: str, chunks: list[bytes]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", path, body=iter(chunks), encode_chunked=True,
                 headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    resp = conn.getresponse()
    answer = resp.status, json.loads(resp.read() or b"{}")
    conn.close()
    return answer


def push_body(order_no: str, pad: int = 0) -> bytes:
    doc = {"order_no": order_no, "order_status": 12, "refund_status": 0, "modify_time": int(time.time()),
           "pad": "x" * pad}
    return json.dumps(doc, separators=(",", ":")).encode()


def test_a_chunked_webhook_body_is_read_verified_and_stored(gunicorn, fake):
    shop, _ = shop_upsert(platform="xianguanjia", name="闲管家", app_key=APP_KEY, app_secret=SECRET)
    Product.objects.create(shop=shop, item_id="item-1", title="激活码")
    fake.add_order("G1", status=12, item_id="item-1", update_time=int(time.time()))
    body = push_body("G1")
    chunks = [body[:7], body[7:30], body[30:]]

    status, answer = post_chunked(gunicorn, f"/webhooks/xianguanjia/?{sign_query(APP_KEY, SECRET, body)}", chunks)

    assert (status, answer) == (200, {"result": "success"})
    event = OrderInboxEvent.objects.get()
    assert event.body == body.decode() and event.platform_order_id == "G1"
    assert event.headers["HTTP_TRANSFER_ENCODING"] == "chunked" and "CONTENT_LENGTH" not in event.headers
    assert Order.objects.get(shop=shop, platform_order_id="G1").status != "pending_payment"
    assert RejectedWebhook.objects.count() == 0


def test_a_chunked_body_over_the_limit_is_refused_and_recorded(gunicorn):
    shop_upsert(platform="xianguanjia", name="闲管家", app_key=APP_KEY, app_secret=SECRET)
    body = push_body("G2", pad=LIMIT)
    chunks = [body[i:i + 1000] for i in range(0, len(body), 1000)]

    status, answer = post_chunked(gunicorn, f"/webhooks/xianguanjia/?{sign_query(APP_KEY, SECRET, body)}", chunks)

    assert (status, answer) == (413, {"error": "body too large"})
    assert OrderInboxEvent.objects.count() == 0
    assert RejectedWebhook.objects.get().reason == "body too large"
