"""A fake TOP gateway for the Xianyu open platform: checks app_key, session, the ±10 minute timestamp and
the signature for md5 / hmac / hmac-sha256 (written here from the protocol text, independently of the
adapter), and answers order.query / order.ship / order.close with TOP's envelopes (simplify=true shape:
`{"result": …}`; errors `{"error_response": {code, msg, sub_code, sub_msg, request_id}}` with TOP's codes:
24/25 missing/invalid signature, 26/27 missing/invalid session, 28/29 missing/invalid app key,
30/31 missing/invalid timestamp). Shipping is allowed from order_status 2 only; closing from 1 or 2.

Delivery (docs/platforms.md): `alibaba.idle.order.msg.send` {order_id, text} puts the text in front of the
buyer of an order awaiting shipment or shipped (status 2 or 3) and answers `{"send_success": true}`
(false for any other order); `alibaba.idle.order.dummy.send` {param_order_dummy_send_request:
{biz_order_id}} ships a status-2 order without logistics, answering `{"result": {"success", "data", "err_code",
"err_msg"}}`. `buyer_received[order_id]` lists every text that reached the buyer. `drop_next(method)`: the
call takes effect but its answer is lost.


Buyer access tokens (the mini-program's `accessToken`, used as `session`): `buyer_tokens` says which orders
each token may see. With a buyer token, order.query answers only that buyer's orders (any other:
`isv.permission-denied`), and ship/close are refused (code 11, insufficient permissions)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

from .server import FakePlatform, Request, Response

CST = timezone(timedelta(hours=8))



def sign(params: dict, secret: str, method: str) -> str:
    text = ""
    for name in sorted(params):
        if name != "sign":
            text += name + str(params[name])
    if method == "md5":
        return hashlib.md5((secret + text + secret).encode()).hexdigest().upper()  # noqa: S324
    algo = {"hmac": hashlib.md5, "hmac-sha256": hashlib.sha256}[method]
    return hmac.new(secret.encode(), text.encode(), algo).hexdigest().upper()


def now_cst() -> str:
    return datetime.now(CST).strftime("%Y-%m-%d %H:%M:%S")


def signed_relay(app_key: str, secret: str, topic: str, message: dict, msg_id: str | None = None,
                 sign_method: str = "hmac-sha256", timestamp: str | None = None, pub_time: str | None = None) -> dict:
    """A TMC message as our HTTP relay forwards it (form fields, TOP-signed); see orders/adapters/goofish.py."""
    params = {"app_key": app_key, "timestamp": timestamp or now_cst(), "sign_method": sign_method, "topic": topic,
              "message": json.dumps(message, ensure_ascii=False, separators=(",", ":"))}
    if msg_id:
        params["msg_id"] = msg_id
    if pub_time:
        params["pub_time"] = pub_time
    params["sign"] = sign(params, secret, sign_method)
    return params


def _err(code, msg, sub_code="", sub_msg=""):
    return Response(200, {"error_response": {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg,
                                             "request_id": "fake"}})


class FakeGoofish(FakePlatform):
    def __init__(self):
        super().__init__()
        self.apps: dict[str, str] = {}       # app_key -> secret
        self.sessions: set[str] = set()
        self.buyer_tokens: dict[str, set[str]] = {}   # buyer access token -> the order ids it may see
        self.orders: dict[str, dict] = {}
        self.ship_calls: Counter[str] = Counter()          # isv.order.ship and order.dummy.send per order
        self.buyer_received: dict[str, list[str]] = {}
        self.refuse_messages: set[str] = set()      # orders whose buyer cannot be messaged (send_success false)
        self._drop: Counter[str] = Counter()
        self.close_calls: Counter[str] = Counter()
        self.method_calls: Counter[str] = Counter()
        self._fail: list[int] = []
        self._delay: list[float] = []

    def add_order(self, oid: str, *, status: int = 2, item_id: str = "item-1", quantity: int = 1,
                  payment_fen: int = 100) -> dict:
        t = int(time.time() * 1000)
        order = {"biz_order_id": oid, "order_status": status, "buy_amount": quantity, "buyer_nick": "买家",
                 "encryption_buyer_id": f"eb-{oid}", "create_time": t - 60000, "pay_time": t - 30000,
                 "item": {"item_id": item_id, "title": "测试商品", "price": payment_fen}, "payment": payment_fen,
                 "post_fee": 0, "sku": "", "buyer_address": {"name": "李四", "phone": "13900139000", "prov": "浙江",
                                                              "city": "杭州", "area": "西湖", "address": "某路 1 号"},
                 "logistics": {}}
        with self.lock:
            self.orders[oid] = order
        return order

    def drop_next(self, method: str, n: int = 1) -> None:
        self._drop[method] += n

    def _dropped(self, method: str) -> bool:
        if self._drop[method] > 0:
            self._drop[method] -= 1
            return True
        return False

    def fail_next(self, n=1, status=500):
        self._fail.extend([status] * n)

    def delay_next(self, n=1, seconds=2.0):
        self._delay.extend([seconds] * n)

    def handle(self, req: Request) -> Response | None:
        with self.lock:
            fail = self._fail.pop(0) if self._fail else None
            delay = self._delay.pop(0) if self._delay else None
        if delay:
            time.sleep(delay)
        if fail:
            return Response(fail, "gateway error")
        p = {**req.query, **req.form()}
        secret = self.apps.get(p.get("app_key", ""))
        if not p.get("app_key"):
            return _err(28, "Missing app key")
        if secret is None:
            return _err(29, "Invalid app Key", "isv.appkey-not-exists")
        if not p.get("timestamp"):
            return _err(30, "Missing timestamp")
        try:
            sent = datetime.strptime(p.get("timestamp", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        except ValueError:
            return _err(31, "Invalid timestamp")
        if abs(datetime.now(CST) - sent) > timedelta(minutes=10):
            return _err(31, "Invalid timestamp")
        if not p.get("sign"):
            return _err(24, "Missing signature")
        method = p.get("sign_method", "md5")
        if method not in ("md5", "hmac", "hmac-sha256") or not hmac.compare_digest(
                p["sign"].encode(), sign(p, secret, method).encode()):
            return _err(25, "Invalid signature", "isv.invalid-signature")
        if p.get("v") != "2.0":
            return _err(32 if not p.get("v") else 34, "Invalid version")
        if p.get("format", "xml") != "json":
            return _err(23, "Invalid format (this fake speaks json only)")
        if not p.get("session"):
            return _err(26, "Missing session")
        buyer_orders = self.buyer_tokens.get(p["session"])
        if p["session"] not in self.sessions and buyer_orders is None:
            return _err(27, "Invalid session", "isv.invalid-session")
        name = p.get("method")
        if not name:
            return _err(21, "Missing method")
        with self.lock:
            self.method_calls[name] += 1
        if buyer_orders is not None and name != "alibaba.idle.isv.order.query":
            return _err(11, "Insufficient isv permissions", "isv.permission-denied")
        if name == "alibaba.idle.isv.order.query":
            oid = json.loads(p.get("param_appraise_isv_order_query") or "{}").get("biz_order_id")
            if buyer_orders is not None and str(oid) not in buyer_orders:
                return _err(15, "Remote service error", "isv.permission-denied", "the order is not this buyer's")
            with self.lock:
                order = self.orders.get(str(oid))
                module = json.loads(json.dumps(order)) if order is not None else None
            if module is None:
                return Response(200, {"result": {"success": False, "msg": "not found"}})
            return Response(200, {"result": {"success": True, "module": module}})
        if name == "alibaba.idle.isv.order.ship":
            oid = p.get("biz_order_id", "")
            with self.lock:
                order = self.orders.get(oid)
                self.ship_calls[oid] += 1
                if order is None or not p.get("ship_mail_no"):
                    return Response(200, {"result": {"result_success": False, "result_err_code": "PARAM",
                                                     "result_err_msg": "bad parameters"}})
                if order["order_status"] != 2:
                    return Response(200, {"result": {"result_success": False, "result_err_code": "STATUS",
                                                     "result_err_msg": "order cannot be shipped"}})
                order.update(order_status=3, ship_time=int(time.time() * 1000),
                             logistics={"express_no": p["ship_mail_no"],
                                        "express_comp_name": p.get("logistics_company", "")})
            return Response(200, {"result": {"result_success": True}})
        if name == "alibaba.idle.order.msg.send":
            oid, text = p.get("order_id", ""), p.get("text", "")
            if not oid or not text:
                return _err(40, "Missing required arguments", "isv.missing-parameter")
            with self.lock:
                order = self.orders.get(oid)
                ok = order is not None and order["order_status"] in (2, 3) and oid not in self.refuse_messages
                if ok:
                    self.buyer_received.setdefault(oid, []).append(text)
                drop = ok and self._dropped(name)
            if drop:
                return None
            return Response(200, {"send_success": ok, "request_id": "fake-msg"})
        if name == "alibaba.idle.order.dummy.send":
            try:
                dto = json.loads(p.get("param_order_dummy_send_request") or "{}")
            except ValueError:
                return _err(41, "Invalid arguments", "isv.invalid-parameter")
            oid = str(dto.get("biz_order_id") or "") if isinstance(dto, dict) else ""
            if not oid:
                return _err(40, "Missing required arguments", "isv.missing-parameter")
            with self.lock:
                order = self.orders.get(oid)
                if order is None:
                    return Response(200, {"result": {"success": False, "data": False, "err_code": "NOT_FOUND",
                                                     "err_msg": "order not found"}})
                self.ship_calls[oid] += 1
                if order["order_status"] != 2:
                    return Response(200, {"result": {"success": False, "data": False, "err_code": "STATUS",
                                                     "err_msg": "order cannot be shipped"}})
                order.update(order_status=3, ship_time=int(time.time() * 1000), logistics={})
                drop = self._dropped(name)
            if drop:
                return None
            return Response(200, {"result": {"success": True, "data": True}})
        if name == "alibaba.idle.isv.order.close":
            dto = json.loads(p.get("isv_appraise_isv_order_close_dto") or "{}")
            with self.lock:
                order = self.orders.get(str(dto.get("biz_order_id")))
                if order is None or not dto.get("close_reason"):
                    return _err(40, "Missing required arguments", "isv.missing-parameter")
                self.close_calls[order["biz_order_id"]] += 1
                if order["order_status"] not in (1, 2):
                    return _err(15, "Remote service error", "isv.order-status-not-allow-close",
                                "order cannot be closed in its status")
                order.update(order_status=6, end_time=int(time.time() * 1000))
            return Response(200, {"result": {"data": True}})
        return _err(22, "Invalid method", "isv.invalid-method")
