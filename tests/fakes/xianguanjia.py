"""A fake 闲管家 open API. It checks `appid`, the 5-minute `timestamp` window and the md5 signature over
the exact body bytes the way the platform describes it (implemented here independently of the adapter),
enforces the list's page size, its 10,000-record paging cap and its 6-month reach (`update_time`), and can be
told to fail or stall.

Credential failures answer HTTP 200 with the platform's envelope, `{"code": 401, "msg": "sign error"}`
(or "appid error" / "timestamp error"); business errors use other non-zero codes:
400 bad request, 404 no such order / 卡种, 3001 status does not allow shipping, 3002 not enough codes in the
卡种, 4001 beyond the paging cap.

Delivery, implementing exactly what docs/platforms.md states (confirmed parts, and our assumptions where the
documentation is silent):
- `/api/open/order/ship` (physical): order_no, waybill_no, express_code, express_name required.
- `/api/open/trade/logistics/dummy/send` {order_no: str, send_way: 1 | 2} (ints strictly typed): 1 marks the
  order shipped (status only); 2 takes `quantity` codes from the front of the 卡种 bound to the item (bound
  "in the 闲管家 UI": `bind_item`), sends them to the buyer in 闲管家's 卡密 message and marks the order
  shipped — unless the item has a 发货申明 (`declare`), when the order is shipped and the codes wait until
  `buyer_confirms(order_no)`.
- `/api/open/kami/storage/create` {kind_id: int, cost: int, is_cover, is_repeat, is_priority: 0 | 1,
  cards: [{card_no: str, card_pwd: str}]}: is_cover 1 empties the 卡种 first; is_repeat 0 skips a card already
  in the 卡种 or sold from it; is_priority 1 puts the new cards in front (sold first).
- `/api/open/order/kam/list` {order_no of 19+ digits} → data.list [{card_no, card_pwd, cost, sold_type}]
  of the cards 闲管家 delivered to the order.
`buyer_received[order_no]` holds what reached the buyer (each delivered card's text, as in the 卡密 message)."""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
import re
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
        self.ship_calls: Counter[str] = Counter()       # calls that ship an order: order/ship and dummy/send
        self.kinds: dict[int, list[dict]] = {}             # 卡种 id -> unsold cards, front first
        self.sold: dict[int, list[dict]] = {}              # 卡种 id -> cards sold from it
        self.bindings: dict[str, int] = {}                 # item_id -> 卡种 id (done in the 闲管家 UI)
        self.declared: set[str] = set()                    # items with a 发货申明
        self.held: dict[str, list[dict]] = {}              # order_no -> cards waiting for the buyer's confirmation
        self.kam: dict[str, list[dict]] = {}               # order_no -> cards delivered (kam/list)
        self.buyer_received: dict[str, list[str]] = {}     # order_no -> what reached the buyer
        self._calls: Counter[str] = Counter()
        self._fail: list[int] = []
        self._delay: list[float] = []
        self._drop_after_ship = 0
        self._dropped_upload = 0
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

    def add_kind(self, kind_id: int, item_id: str | None = None) -> None:
        with self.lock:
            self.kinds.setdefault(kind_id, [])
            self.sold.setdefault(kind_id, [])
            if item_id:
                self.bindings[item_id] = kind_id

    def declare(self, item_id: str) -> None:
        """The item has a 发货申明: codes wait for the buyer's confirmation."""
        self.declared.add(item_id)

    def buyer_confirms(self, order_no: str) -> None:
        with self.lock:
            cards = self.held.pop(order_no, [])
            self._deliver(order_no, cards)

    def _deliver(self, order_no: str, cards: list[dict]) -> None:
        self.kam.setdefault(order_no, []).extend(
            {**card, "cost": 0, "sold_type": 11} for card in cards)
        self.buyer_received.setdefault(order_no, []).extend(
            f"{c['card_no']} {c['card_pwd']}".strip() if c["card_no"] else c["card_pwd"] for c in cards)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._fail.extend([status] * n)

    def delay_next(self, n: int = 1, seconds: float = 2.0) -> None:
        self._delay.extend([seconds] * n)

    def calls(self, name: str) -> int:
        return self._calls[name]

    # the platform ---------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response | None:
        name = {"/api/open/order/kam/list": "kam_list", "/api/open/trade/logistics/dummy/send": "dummy_send",
                "/api/open/kami/storage/create": "storage_create"}.get(req.path, req.path.rsplit("/", 1)[-1])
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
        handlers = {"/api/open/order/list": self._list, "/api/open/order/detail": self._detail,
                    "/api/open/order/ship": self._ship, "/api/open/trade/logistics/dummy/send": self._dummy_send,
                    "/api/open/kami/storage/create": self._storage_create, "/api/open/order/kam/list": self._kam_list}
        handler = handlers.get(req.path)
        if handler is None:
            return Response(404, {"code": 404, "msg": "not found"})
        if not isinstance(body, dict):
            return Response(200, {"code": 400, "msg": "body must be an object"})
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
            drop = self._dropped()
        if drop:  # shipped, but the answer is lost (the client sees a broken connection)
            return None
        return Response(200, {"code": 0, "msg": "OK", "data": {}})

    def drop_answer_after_next_ship(self, n: int = 1) -> None:
        """The next n shipping calls (order/ship or dummy/send) take effect, but their answer is lost."""
        self._drop_after_ship += n

    def _dropped(self) -> bool:
        drop = self._drop_after_ship > 0
        if drop:
            self._drop_after_ship -= 1
        return drop

    def _dummy_send(self, body: dict) -> Response:
        order_no, way = body.get("order_no"), body.get("send_way")
        if not isinstance(order_no, str) or not order_no or type(way) is not int or way not in (1, 2):
            return Response(200, {"code": 400, "msg": "order_no (string) and send_way (1 or 2) required"})
        with self.lock:
            order = self.orders.get(order_no)
            if order is None:
                return Response(200, {"code": 404, "msg": "order not found"})
            self.ship_calls[order_no] += 1
            if order["order_status"] != 12:
                return Response(200, {"code": 3001, "msg": "order status does not allow shipping"})
            if way == 2:
                item = order["items"][0]["item_id"]
                kind = self.bindings.get(item)
                if kind is None:
                    return Response(200, {"code": 400, "msg": "商品未关联卡种"})
                need = sum(int(i.get("quantity") or 1) for i in order["items"])
                pool = self.kinds[kind]
                if len(pool) < need:
                    return Response(200, {"code": 3002, "msg": "卡密库存不足"})
                cards, self.kinds[kind] = pool[:need], pool[need:]
                self.sold[kind].extend(cards)
                if item in self.declared:
                    self.held[order_no] = cards
                else:
                    self._deliver(order_no, cards)
            now = int(time.time())
            order.update(order_status=21, consign_type=2, consign_time=now, update_time=now)
            self._index = None
            drop = self._dropped()
        if drop:
            return None
        return Response(200, {"code": 0, "msg": "OK", "data": {}})

    def _storage_create(self, body: dict) -> Response:
        kind, cards = body.get("kind_id"), body.get("cards")
        flags = [body.get(k) for k in ("is_cover", "is_repeat", "is_priority")]
        if (type(kind) is not int or type(body.get("cost")) is not int or any(type(f) is not int or f not in (0, 1)
                                                                            for f in flags)
                or not isinstance(cards, list) or not cards
                or not all(isinstance(c, dict) and isinstance(c.get("card_no"), str)
                           and isinstance(c.get("card_pwd"), str) and c["card_pwd"] for c in cards)):
            return Response(200, {"code": 400, "msg": "bad parameters"})
        cover, repeat, priority = flags
        with self.lock:
            if kind not in self.kinds:
                return Response(200, {"code": 404, "msg": "卡种不存在"})
            if cover:
                self.kinds[kind] = []
            known = {(c["card_no"], c["card_pwd"]) for c in self.kinds[kind] + self.sold[kind]}
            fresh = []
            for c in cards:
                key = (c["card_no"], c["card_pwd"])
                if repeat or key not in known:
                    fresh.append({"card_no": c["card_no"], "card_pwd": c["card_pwd"]})
                    known.add(key)
            self.kinds[kind] = fresh + self.kinds[kind] if priority else self.kinds[kind] + fresh
            drop = self._dropped_upload > 0
            if drop:
                self._dropped_upload -= 1
        if drop:
            return None
        return Response(200, {"code": 0, "msg": "OK", "data": {}})

    def drop_answer_after_next_upload(self, n: int = 1) -> None:
        self._dropped_upload += n

    def _kam_list(self, body: dict) -> Response:
        order_no = body.get("order_no")
        if not isinstance(order_no, str) or not re.fullmatch(r"\d{19,}", order_no):
            return Response(200, {"code": 400, "msg": "order_no must be 19+ digits"})
        with self.lock:
            if order_no not in self.orders:
                return Response(200, {"code": 404, "msg": "order not found"})
            listed = [dict(c) for c in self.kam.get(order_no, [])]
        return Response(200, {"code": 0, "msg": "OK", "data": {"list": listed}})
