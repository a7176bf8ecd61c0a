"""The mini-program API: an order id and the buyer's access token, trusted only once the open platform answers
that order for that token; bad or foreign tokens get a clear 4xx and change nothing; rate-limited."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client

from accounts.models import BuyerIdentity
from kyc.models import Verification
from orders.models import Order

from .conftest import kyc_product

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/miniapp/orders/"


def post(payload, **extra):
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    return Client().post(URL, data=body, content_type="application/json", **extra)


@pytest.fixture
def shop_with_orders(no_sumsub, top, top_shop):
    kyc_product(top_shop)
    top.add_order("M1", status=2, item_id="kyc-item")
    top.add_order("M2", status=2, item_id="kyc-item")
    top.buyer_tokens["buyer-token-1"] = {"M1"}
    top.buyer_tokens["buyer-token-2"] = {"M2"}
    return top_shop


def test_the_buyer_token_the_platform_accepts_gets_the_link(top, shop_with_orders):
    resp = post({"platform_order_id": "M1", "access_token": "buyer-token-1"})

    assert resp.status_code == 200, resp.content
    body = resp.json()
    order = Order.objects.get(platform_order_id="M1")
    v = Verification.objects.get(order=order)
    assert body["order"] == {"platform_order_id": "M1", "status": "awaiting_kyc"}
    assert body["kyc"]["required"] is True and body["kyc"]["url"] == f"https://shop.example/verify/{v.token}/"
    assert body["kyc"]["state"] == "open"
    # The platform was asked with the buyer's token, and the token is kept, encrypted.
    query = [r.form() for r in top.requests if r.form().get("method") == "alibaba.idle.isv.order.query"]
    assert [q["session"] for q in query] == ["buyer-token-1"]
    buyer = BuyerIdentity.objects.get(platform="goofish", platform_user_id="eb-M1")
    assert buyer.access_token == "buyer-token-1" and order.buyer_id == buyer.pk
    with connection.cursor() as cur:
        cur.execute("SELECT access_token FROM accounts_buyeridentity WHERE id = %s", [buyer.pk])
        assert "buyer-token-1" not in cur.fetchone()[0]

    again = post({"platform_order_id": "M1", "access_token": "buyer-token-1"})
    assert again.json()["kyc"]["url"] == body["kyc"]["url"] and Verification.objects.count() == 1


@pytest.mark.parametrize("token, status, code", [
    ("buyer-token-2", 403, "order_not_visible"),   # a real buyer's token, but not for this order
    ("made-up-token", 401, "token_rejected"),       # a token the platform does not know
])
def test_a_token_the_platform_refuses_for_that_order_changes_nothing(top, shop_with_orders, token, status, code):
    resp = post({"platform_order_id": "M1", "access_token": token})

    assert resp.status_code == status and resp.json()["error"] == code
    assert resp.json()["message"]
    assert Order.objects.count() == 0 and Verification.objects.count() == 0
    assert BuyerIdentity.objects.count() == 0


def test_a_foreign_token_cannot_overwrite_a_known_buyers_token(top, shop_with_orders):
    assert post({"platform_order_id": "M1", "access_token": "buyer-token-1"}).status_code == 200
    assert post({"platform_order_id": "M1", "access_token": "buyer-token-2"}).status_code == 403
    assert BuyerIdentity.objects.get(platform_user_id="eb-M1").access_token == "buyer-token-1"


@pytest.mark.parametrize("payload", [
    b"not json", b"[1, 2]", b'"text"',
    {"platform_order_id": "M1"},
    {"platform_order_id": "M1", "access_token": ""},
    {"platform_order_id": "M1\u0000", "access_token": "buyer-token-1"},
    {"platform_order_id": "M1", "access_token": "bad\ud800token"},
    {"platform_order_id": "M1" * 40, "access_token": "buyer-token-1"},
    {"platform_order_id": ["M1"], "access_token": "buyer-token-1"},
    {"platform_order_id": "M1", "access_token": "x" * 600},
    {"platform_order_id": "M 1", "access_token": "buyer token"},
])
def test_hostile_input_is_a_plain_400(top, shop_with_orders, payload):
    resp = post(payload)
    assert resp.status_code == 400
    assert "Error" not in resp.content.decode() and "Traceback" not in resp.content.decode()
    assert Order.objects.count() == 0
    assert top.requests == []


def test_the_api_is_rate_limited_per_client(top, shop_with_orders, settings):
    settings.KYC_MINIAPP_RATE_PER_MINUTE = 3
    answers = [post({"platform_order_id": "M2", "access_token": "nope"}).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    assert len(top.requests) == 3  # refused calls never reached the platform


def test_the_platform_down_is_a_503(top, shop_with_orders):
    top.fail_next(1, status=502)
    resp = post({"platform_order_id": "M1", "access_token": "buyer-token-1"})
    assert resp.status_code == 503 and Order.objects.count() == 0
