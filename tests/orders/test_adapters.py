"""Platform adapters against local fakes that check signatures the way each platform does (the fakes'
signing is written independently from the adapters'), plus known-answer vectors for every algorithm."""

import json
import time
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import shop_upsert
from common.http import ConfigurationError, PlatformError, RateLimited
from orders.adapters import OrderSnapshot, ShipRequest, get_adapter
from orders.adapters.goofish import TOPIC_ORDER, TOPIC_REFUND, goofish_target_status, top_sign
from orders.adapters.xianguanjia import xgj_sign, xgj_target_status
from orders.models import OrderStatus
from tests.fakes import goofish as fake_goofish
from tests.fakes import xianguanjia as fake_xgj
from tests.fakes.goofish import FakeGoofish, signed_relay
from tests.fakes.xianguanjia import FakeXianguanjia, signed_push

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


def is_money(value) -> bool:
    return isinstance(value, Decimal) and value.as_tuple().exponent == -2


# --- known answers ---------------------------------------------------------------------------------

# The example from the TOP documentation (secret "helloworld"): its published md5 signature.
TOP_DOC_PARAMS = {"method": "taobao.item.seller.get", "app_key": "12345678", "session": "test",
                  "timestamp": "2016-01-01 12:00:00", "format": "json", "v": "2.0", "sign_method": "md5",
                  "fields": "num_iid,title,nick,price,num", "num_iid": "11223344"}
BASE = {"method": "alibaba.idle.isv.order.query", "app_key": "12345678", "timestamp": "2026-01-01 12:00:00",
        "v": "2.0", "format": "json"}
# Computed with `openssl dgst -md5 -hmac secret` / `openssl dgst -sha256 -hmac secret` over
# "app_key12345678formatjsonmethodalibaba.idle.isv.order.querysign_method<m>timestamp2026-01-01 12:00:00v2.0".
TOP_VECTORS = [
    (TOP_DOC_PARAMS, "helloworld", "md5", "66987CB115214E59E6EC978214934FB8"),
    ({**BASE, "sign_method": "hmac"}, "secret", "hmac", "F43B8095E9DEA871E74B0EC9AED76676"),
    ({**BASE, "sign_method": "hmac-sha256"}, "secret", "hmac-sha256",
     "0BD0E874C675BBAA2B11112042B60AFFE55274EF914D00B6F50BF6E70E50F2A6"),
]


@pytest.mark.parametrize(("params", "secret", "method", "expected"), TOP_VECTORS)
def test_top_sign_known_answers(params, secret, method, expected):
    assert top_sign(params, secret, method) == expected
    assert top_sign({**params, "sign": "ignored"}, secret, method) == expected  # `sign` is never signed
    assert fake_goofish.sign(params, secret, method) == expected                # the fake agrees


# Computed with openssl md5 over "{appKey},{md5(body)},{timestamp},{appSecret}" (UTF-8).
XGJ_VECTORS = [
    ("k", "s", b'{"order_no":"3001"}', "1700000000", "aa8aa580351fee95effa47523ddce6fa"),
    ("appkey1", "秘密secret", '{"order_no":"3001","express_name":"虚拟发货"}'.encode(), "1767225600",
     "417ebe39840c1b7fc67a57f44944d4f1"),
    ("appkey1", "sec", b"", "1767225600", "5c0bd3c1670b959afc17e72bdea92671"),  # empty body signs md5("")
]


@pytest.mark.parametrize(("key", "secret", "body", "ts", "expected"), XGJ_VECTORS)
def test_xgj_sign_known_answers(key, secret, body, ts, expected):
    assert xgj_sign(key, secret, body, ts) == expected
    assert fake_xgj.expected_sign(key, secret, body, ts) == expected


@pytest.mark.parametrize(("order_status", "refund_status", "target"), [
    (11, 0, "pending_payment"), (12, 0, "paid"), (21, 0, "shipped"), (22, 0, "completed"), (23, 0, "refunded"),
    (24, 0, "closed"), (12, 1, "refunding"), (21, 2, "refunding"), (22, 3, "refunding"), (12, 8, "refunding"),
    (21, 5, "refunded"), (24, 5, "refunded"), (21, 4, "shipped"), (21, 6, "shipped"), (11, 1, "pending_payment"),
    ("12", "0", "paid"), (99, 0, None), (None, None, None),
])
def test_xgj_status_mapping(order_status, refund_status, target):
    assert xgj_target_status(order_status, refund_status) == target
    assert target is None or target in OrderStatus.values


def test_goofish_status_mapping():
    assert [goofish_target_status(i) for i in range(7)] == [
        None, "pending_payment", "paid", "shipped", "completed", "refunded", "closed"]
    assert goofish_target_status("2") == "paid" and goofish_target_status(None) is None


# --- 闲管家 -------------------------------------------------------------------------------------------

@pytest.fixture
def xgj(settings):
    with FakeXianguanjia() as fake:
        fake.accounts["k"] = "s"
        settings.XIANGUANJIA_BASE_URL = fake.url
        yield fake


@pytest.fixture
def xshop(db):
    shop, _ = shop_upsert(platform="xianguanjia", name="x", app_key="k", app_secret="s")
    return shop


def test_xianguanjia_fetch_maps_the_detail(xgj, xshop):
    pay = int(datetime(2026, 1, 2, 10, 0, tzinfo=SHANGHAI).timestamp())
    xgj.add_order("5001000000000000001", status=12, amount_fen=1234, quantity=3, item_id="it-9", pay_time=pay,
                  update_time=pay + 5)
    snap = get_adapter(xshop).fetch_order("5001000000000000001")
    assert isinstance(snap, OrderSnapshot)
    assert (snap.platform_order_id, snap.raw_status, snap.target_status) == ("5001000000000000001", "12", "paid")
    assert snap.amount == Decimal("12.34") and is_money(snap.amount)
    assert (snap.quantity, snap.item_id, snap.item_title) == (3, "it-9", "测试商品")
    assert snap.paid_at == datetime(2026, 1, 2, 10, 0, tzinfo=SHANGHAI) and snap.paid_at.tzinfo is not None
    assert snap.updated_at == snap.paid_at + timedelta(seconds=5)
    assert snap.receiver == {"name": "张三", "phone": "13800138000", "prov": "浙江省", "city": "杭州市",
                             "area": "余杭区", "address": "文一西路 969 号"}
    assert snap.buyer_id == "buyer-5001000000000000001" and snap.buyer_nick == "买家"
    # exactly one signed POST with a JSON body
    req = xgj.requests[-1]
    assert req.method == "POST" and req.path == "/api/open/order/detail"
    assert json.loads(req.body) == {"order_no": "5001000000000000001"}


def test_xianguanjia_amount_odd_values_never_float(xgj, xshop):
    xgj.add_order("5009", amount_fen=1)
    xgj.orders["5009"]["pay_amount"] = "19999"
    assert get_adapter(xshop).fetch_order("5009").amount == Decimal("199.99")


def test_xianguanjia_ship_virtual_is_status_only_and_second_ship_refused(xgj, xshop):
    xgj.add_order("5002", status=12)
    adapter = get_adapter(xshop)
    with pytest.raises(ConfigurationError):  # never an invented waybill
        adapter.ship(ShipRequest("5002"))
    assert xgj.requests == []
    result = adapter.ship_virtual("5002")
    assert result.ok
    assert xgj.requests[-1].path == "/api/open/trade/logistics/dummy/send"
    assert json.loads(xgj.requests[-1].body) == {"order_no": "5002", "send_way": 1}
    assert xgj.orders["5002"]["order_status"] == 21 and xgj.orders["5002"]["waybill_no"] == ""
    assert adapter.fetch_order("5002").target_status == "shipped"

    with pytest.raises(PlatformError) as second:
        adapter.ship(ShipRequest("5002", waybill_no="SF1", express_code="shunfeng", express_name="顺丰"))
    assert second.value.code == 3001 and not second.value.retryable and not second.value.outcome_unknown
    assert not isinstance(second.value, ConfigurationError)
    assert xgj.ship_calls["5002"] == 2 and xgj.orders["5002"]["waybill_no"] == ""


def test_xianguanjia_ship_with_waybill(xgj, xshop):
    xgj.add_order("5003", status=12)
    get_adapter(xshop).ship(ShipRequest("5003", waybill_no="SF123", express_code="shunfeng", express_name="顺丰"))
    assert (xgj.orders["5003"]["waybill_no"], xgj.orders["5003"]["express_code"]) == ("SF123", "shunfeng")


def test_xianguanjia_unknown_order_is_a_platform_error(xgj, xshop):
    with pytest.raises(PlatformError) as err:
        get_adapter(xshop).fetch_order("404404")
    assert err.value.code == 404 and not err.value.retryable and not isinstance(err.value, ConfigurationError)


def test_xianguanjia_list_paging_and_cap(xgj, xshop):
    t0 = int(datetime.now(SHANGHAI).timestamp()) - 30 * 86400  # within the list's 6-month reach
    xgj.bulk_add(250, t0, t0 + 2500)
    xgj.add_order("outside", update_time=t0 + 100000)
    adapter = get_adapter(xshop)
    assert (adapter.list_cap, adapter.list_page_size) == (10000, 100)
    start, end = datetime.fromtimestamp(t0, tz=SHANGHAI), datetime.fromtimestamp(t0 + 2500, tz=SHANGHAI)
    seen = []
    for page_no in (1, 2, 3):
        page = adapter.list_orders(start=start, end=end, page_no=page_no, page_size=100)
        assert page.total == 250 and page.page_no == page_no
        seen += [s.platform_order_id for s in page.items]
    assert len(seen) == len(set(seen)) == 250 and "outside" not in seen
    assert all(is_money(s.amount) and s.target_status == "completed" for s in page.items)
    assert json.loads(xgj.requests[-1].body)["update_time"] == [t0, t0 + 2500]

    with pytest.raises(PlatformError) as beyond:
        adapter.list_orders(start=start, end=end, page_no=101, page_size=100)
    assert beyond.value.code == 4001 and xgj.cap_violations == 1
    with pytest.raises(PlatformError):
        adapter.list_orders(start=start, end=end, page_no=1, page_size=101)


def test_xianguanjia_bad_credentials_are_configuration_errors(xgj, db):
    xgj.add_order("5004")
    xgj.accounts["k2"] = "right"
    bad, _ = shop_upsert(platform="xianguanjia", name="bad", app_key="k2", app_secret="wrong")
    with pytest.raises(ConfigurationError) as err:
        get_adapter(bad).fetch_order("5004")
    assert err.value.code == 401 and not err.value.retryable
    unknown, _ = shop_upsert(platform="xianguanjia", name="unknown", app_key="nobody", app_secret="s")
    with pytest.raises(ConfigurationError):
        get_adapter(unknown).fetch_order("5004")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_xianguanjia_5xx_is_retryable_with_unknown_outcome(xgj, xshop, status):
    xgj.add_order("5005")
    xgj.fail_next(1, status)
    with pytest.raises(PlatformError) as err:
        get_adapter(xshop).ship_virtual("5005")
    assert err.value.retryable and err.value.outcome_unknown and err.value.status == status


def test_xianguanjia_429_is_rate_limited(xgj, xshop):
    xgj.add_order("5006")
    xgj.fail_next(1, 429)
    with pytest.raises(RateLimited) as err:
        get_adapter(xshop).fetch_order("5006")
    assert err.value.retryable


def test_xianguanjia_timeout_is_retryable_with_unknown_outcome(xgj, xshop):
    xgj.add_order("5007", status=12)
    xgj.delay_next(1, 1.0)
    with pytest.raises(PlatformError) as err:
        get_adapter(xshop, timeout=(1, 0.3)).ship_virtual("5007")
    assert err.value.retryable and err.value.outcome_unknown
    # The platform did ship it after all: that is why the outcome is "unknown", not "failed".
    deadline = time.monotonic() + 3
    while xgj.orders["5007"]["order_status"] != 21 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert xgj.orders["5007"]["order_status"] == 21


def test_xianguanjia_close_is_not_supported(xshop):
    with pytest.raises(PlatformError) as err:
        get_adapter(xshop).close("5008", "KYC 未通过")
    assert not err.value.retryable


def _xgj_push(order_no="6001", order_status=12, refund_status=0, modify_time=None, **kw):
    payload = {"seller_id": 1, "user_name": "店主", "order_no": order_no, "order_type": 1,
               "order_status": order_status, "refund_status": refund_status,
               "modify_time": int(time.time()) if modify_time is None else modify_time}
    qs, body = signed_push(kw.pop("app_key", "k"), kw.pop("secret", "s"), payload, **kw)
    return dict(parse_qsl(qs)), body


def test_xianguanjia_verify_push(xshop):
    adapter = get_adapter(xshop)
    query, body = _xgj_push()
    assert adapter.verify_push(query=query, body=body, headers={})
    assert adapter.verify_push(query={**query, "sign": query["sign"].upper()}, body=body, headers={})

    assert not adapter.verify_push(query={**query, "sign": "0" * 32}, body=body, headers={})
    assert not adapter.verify_push(query={k: v for k, v in query.items() if k != "sign"}, body=body, headers={})
    assert not adapter.verify_push(query=query, body=body + b" ", headers={})            # body tampered
    assert not adapter.verify_push(query={**query, "appid": "other"}, body=body, headers={})
    for kw in ({"secret": "wrong"}, {"app_key": "other"}, {"timestamp": int(time.time()) - 601},
               {"timestamp": int(time.time()) + 601}):
        q, b = _xgj_push(**kw)
        assert not adapter.verify_push(query=q, body=b, headers={}), kw
    q, b = _xgj_push(timestamp=int(time.time()) - 590)
    assert adapter.verify_push(query=q, body=b, headers={})
    assert not adapter.verify_push(query={**query, "timestamp": "abc"}, body=body, headers={})
    assert not adapter.verify_push(query={**query, "sign": "签名"}, body=body, headers={})   # no TypeError
    assert not adapter.verify_push(query={**query, "appid": "店铺"}, body=body, headers={})


def test_xianguanjia_parse_push():
    adapter = get_adapter(type("S", (), {"platform": "xianguanjia", "app_key": "k", "app_secret": "s"})())
    at = datetime(2026, 1, 2, 10, 30, 5, tzinfo=SHANGHAI)
    _, body = _xgj_push("6002", 12, 0, int(at.timestamp()))
    msg = adapter.parse_push(query={}, body=body)
    assert (msg.platform_order_id, msg.topic, msg.raw_status, msg.target_status) == ("6002", "order", "12", "paid")
    assert msg.key == f"xgj:6002:12:0:{int(at.timestamp())}" and msg.event_at == at

    _, body = _xgj_push("6002", 21, 1, "2026-01-02 10:30:05")  # Beijing wall time
    msg = adapter.parse_push(query={}, body=body)
    assert msg.event_at == at and msg.event_at.tzinfo is not None and msg.target_status == "refunding"
    assert msg.key == "xgj:6002:21:1:2026-01-02 10:30:05"

    _, body = _xgj_push("6002", 22, 5)
    assert adapter.parse_push(query={}, body=body).target_status == "refunded"

    body = json.dumps({"order_status": 12}).encode()
    msg = adapter.parse_push(query={}, body=body)
    assert msg.key.startswith("xgj:sha256:") and len(msg.key) == len("xgj:sha256:") + 64 and not msg.platform_order_id
    with pytest.raises(ValueError):
        adapter.parse_push(query={}, body=b"not json")


# --- open platform (TOP) ---------------------------------------------------------------------------

@pytest.fixture
def top(settings):
    with FakeGoofish() as fake:
        fake.apps["gk"] = "gs"
        fake.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = fake.url + "/router/rest"
        yield fake


@pytest.fixture
def gshop(db):
    shop, _ = shop_upsert(platform="goofish", name="g", app_key="gk", app_secret="gs", session_token="seller-session")
    return shop


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_goofish_query_ship_close_with_each_sign_method(top, gshop, method):
    top.add_order("7001", status=2, quantity=2, payment_fen=990)
    adapter = get_adapter(gshop, sign_method=method)
    snap = adapter.fetch_order("7001")
    assert (snap.target_status, snap.raw_status, snap.quantity, snap.amount) == ("paid", "2", 2, Decimal("9.90"))
    assert is_money(snap.amount) and snap.paid_at.tzinfo is not None and snap.buyer_id == "eb-7001"
    assert snap.receiver == {"name": "李四", "phone": "13900139000", "prov": "浙江", "city": "杭州", "area": "西湖",
                             "address": "某路 1 号"}
    sent = top.requests[-1].form()
    assert sent["sign_method"] == method and sent["simplify"] == "true" and sent["v"] == "2.0"
    assert json.loads(sent["param_appraise_isv_order_query"]) == {"biz_order_id": "7001"}
    assert datetime.strptime(sent["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI) - timezone.now() \
        < timedelta(seconds=5)

    adapter.ship(ShipRequest("7001", waybill_no="SF123", express_name="顺丰"))
    shipped = adapter.fetch_order("7001")
    assert shipped.target_status == "shipped" and shipped.waybill_no == "SF123" and top.ship_calls["7001"] == 1

    top.add_order("7002", status=1)
    adapter.close("7002", "KYC 未通过")
    assert adapter.fetch_order("7002").target_status == "closed"
    assert json.loads(top.requests[-2].form()["isv_appraise_isv_order_close_dto"]) == {
        "biz_order_id": "7002", "close_reason": "KYC 未通过"}


def test_goofish_virtual_ship_is_status_only_and_refusals(top, gshop):
    top.add_order("7010", status=2)
    adapter = get_adapter(gshop)
    with pytest.raises(ConfigurationError):  # never an invented waybill
        adapter.ship(ShipRequest("7010"))
    assert top.requests == []
    assert adapter.ship_virtual("7010").ok
    sent = top.requests[-1].form()
    assert sent["method"] == "alibaba.idle.order.dummy.send"
    assert json.loads(sent["param_order_dummy_send_request"]) == {"biz_order_id": 7010}
    assert "ship_mail_no" not in sent and top.orders["7010"]["order_status"] == 3
    with pytest.raises(PlatformError) as again:
        adapter.ship_virtual("7010")
    assert again.value.code == "STATUS" and not again.value.retryable
    with pytest.raises(PlatformError) as close:
        adapter.close("7010", "too late")
    assert not close.value.retryable and not isinstance(close.value, ConfigurationError)
    with pytest.raises(PlatformError):
        adapter.fetch_order("no-such-order")


def test_goofish_credential_errors_are_configuration_errors(top, db):
    top.add_order("7003")
    cases = [("gk", "nope", "seller-session", 25), ("gk", "gs", "expired", 27), ("unknown", "gs", "seller-session", 29)]
    for i, (key, secret, session, code) in enumerate(cases):
        top.apps.setdefault(key, "gs") if key != "unknown" else None
        shop, _ = shop_upsert(platform="goofish", name=f"g{i}", app_key=key, app_secret=secret, session_token=session)
        with pytest.raises(ConfigurationError) as err:
            get_adapter(shop).fetch_order("7003")
        assert err.value.code == code and not err.value.retryable
    calls = len(top.requests)
    shop, _ = shop_upsert(platform="goofish", name="nosession", app_key="gk", app_secret="gs", session_token="")
    with pytest.raises(ConfigurationError):
        get_adapter(shop).fetch_order("7003")
    assert len(top.requests) == calls  # refused before any call


def test_goofish_5xx_and_timeout_are_retryable_with_unknown_outcome(top, gshop):
    top.add_order("7004", status=2)
    top.fail_next(1, 502)
    with pytest.raises(PlatformError) as err:
        get_adapter(gshop).ship_virtual("7004")
    assert err.value.retryable and err.value.outcome_unknown and top.ship_calls["7004"] == 0
    top.delay_next(1, 1.0)
    with pytest.raises(PlatformError) as slow:
        get_adapter(gshop, timeout=(1, 0.3)).ship_virtual("7004")
    assert slow.value.retryable and slow.value.outcome_unknown


def _form(params: dict) -> bytes:
    return urlencode(params).encode()


@pytest.mark.parametrize("method", ["md5", "hmac", "hmac-sha256"])
def test_goofish_verify_push(gshop, method):
    adapter = get_adapter(gshop)
    good = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, msg_id="m1",
                        sign_method=method)
    assert adapter.verify_push(query={}, body=_form(good), headers={})
    assert adapter.verify_push(query=good, body=b"", headers={})                       # all in the query string
    half = dict(list(good.items())[:3])
    rest = {k: v for k, v in good.items() if k not in half}
    assert adapter.verify_push(query=half, body=_form(rest), headers={})               # split between both

    assert not adapter.verify_push(query={}, body=_form({**good, "sign": "0" * 32}), headers={})
    assert not adapter.verify_push(query={}, body=_form({k: v for k, v in good.items() if k != "sign"}), headers={})
    assert not adapter.verify_push(query={}, body=_form({**good, "message": '{"order_id":"1"}'}), headers={})
    assert not adapter.verify_push(query={}, body=_form({**good, "sign_method": "sha1"}), headers={})
    assert not adapter.verify_push(query={}, body=b"\xff\xfe", headers={})
    assert not adapter.verify_push(query={}, body=_form({**good, "sign": "签名"}), headers={})
    assert not adapter.verify_push(query={}, body=_form({**good, "app_key": "店铺"}), headers={})
    wrong_key = signed_relay("other", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, sign_method=method)
    wrong_secret = signed_relay("gk", "bad", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, sign_method=method)
    beijing = datetime.now(SHANGHAI)
    stale = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, sign_method=method,
                         timestamp=(beijing - timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S"))
    future = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, sign_method=method,
                          timestamp=(beijing + timedelta(minutes=11)).strftime("%Y-%m-%d %H:%M:%S"))
    utc_clock = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, sign_method=method,
                             timestamp=datetime.now(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S"))  # UTC, 8 h off
    for bad in (wrong_key, wrong_secret, stale, future, utc_clock):
        assert not adapter.verify_push(query={}, body=_form(bad), headers={})
    recent = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7005", "order_status": 2}, sign_method=method,
                          timestamp=(beijing - timedelta(minutes=9)).strftime("%Y-%m-%d %H:%M:%S"))
    assert adapter.verify_push(query={}, body=_form(recent), headers={})


def test_goofish_parse_push():
    adapter = get_adapter(type("S", (), {"platform": "goofish", "app_key": "gk", "app_secret": "gs",
                                         "session_token": ""})())
    form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": 7006, "order_status": 2, "x_global_biz_code": "x"},
                        msg_id="m-42", pub_time="2026-01-02 10:30:05")
    msg = adapter.parse_push(query={}, body=_form(form))
    assert (msg.key, msg.topic, msg.platform_order_id, msg.raw_status, msg.target_status) == (
        "top:m-42", "order", "7006", "2", "paid")
    assert msg.event_at == datetime(2026, 1, 2, 10, 30, 5, tzinfo=SHANGHAI)

    for status, target in ((1, "refunding"), (2, "refunding"), (3, "refunding"), (8, "refunding"), (5, "refunded"),
                           (4, None), (6, None), (9, None), (11, None)):
        form = signed_relay("gk", "gs", TOPIC_REFUND, {"order_id": "7006", "order_status": status})
        msg = adapter.parse_push(query={}, body=_form(form))
        assert (msg.topic, msg.target_status) == ("refund", target), status
        assert msg.key.startswith("top:sha256:")
        assert msg.event_at == datetime.strptime(form["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
    for status, target in ((0, None), (1, "pending_payment"), (3, "shipped"), (4, "completed"), (5, "refunded"),
                           (6, "closed")):
        form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7006", "order_status": status})
        assert adapter.parse_push(query={}, body=_form(form)).target_status == target
    # the same message without an id gets the same key twice (duplicates collapse in the inbox)
    one = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7006", "order_status": 3})
    assert adapter.parse_push(query={}, body=_form(one)).key == adapter.parse_push(query=one, body=b"").key
    # without an id, the message's own time is part of its identity: the same refund status published again
    # later is a new message; the same publication relayed twice (signed anew) is the same one
    key = adapter.parse_push
    refund = {"order_id": "7006", "order_status": 1}
    first = signed_relay("gk", "gs", TOPIC_REFUND, refund, pub_time="2026-01-02 10:00:00")
    resent = signed_relay("gk", "gs", TOPIC_REFUND, refund, pub_time="2026-01-02 10:00:00",
                          timestamp="2026-01-02 10:03:00")
    reopened = signed_relay("gk", "gs", TOPIC_REFUND, refund, pub_time="2026-01-02 11:00:00")
    assert key(query={}, body=_form(first)).key == key(query={}, body=_form(resent)).key
    assert key(query={}, body=_form(first)).key != key(query={}, body=_form(reopened)).key
    no_pub = [signed_relay("gk", "gs", TOPIC_REFUND, refund, timestamp=t)
              for t in ("2026-01-02 10:00:00", "2026-01-02 11:00:00")]
    assert key(query={}, body=_form(no_pub[0])).key != key(query={}, body=_form(no_pub[1])).key
    with pytest.raises(ValueError):
        adapter.parse_push(query={}, body=_form({**one, "topic": "taobao_trade_TradeCreate"}))
    with pytest.raises(ValueError):
        adapter.parse_push(query={}, body=_form({**one, "message": "not json"}))


def test_goofish_relay_webhook_stores_good_and_rejects_bad(gshop):
    from orders.models import OrderInboxEvent

    form = signed_relay("gk", "gs", TOPIC_ORDER, {"order_id": "7007", "order_status": 2}, msg_id="relay-1")
    bad = {**form, "sign": "0" * 64}
    post = Client().post
    assert post("/webhooks/goofish/", data=urlencode(bad), content_type="application/x-www-form-urlencoded"
                ).status_code == 401
    assert not OrderInboxEvent.objects.filter(key="top:relay-1").exists()
    resp = post("/webhooks/goofish/", data=urlencode(form), content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 200
    assert OrderInboxEvent.objects.filter(key="top:relay-1", platform_order_id="7007").exists()


# --- sandbox ---------------------------------------------------------------------------------------

def test_sandbox_round_trip():
    from orders.adapters.sandbox import CLOSABLE, SHIPPABLE
    from orders.models import SandboxCall, SandboxOrder

    assert set(SHIPPABLE) | set(CLOSABLE) <= set(OrderStatus.values)
    shop, _ = shop_upsert(platform="sandbox", name="沙箱", app_key="sbx", app_secret="x")
    now = timezone.now()
    SandboxOrder.objects.create(shop=shop, order_no="S1", status=OrderStatus.PAID, item_id="i1", quantity=2,
                                amount_fen=1999, modified_at=now)
    SandboxOrder.objects.create(shop=shop, order_no="S2", status=OrderStatus.PENDING_PAYMENT, item_id="i1",
                                modified_at=now - timedelta(hours=2))
    adapter = get_adapter(shop)
    assert not adapter.verify_push(query={}, body=b"{}", headers={})

    snap = adapter.fetch_order("S1")
    assert (snap.target_status, snap.quantity, snap.amount) == ("paid", 2, Decimal("19.99")) and is_money(snap.amount)
    page = adapter.list_orders(start=now - timedelta(hours=1), end=now + timedelta(minutes=1), page_no=1, page_size=100)
    assert page.total == 1 and [s.platform_order_id for s in page.items] == ["S1"]

    assert adapter.ship(ShipRequest("S1", waybill_no="W1", express_name="顺丰")).ok
    order = SandboxOrder.objects.get(order_no="S1")
    assert (order.status, order.waybill_no, order.express_name) == ("shipped", "W1", "顺丰")
    with pytest.raises(PlatformError) as again:
        adapter.ship(ShipRequest("S1"))
    assert not again.value.retryable
    with pytest.raises(PlatformError):
        adapter.close("S1", "too late")
    with pytest.raises(PlatformError):
        adapter.fetch_order("nope")

    adapter.close("S2", "unpaid")
    adapter.close("S2", "unpaid")  # closing a closed order is a no-op
    assert adapter.fetch_order("S2").target_status == "closed"
    assert SandboxCall.objects.filter(shop=shop, method="ship").count() == 2
    assert SandboxCall.objects.filter(shop=shop, method="close").count() == 3
    assert SandboxCall.objects.filter(shop=shop, method="fetch_order").count() == 3

    body = json.dumps({"order_no": "S1", "status": "paid", "modified_at": now.isoformat()}).encode()
    msg = adapter.parse_push(query={}, body=body)
    assert (msg.platform_order_id, msg.target_status, msg.event_at) == ("S1", "paid", now)
