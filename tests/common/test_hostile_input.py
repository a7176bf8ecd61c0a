"""Hostile bytes never give a 500 (DESIGN.md §6): NUL bytes, lone surrogates, control characters, over-long
or wrong-typed identifiers and absurd times — in addresses, query strings, API filters and webhook calls —
are each a 4xx with a plain reason that names no internal exception. A refused webhook call still leaves
its (cleaned) RejectedWebhook record."""

from __future__ import annotations

import json
import re
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import translation

from accounts.services import shop_upsert
from common.models import RejectedWebhook
from orders.models import OrderInboxEvent
from tests.fakes.xianguanjia import sign_query

pytestmark = pytest.mark.django_db

APP_KEY, SECRET = "xgj-hostile", "xgj-hostile-secret"
INTERNAL = re.compile(r"Traceback|[A-Z][A-Za-z]*(Error|Exception)\b|psycopg|sqlite")
HOSTILE_STORED = re.compile("[\x00\ud800-\udfff]")


@pytest.fixture
def staff():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", password="pw-boss-1"))
    return client


def assert_plain_4xx(resp, where):
    assert 400 <= resp.status_code < 500, (where, resp.status_code)
    text = resp.content.decode("utf-8", "replace")
    assert not INTERNAL.search(text), (where, INTERNAL.search(text).group(0))


@pytest.mark.parametrize("url", [
    "/delivery/%00/",
    "/delivery/abc%01def/",
    "/delivery/%ED%A0%80/",                      # a lone surrogate, UTF-8 encoded
    "/delivery/" + "a" * 5000 + "/",
    "/" + "x" * 3000,
    "/api/v1/orders/?status=%00",
    "/api/v1/orders/?status=%ED%A0%80",
    "/api/v1/orders/?status=bogus",
    "/api/v1/orders/?status=" + "x" * 3000,
    "/api/v1/orders/?status=paid&%00=1",
    "/api/v1/orders/%00/",
    "/api/v1/orders/99999999999999999999999999/",
    "/api/v1/products/?page=%00",
    "/admin/orders/order/?q=%00",
    "/admin/orders/order/?q=%ED%A0%80",
    "/admin/orders/order/?status__exact=%00",
    "/admin/orders/order/?created_at__year=99999999999999999999",
    "/admin/orders/order/?created_at__year=2026&created_at__month=99999999999999999999",
    "/admin/shipping/cardcode/?q=%00",
    "/admin/orders/orderinboxevent/?q=%00",
    "/admin/orders/order/%00/change/",
    "/healthz/?x=%00",
])
def test_hostile_addresses_and_queries_are_refused_plainly(staff, url):
    resp = staff.get(url)
    assert_plain_4xx(resp, url)


def test_a_refused_query_says_why(staff):
    resp = staff.get("/admin/orders/order/?q=%00")
    assert resp.status_code == 400
    with translation.override(settings.LANGUAGE_CODE):  # the language the page is answered in
        reason = translation.gettext("The query string contains characters that are not allowed.")
    assert resp.content.decode() == reason
    api = staff.get("/api/v1/orders/?status=bogus")
    assert api.status_code == 400 and api.json()["status"].startswith("未知状态，可选值：pending_payment, paid")
    assert staff.get("/api/v1/orders/?status=paid").status_code == 200


# --- webhooks ----------------------------------------------------------------------------------------


@pytest.fixture
def shop():
    return shop_upsert(platform="xianguanjia", name="闲管家", app_key=APP_KEY, app_secret=SECRET)[0]


def signed(body: bytes) -> str:
    return sign_query(APP_KEY, SECRET, body)


def order_body(**fields) -> bytes:
    doc = {"order_no": "3001", "order_status": 12, "refund_status": 0, "modify_time": int(time.time()), **fields}
    return json.dumps(doc, separators=(",", ":")).encode()  # ASCII: \u escapes stay escapes


UNSIGNED = "appid=x&timestamp=1&sign=x"

WEBHOOK_CASES = {
    # unsigned calls carrying hostile bytes
    "nul-in-body": (lambda: UNSIGNED, b'{"order_no":"1\x00"}'),
    "invalid-utf8-body": (lambda: UNSIGNED, b'{"order_no":"\xed\xa0\x80"}'),
    "nul-in-query": (lambda: "appid=%00&timestamp=1&sign=x", b"{}"),
    "surrogate-in-query": (lambda: "appid=%ED%A0%80&timestamp=1&sign=x", b"{}"),
    "control-in-query": (lambda: "appid=a%01b&timestamp=1&sign=x", b"{}"),
    "over-long-appid": (lambda: "appid=" + "k" * 5000 + "&timestamp=1&sign=x", b"{}"),
    # correctly signed messages whose content cannot be stored or makes no sense
    "escaped-nul-order-no": (None, order_body(order_no="30\u000001")),
    "escaped-surrogate-order-no": (None, order_body(order_no="30\ud80001")),
    "over-long-order-no": (None, order_body(order_no="9" * 500)),
    "object-order-no": (None, order_body(order_no={"$gt": ""})),
    "list-order-no": (None, order_body(order_no=["3001", "3002"])),
    "float-order-no": (None, order_body(order_no=1e300)),
    "absurd-time-overflow": (None, order_body(modify_time=10**30)),
    "absurd-time-year": (None, order_body(modify_time=99999999999999)),
    "absurd-time-past": (None, order_body(modify_time=86400)),
    "absurd-time-text": (None, order_body(modify_time="9999-99-99 99:99:99")),
    "not-an-object": (None, b"[1, 2, 3]"),
    "not-json": (None, b"order_no=3001"),
}


@pytest.mark.parametrize("case", list(WEBHOOK_CASES))
def test_hostile_webhook_calls_are_refused_plainly_and_recorded_clean(shop, case):
    query, body = WEBHOOK_CASES[case]
    qs = query() if query else signed(body)
    resp = Client(HTTP_USER_AGENT="agent\x00with\ud800junk").post(
        f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")

    assert_plain_4xx(resp, case)
    assert OrderInboxEvent.objects.count() == 0
    row = RejectedWebhook.objects.get()
    assert row.source == "xianguanjia" and row.count == 1
    reason = resp.json()["error"]
    assert row.reason == reason and not INTERNAL.search(reason)
    stored = [row.reason, row.path, row.remote_addr, row.body_excerpt, json.dumps(row.headers, ensure_ascii=False)]
    assert not any(HOSTILE_STORED.search(text) for text in stored), stored
    assert row.headers["HTTP_USER_AGENT"] == "agent\ufffdwith\ufffdjunk"


def test_a_good_message_next_to_them_is_still_stored(shop):
    body = order_body()
    resp = Client().post(f"/webhooks/xianguanjia/?{signed(body)}", data=body, content_type="application/json")
    assert resp.status_code == 200 and resp.json() == {"result": "success"}
    event = OrderInboxEvent.objects.get()
    assert event.platform_order_id == "3001" and event.body == body.decode()
    assert RejectedWebhook.objects.count() == 0


def test_an_oversize_body_is_refused_before_it_is_read(shop, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    body = order_body(pad="x" * 2000)
    resp = Client().post(f"/webhooks/xianguanjia/?{signed(body)}", data=body, content_type="application/json")
    assert resp.status_code == 413 and resp.json() == {"error": "body too large"}
    row = RejectedWebhook.objects.get()
    assert (row.reason, row.body_excerpt) == ("body too large", "")
