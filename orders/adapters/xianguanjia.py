"""闲管家 open API adapter (protocols/goofish.md §2).

Every call: `POST {base}{path}?appid=&timestamp=&sign=` with a JSON body, where
`sign = md5("{appKey},{md5(body)},{timestamp},{appSecret}")` in lowercase hex over the exact body bytes
sent. Answers are `{"code": 0, "msg": "OK", "data": …}`; amounts are in fen.

Errors: an envelope `code` ≠ 0 raises PlatformError carrying the code (not retryable: the platform
answered); codes or messages about the appid, signature or timestamp raise ConfigurationError. Transport
failures, 5xx and 429 come from `SignedClient.send` (retryable; `outcome_unknown` where the call may have
reached the platform).

Push (订单推送通知): `appid`, `timestamp`, `sign` in the query, signed like a call over the raw body; accepted
when the appid is this shop's, the timestamp within ±600 s and the signature equal (constant time).
`modify_time` may be Unix seconds or "YYYY-MM-DD HH:MM:SS" (Asia/Shanghai); both are read.

Delivery (docs/platforms.md §闲管家: what is confirmed and what is our assumption). 闲管家 has no API to
message the buyer; content reaches the buyer only through its own 卡密 message:
- `card_pool_add`: `POST /api/open/kami/storage/create` {kind_id, cost: 0, is_cover: 0, is_repeat: 0,
  is_priority: 1, cards: [{card_no: "", card_pwd: code}]} (path and fields confirmed; their meanings are
  assumed: is_repeat 0 = a code already in the 卡种 is skipped, so a retry adds nothing twice; is_priority 1
  = these codes are sold first; a code without a card number goes in card_pwd);
- `card_pool_send`: `POST /api/open/trade/logistics/dummy/send` {order_no, send_way: 2} — 闲管家 sends the
  卡种's codes to the buyer and marks the order shipped (confirmed; held while a 发货申明 awaits the buyer);
- `card_pool_delivered`: `POST /api/open/order/kam/list` {order_no} → data.list[{card_no, card_pwd, cost,
  sold_type}] (confirmed), the proof of what the buyer got.
`ship_virtual` is the status-only `dummy/send` with send_way 1 (meaning second-hand). `ship` is
`POST /api/open/order/ship` for physical goods and needs a real waybill: it is refused without one."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings

from common.http import ConfigurationError, PlatformError, SignedClient

from .base import Adapter, OrderPage, OrderSnapshot, PushMessage, ShipRequest, ShipResult

SHANGHAI = ZoneInfo("Asia/Shanghai")
DUMMY_SEND = "/api/open/trade/logistics/dummy/send"
SEND_STATUS_ONLY, SEND_CARD_CODES = 1, 2
PUSH_WINDOW_SECONDS = 600
# Envelope codes that mean our credentials or signature are wrong (retrying will not help).
CONFIG_CODES = {401, 403, 1001, 1002, 1003}
CONFIG_WORDS = ("sign", "appid", "app_key", "timestamp", "签名", "时间戳")


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 (the platform's algorithm)


def xgj_sign(app_key: str, app_secret: str, body: bytes, timestamp: str) -> str:
    return md5_hex(f"{app_key},{md5_hex(body)},{timestamp},{app_secret}".encode())


def xgj_target_status(order_status: int | str | None, refund_status: int | str | None = 0) -> str | None:
    try:
        status = int(order_status) if order_status not in (None, "") else None
        refund = int(refund_status or 0)
    except (TypeError, ValueError):
        return None
    if refund in (1, 2, 3, 8) and status in (12, 21, 22):
        return "refunding"
    if refund == 5:
        return "refunded"
    return {11: "pending_payment", 12: "paid", 21: "shipped", 22: "completed", 23: "refunded",
            24: "closed"}.get(status)


def fen_to_yuan(value: Any) -> Decimal:
    if value in (None, ""):
        return Decimal("0.00")
    return (Decimal(int(value)) / 100).quantize(Decimal("0.01"))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_time(value: Any) -> datetime | None:
    """Unix seconds (int or digit string, ms tolerated) or "YYYY-MM-DD HH:MM:SS" in Beijing time."""
    if value in (None, "", 0, "0"):
        return None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        ts = float(value)
        if ts > 1e12:
            ts /= 1000
        return datetime.fromtimestamp(ts, tz=SHANGHAI)
    return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


class XianguanjiaClient(SignedClient):
    platform = "闲管家"

    def __init__(self, app_key: str, app_secret: str, **kwargs):
        kwargs.setdefault("base_url", settings.XIANGUANJIA_BASE_URL)
        super().__init__(**kwargs)
        self.app_key = app_key
        self.app_secret = app_secret

    def call(self, path: str, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        params = {"appid": self.app_key, "timestamp": ts, "sign": xgj_sign(self.app_key, self.app_secret, body, ts)}
        resp = self.send("POST", f"{self.base_url}{path}", params=params, data=body,
                         headers={"Content-Type": "application/json"})
        answer = self.json_of(resp, self.platform)
        if not isinstance(answer, dict) or "code" not in answer:
            raise PlatformError(f"{self.platform} {path}: unexpected answer", payload=answer, retryable=True,
                                outcome_unknown=True)
        code = answer.get("code")
        if code not in (0, "0"):
            msg = f"{self.platform} {path}: {answer.get('msg') or 'error'}"
            text = str(answer.get("msg", "")).lower()
            if _int(code) in CONFIG_CODES or any(w in text for w in CONFIG_WORDS):
                raise ConfigurationError(msg, code=code, payload=answer)
            raise PlatformError(msg, code=code, payload=answer)
        return answer.get("data")


class XianguanjiaAdapter(Adapter):
    platform = "xianguanjia"
    list_cap = 10000
    list_page_size = 100
    list_window = timedelta(days=180)  # update_time "within 6 months" (protocols/goofish.md §2)
    can_message_buyer = False  # confirmed: no message API ("消息相关接口暂不开放")
    can_card_pool = True
    can_ship_virtual = True

    @property
    def client(self) -> XianguanjiaClient:
        return XianguanjiaClient(self.shop.app_key, self.shop.app_secret, **self.client_kwargs)

    # inbound -------------------------------------------------------------------------------------
    def verify_push(self, *, query: dict[str, str], body: bytes, headers: dict[str, str]) -> bool:
        appid, ts, sign = query.get("appid", ""), query.get("timestamp", ""), query.get("sign", "")
        if not (appid and ts and sign) or not (ts.isascii() and ts.isdigit()) or not self.shop.app_key:
            return False
        if not hmac.compare_digest(appid.encode(), self.shop.app_key.encode()):
            return False
        if abs(time.time() - int(ts)) > PUSH_WINDOW_SECONDS:
            return False
        expected = xgj_sign(self.shop.app_key, self.shop.app_secret, body, ts)
        return hmac.compare_digest(expected.encode(), sign.lower().encode())

    def parse_push(self, *, query: dict[str, str], body: bytes) -> PushMessage:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("push body is not an object")
        order_no = str(data.get("order_no") or "")
        if order_no:
            key = f"xgj:{order_no}:{data.get('order_status')}:{data.get('refund_status')}:{data.get('modify_time')}"
        else:
            key = "xgj:sha256:" + hashlib.sha256(body).hexdigest()
        return PushMessage(
            key=key, topic="order", platform_order_id=order_no,
            event_at=parse_time(data.get("modify_time")), raw_status=str(data.get("order_status", "")),
            target_status=xgj_target_status(data.get("order_status"), data.get("refund_status")),
        )

    # outbound ------------------------------------------------------------------------------------
    def fetch_order(self, platform_order_id: str) -> OrderSnapshot:
        data = self.client.call("/api/open/order/detail", {"order_no": platform_order_id})
        if not data:
            raise PlatformError(f"闲管家: order {platform_order_id} not found", retryable=False)
        return self.snapshot(data)

    def list_orders(self, *, start: datetime, end: datetime, page_no: int, page_size: int) -> OrderPage:
        data = self.client.call("/api/open/order/list", {
            "page_no": page_no, "page_size": page_size,
            "update_time": [int(start.timestamp()), int(end.timestamp())],
        }) or {}
        items = [self.snapshot(item) for item in data.get("list") or []]
        return OrderPage(items=items, total=int(data.get("count") or 0), page_no=page_no, page_size=page_size)

    def ship(self, req: ShipRequest) -> ShipResult:
        if not req.waybill_no.strip() or not (req.express_name.strip() or req.express_code.strip()):
            raise ConfigurationError("闲管家: a physical shipment needs a real waybill and courier "
                                     "(virtual goods ship with ship_virtual)")
        payload = {"order_no": req.platform_order_id, "waybill_no": req.waybill_no.strip(),
                   "express_code": req.express_code.strip() or "other",
                   "express_name": req.express_name.strip() or req.express_code.strip()}
        self.client.call("/api/open/order/ship", payload)
        return ShipResult(ok=True, message="order/ship: code 0")

    def ship_virtual(self, platform_order_id: str) -> ShipResult:
        self.client.call(DUMMY_SEND, {"order_no": platform_order_id, "send_way": SEND_STATUS_ONLY})
        return ShipResult(ok=True, message="dummy/send send_way=1: code 0")

    def card_pool_add(self, *, kind_id: str, codes: list[str]) -> ShipResult:
        if not codes:
            raise ConfigurationError("闲管家: no codes to add to the card pool")
        try:
            kind = int(kind_id)
        except (TypeError, ValueError):
            raise ConfigurationError(f"闲管家: 卡种 ID {kind_id!r} is not a number") from None
        self.client.call("/api/open/kami/storage/create", {
            "kind_id": kind, "cost": 0, "is_cover": 0, "is_repeat": 0, "is_priority": 1,
            "cards": [{"card_no": "", "card_pwd": code} for code in codes]})
        return ShipResult(ok=True, message=f"kami/storage/create kind_id={kind} cards={len(codes)}: code 0")

    def card_pool_send(self, platform_order_id: str) -> ShipResult:
        self.client.call(DUMMY_SEND, {"order_no": platform_order_id, "send_way": SEND_CARD_CODES})
        return ShipResult(ok=True, message="dummy/send send_way=2: code 0")

    def card_pool_delivered(self, platform_order_id: str) -> list[str]:
        data = self.client.call("/api/open/order/kam/list", {"order_no": platform_order_id}) or {}
        cards = data.get("list") if isinstance(data, dict) else None
        out = []
        for card in cards or []:
            if not isinstance(card, dict):
                continue
            number, secret = str(card.get("card_no") or ""), str(card.get("card_pwd") or "")
            out.append(f"{number} {secret}".strip() if number and secret else number or secret)
        return out

    def close(self, platform_order_id: str, reason: str) -> None:
        raise PlatformError("闲管家 has no order close API: close it in the 闲管家 console", retryable=False)

    # mapping -------------------------------------------------------------------------------------
    @staticmethod
    def snapshot(d: dict[str, Any]) -> OrderSnapshot:
        items = d.get("items") or d.get("goods") or []
        first = items[0] if items else {}
        quantity = sum(int(i.get("quantity") or i.get("num") or 1) for i in items) if items else int(
            d.get("quantity") or 1)
        receiver = {k: str(d[src]) for k, src in (
            ("name", "receiver_name"), ("phone", "receiver_mobile"), ("prov", "prov_name"), ("city", "city_name"),
            ("area", "area_name"), ("town", "town_name"), ("address", "address")) if d.get(src)}
        updated = parse_time(d.get("update_time")) or max(
            filter(None, (parse_time(d.get(k)) for k in ("order_time", "pay_time", "consign_time", "confirm_time",
                                                          "refund_time"))), default=None)
        return OrderSnapshot(
            platform_order_id=str(d.get("order_no")),
            raw_status=str(d.get("order_status", "")),
            target_status=xgj_target_status(d.get("order_status"), d.get("refund_status")) or "",
            updated_at=updated,
            buyer_id=str(d.get("buyer_id") or d.get("buyer_eid") or ""),
            buyer_nick=str(d.get("buyer_nick") or ""),
            item_id=str(first.get("item_id") or d.get("item_id") or ""),
            item_title=str(first.get("title") or d.get("title") or "")[:255],
            sku=str(first.get("sku_text") or first.get("sku") or "")[:255],
            quantity=quantity,
            amount=fen_to_yuan(d.get("pay_amount") if d.get("pay_amount") not in (None, "") else d.get("total_amount")),
            receiver=receiver,
            paid_at=parse_time(d.get("pay_time")),
            shipped_at=parse_time(d.get("consign_time")),
            closed_at=parse_time(d.get("refund_time")) if int(d.get("order_status") or 0) in (23, 24) else None,
            waybill_no=str(d.get("waybill_no") or ""),
            express_name=str(d.get("express_name") or ""),
            raw=d,
        )
