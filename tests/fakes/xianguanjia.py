"""A fake 闲管家 open API. It checks `appid`, the 5-minute `timestamp` window and the md5 signature over
the exact body bytes the way the platform describes it (implemented here independently of the adapter),
enforces the list's page size, its 10,000-record paging cap and its 6-month reach (`update_time`), and can be
told to fail or stall.

Credential failures answer HTTP 200 with the platform's envelope, `{"code": 401, "msg": "sign error"}`
(or "appid error" / "timestamp error"); business errors use other non-zero codes:
400 bad request, 404 no such order, 3001 status does not allow shipping, 4001 beyond the paging cap."""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import time
from collections import Counter
from urllib.parse import urlencode

from .server import FakePlatform, Request, Response

WINDOW = 300
REACH = 184 * 86400  # the list reaches orders updated in the last 6 months



def _md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()  # noqa: S324


def expected_sign(app_key: str, secret: str, body: bytes, timestamp: str) -> str:
    inner = _md5(body)
    return _md5((app_key + "," + inner + "," + timestamp + "," + secret).encode("utf-8"))


def sign_query(app_key: str, secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return urlencode({"appid": app_key, "timestamp": ts, "sign": expected_sign(app_key, secret, body, ts)})


def signed_push(app_key: str, secret: str, payload: dict, timestamp: int | None = None) -> tuple[str, bytes]:
    """A push as 闲管家 sends it to us: (query string, body bytes)."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return sign_query(app_key, secret, body, timestamp), body


class FakeXianguanjia(FakePlatform):
    def __init__(self):
        super().__init__()
        self.accounts: dict[str, str] = {}     # appid -> secret
        self.orders: dict[str, dict] = {}
        self.paging_cap = 10000
        self.cap_violations = 0
        self.reach_violations = 0
        self.ship_calls: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._fail: list[int] = []
        self._delay: list[float] = []
        self._drop_after_ship = 0
        self._index: list[tuple[int, str]] | None = None

    # test controls ---------------------------------------------------------------------------------
    def add_order(self, order_no: str, *, status: int = 12, refund_status: int = 0, item_id: str = "item-1",
                  title: str = "测试商品", quantity: int = 1, amount_fen: int = 100, update_time: int | None = None,
                  pay_time: int | None = None) -> dict:
        now = int(time.time())
        order = {
            "order_no": order_no, "order_status": status, "refund_status": refund_status,
            "order_time": (update_time or now) - 60, "pay_time": pay_time or (update_time or now) - 30,
            "update_time": update_time or now, "total_amount": amount_fen, "pay_amount": amount_fen,
            "pay_no": f"pay{order_no}", "receiver_name": "张三", "receiver_mobile": "13800138000",
            "prov_name": "浙江省", "city_name": "杭州市", "area_name": "余杭区", "town_name": "",
            "address": "文一西路 969 号", "waybill_no": "", "express_code": "", "express_name": "",
            "consign_type": 2, "consign_time": 0, "confirm_time": 0, "cancel_reason": "",
            "buyer_id": f"buyer-{order_no}", "buyer_nick": "买家",
            "items": [{"item_id": item_id, "title": title, "quantity": quantity, "price": amount_fen}],
        }
        with self.lock:
            self.orders[order_no] = order
            self._index = None
        return order

    def bulk_add(self, n: int, start_ts: int, end_ts: int, *, status: int = 22, prefix: str = "9") -> None:
        span = max(1, end_ts - start_ts)
        for i in range(n):
            self.add_order(f"{prefix}{i:018d}", status=status, update_time=start_ts + (i * span) // n,
                           item_id=f"item-{i % 7}")

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._fail.extend([status] * n)

    def delay_next(self, n: int = 1, seconds: float = 2.0) -> None:
        self._delay.extend([seconds] * n)

    def calls(self, name: str) -> int:
        return self._calls[name]

    # the platform ---------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response | None:
        name = req.path.rsplit("/", 1)[-1]
        with self.lock:
            self._calls[name] += 1
            fail = self._fail.pop(0) if self._fail else None
            delay = self._delay.pop(0) if self._delay else None
        if delay:
            time.sleep(delay)
        if fail:
            return Response(fail, {"code": fail, "msg": "server error"})
        if req.method != "POST":
            return Response(405, {"code": 405, "msg": "method not allowed"})
        appid, ts, sign = req.query.get("appid"), req.query.get("timestamp", ""), req.query.get("sign", "")
        secret = self.accounts.get(appid or "")
        if secret is None:
            return Response(200, {"code": 401, "msg": "appid error"})
        if not ts.isdigit() or abs(time.time() - int(ts)) > WINDOW:
            return Response(200, {"code": 401, "msg": "timestamp error"})
        if not hmac.compare_digest(sign.encode(), expected_sign(appid, secret, req.body, ts).encode()):
            return Response(200, {"code": 401, "msg": "sign error"})
        if not req.headers.get("content-type", "").startswith("application/json"):
            return Response(200, {"code": 400, "msg": "content-type must be application/json"})
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            return Response(200, {"code": 400, "msg": "bad json"})
        handler = {"list": self._list, "detail": self._detail, "ship": self._ship}.get(name)
        if handler is None:
            return Response(404, {"code": 404, "msg": "not found"})
        return handler(body)

    def _list(self, body: dict) -> Response:
        page_no, page_size = int(body.get("page_no", 1)), int(body.get("page_size", 20))
        if page_size > 100 or page_size < 1 or page_no < 1:
            return Response(200, {"code": 400, "msg": "page_no >= 1 and 1 <= page_size <= 100"})
        if page_no * page_size > self.paging_cap:
            self.cap_violations += 1
            return Response(200, {"code": 4001, "msg": "paging beyond 10000 records"})
        start, end = body.get("update_time") or [int(time.time()) - REACH, 2**31]
        if int(start) < int(time.time()) - REACH:
            self.reach_violations += 1
            return Response(200, {"code": 400, "msg": "update_time must be within the last 6 months"})
        with self.lock:
            # Sorted (update_time, order_no) index, rebuilt only after a change: paging 100,000 orders must
            # not re-sort them for every page (the backfill benchmark measures us, not the fake).
            if self._index is None or len(self._index) != len(self.orders):
                self._index = sorted((o["update_time"], o["order_no"]) for o in self.orders.values())
            lo = bisect.bisect_left(self._index, (int(start), ""))
            hi = bisect.bisect_right(self._index, (int(end), "\U0010ffff"))
            first = lo + (page_no - 1) * page_size
            keys = self._index[first: min(hi, first + page_size)]
            page = [self.orders[no] for _, no in keys]
            listed = [{k: v for k, v in o.items() if k != "items"} | {"item_id": o["items"][0]["item_id"]}
                      for o in page]
        return Response(200, {"code": 0, "msg": "OK",
                              "data": {"list": listed, "count": hi - lo, "page_no": page_no, "page_size": page_size}})

    def touch(self) -> None:
        """Call after changing an order's `update_time` directly in `orders` (the list index is rebuilt)."""
        with self.lock:
            self._index = None

    def _detail(self, body: dict) -> Response:
        with self.lock:
            order = self.orders.get(str(body.get("order_no")))
            data = json.loads(json.dumps(order)) if order is not None else None
        if data is None:
            return Response(200, {"code": 404, "msg": "order not found"})
        return Response(200, {"code": 0, "msg": "OK", "data": data})

    def _ship(self, body: dict) -> Response:
        missing = [k for k in ("order_no", "waybill_no", "express_code", "express_name") if not body.get(k)]
        if missing:
            return Response(200, {"code": 400, "msg": f"missing {','.join(missing)}"})
        with self.lock:
            order = self.orders.get(str(body["order_no"]))
            if order is None:
                return Response(200, {"code": 404, "msg": "order not found"})
            self.ship_calls[order["order_no"]] += 1
            if order["order_status"] != 12:
                return Response(200, {"code": 3001, "msg": "order status does not allow shipping"})
            now = int(time.time())
            order.update(order_status=21, waybill_no=body["waybill_no"], express_code=body["express_code"],
                         express_name=body["express_name"], consign_time=now, update_time=now)
            self._index = None
            drop = self._drop_after_ship > 0
            if drop:
                self._drop_after_ship -= 1
        if drop:  # shipped, but the answer is lost (the client sees a broken connection)
            return None
        return Response(200, {"code": 0, "msg": "OK", "data": {}})

    def drop_answer_after_next_ship(self, n: int = 1) -> None:
        self._drop_after_ship += n
