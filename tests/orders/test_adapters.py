"""Adapters against local fakes that check signatures the way each platform does."""

import time
from decimal import Decimal

import pytest
from django.test import Client

from accounts.services import shop_upsert
from common.http import ConfigurationError, PlatformError
from orders.adapters import ShipRequest, get_adapter
from orders.adapters.goofish import TOPIC_ORDER, TOPIC_REFUND, top_sign
from orders.adapters.xianguanjia import xgj_sign, xgj_target_status
from orders.models import Order
from tests.fakes.goofish import FakeGoofish, signed_relay
from tests.fakes.xianguanjia import FakeXianguanjia

pytestmark = pytest.mark.django_db


def test_top_sign_known_answers():
    params = {"method": "alibaba.idle.isv.order.query", "app_key": "12345678", "timestamp": "2026-01-01 12:00:00",
              "v": "2.0", "sign_method": "md5", "format": "json"}
    s = "app_key12345678formatjsonmethodalibaba.idle.isv.order.querysign_methodmd5timestamp2026-01-01 12:00:00v2.0"
    import hashlib
    import hmac

    assert top_sign(params, "secret", "md5") == hashlib.md5(b"secret" + s.encode() + b"secret").hexdigest().upper()
    assert top_sign(params, "secret", "hmac") == hmac.new(b"secret", s.encode(), "md5").hexdigest().upper()
    assert top_sign(params, "secret", "hmac-sha256") == hmac.new(b"secret", s.encode(), "sha256").hexdigest().upper()


def test_xgj_sign_known_answer():
    # md5("k,md5(b'{}'),1700000000,s"); md5(b"{}") = 99914b932bd37a50b983c5e7c90ae93b
    assert xgj_sign("k", "s", b"{}", "1700000000") == __import__("hashlib").md5(
        b"k,99914b932bd37a50b983c5e7c90ae93b,1700000000,s").hexdigest()


def test_xgj_status_mapping():
    assert xgj_target_status(12, 0) == "paid"
    assert xgj_target_status(21, 1) == "refunding"
    assert xgj_target_status(22, 5) == "refunded"
    assert xgj_target_status(24, 0) == "closed"


@pytest.fixture
def xgj(settings):
    with FakeXianguanjia() as fake:
        fake.accounts["k"] = "s"
        settings.XIANGUANJIA_BASE_URL = fake.url
        yield fake


def test_xianguanjia_fetch_ship_and_errors(xgj):
    shop, _ = shop_upsert(platform="xianguanjia", name="x", app_key="k", app_secret="s")
    xgj.add_order("5001", status=12, amount_fen=1234, quantity=3)
    adapter = get_adapter(shop)
    snap = adapter.fetch_order("5001")
    assert snap.target_status == "paid" and snap.amount == Decimal("12.34") and snap.quantity == 3
    assert snap.receiver["phone"] == "13800138000"
    assert adapter.ship(ShipRequest("5001", express_name="虚拟发货")).ok
    assert adapter.fetch_order("5001").target_status == "shipped"
    with pytest.raises(PlatformError) as second:
        adapter.ship(ShipRequest("5001"))
    assert not second.value.retryable

    xgj.fail_next(1, 502)
    with pytest.raises(PlatformError) as err:
        adapter.fetch_order("5001")
    assert err.value.retryable and err.value.outcome_unknown

    bad, _ = shop_upsert(platform="xianguanjia", name="bad", app_key="k2", app_secret="wrong")
    xgj.accounts["k2"] = "right"
    with pytest.raises(ConfigurationError):
        get_adapter(bad).fetch_order("5001")


def test_xianguanjia_timeout_is_retryable_with_unknown_outcome(xgj):
    shop, _ = shop_upsert(platform="xianguanjia", name="x", app_key="k", app_secret="s")
    xgj.add_order("5002", status=12)
    xgj.delay_next(1, 1.0)
    with pytest.raises(PlatformError) as err:
        get_adapter(shop, timeout=(1, 0.3)).ship(ShipRequest("5002"))
    assert err.value.retryable and err.value.outcome_unknown


@pytest.fixture
def top(settings):
    with FakeGoofish() as fake:
        fake.apps["gk"] = "gs"
        fake.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = fake.url + "/router/rest"
        yield fake


def test_goofish_query_ship_close_against_the_gateway(top):
    shop, _ = shop_upsert(platform="goofish", name="g", app_key="gk", app_secret="gs", session_token="seller-session")
    top.add_order("7001", status=2, quantity=2, payment_fen=990)
    adapter = get_adapter(shop)
    snap = adapter.fetch_order("7001")
    assert (snap.target_status, snap.quantity, snap.amount) == ("paid", 2, Decimal("9.90"))
    adapter.ship(ShipRequest("7001", waybill_no="SF123", express_name="顺丰"))
    assert adapter.fetch_order("7001").target_status == "shipped" and top.ship_calls["7001"] == 1
    top.add_order("7002", status=1)
    adapter.close("7002", "KYC 未通过")
    assert adapter.fetch_order("7002").target_status == "closed"


def test_goofish_bad_secret_or_session_is_a_configuration_error(top):
    shop, _ = shop_upsert(platform="goofish", name="g", app_key="gk", app_secret="nope", session_token="seller-session")
    top.add_order("7003")
    with pytest.raises(ConfigurationError):
        get_adapter(shop).fetch_order("7003")
    shop2, _ = shop_upsert(platform="goofish", name="g2", app_key="gk2", app_secret="gs2", session_token="expired")
    top.apps["gk2"] = "gs2"
    with pytest.raises(ConfigurationError):
        get_adapter(shop2).fetch_order("7003")


def relay(form):
    from urllib.parse import urlencode

    return Client().post("/webhooks/goofish/", data=urlencode(form), content_type="application/x-www-form-urlencoded")


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_goofish_relay_webhook_to_ready_to_ship(top, method, transactional_db):
    shop, _ = shop_upsert(platform="goofish", name="g", app_key="gk", app_secret="gs", session_token="seller-session")
    top.add_order("7004", status=2)
    form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7004", "order_status": 2}, msg_id="m1",
                        sign_method=method)
    resp = relay(form)
    assert resp.status_code == 200
    assert Order.objects.get(shop=shop, platform_order_id="7004").status == "ready_to_ship"


def test_goofish_relay_bad_signature_and_refund_message(top, transactional_db):
    shop, _ = shop_upsert(platform="goofish", name="g", app_key="gk", app_secret="gs", session_token="seller-session")
    top.add_order("7005", status=2)
    form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2})
    form["sign"] = "0" * 64
    assert relay(form).status_code == 401
    assert not Order.objects.exists()

    relay(signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005",
                                                                                   "order_status": 2}))
    time.sleep(1.1)  # the relay's timestamps have one-second resolution
    relay(signed_relay("gk", "gs", TOPIC_REFUND, {"order_id": "7005",
                                                                                    "order_status": 1}))
    assert Order.objects.get(platform_order_id="7005").status == "refunding"


def test_sandbox_round_trip():
    from orders.models import SandboxCall, SandboxOrder
    from orders.services import sandbox_order_simulate

    shop, _ = shop_upsert(platform="sandbox", name="沙箱", app_key="sbx", app_secret="x")
    event = sandbox_order_simulate(shop=shop, item_id="i1", quantity=2)
    adapter = get_adapter(shop)
    snap = adapter.fetch_order(event.platform_order_id)
    assert snap.target_status == "paid" and snap.quantity == 2
    adapter.ship(ShipRequest(event.platform_order_id, waybill_no="W1"))
    assert SandboxOrder.objects.get().status == "shipped"
    with pytest.raises(PlatformError):
        adapter.ship(ShipRequest(event.platform_order_id))
    assert SandboxCall.objects.filter(method="ship").count() == 2
