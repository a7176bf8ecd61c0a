"""Xianyu open platform for service providers (TOP gateway) adapter (protocols/goofish.md §1).

Calls: form POST to the gateway with `method, app_key, sign_method, timestamp (yyyy-MM-dd HH:mm:ss, GMT+8),
format=json, v=2.0, simplify=true, session, sign`; sign = uppercase hex of md5(secret+s+secret),
HMAC-MD5(secret, s) or HMAC-SHA256(secret, s) where s is every other parameter sorted by name as k1v1k2v2….

Inbound messages (our relay format). The official channel is TMC, a websocket; a relay (e.g. on a 聚石塔
host) forwards each message to `POST /webhooks/goofish/` as form fields (query string parameters are merged
in as well):
    app_key, timestamp ("yyyy-MM-dd HH:mm:ss", GMT+8), sign_method (md5 | hmac | hmac-sha256), sign,
    topic (idle_autotrade_OrderStateSync | idle_autotrade_RefundSync),
    message (the TMC content, a JSON string {order_id, order_status, order_sub_status?, x_global_biz_code}),
    msg_id (TMC message id, optional), pub_time (optional, same format as timestamp)
signed with the TOP signature above over every field except `sign`. Accepted when `app_key` is this shop's,
`timestamp` is within ±10 minutes of now and the signature matches (constant-time compare). Answer
`{"result": "success"}`. `event_at` = pub_time, else timestamp. `key` = "top:" + msg_id; without one,
"top:sha256:" + sha256 of the topic, event_at and message: the same content sent again later (a refund
re-opened after it was refused) is a new message, while an exact re-delivery keeps its key and is dropped as
a duplicate by the inbox. Example (hmac-sha256, secret "gs"):
    app_key=gk&timestamp=2026-01-01+12:00:00&sign_method=hmac-sha256&topic=idle_autotrade_OrderStateSync
    &message={"order_id":"7001","order_status":2}&msg_id=m1&sign=<HMAC-SHA256 hex, upper case>
OrderStateSync maps like order.query's order_status; RefundSync maps refund 1,2,3,8 → refunding, 5 → refunded,
4/6/9/11 (refund ended) → no target (the order's own status decides after a fetch).

Errors: `error_response` raises PlatformError with its code; codes and sub_codes about the app key, signature,
session or timestamp (11, 24-31, 53, isv.invalid-*, *signature*, *session*) raise ConfigurationError;
7 (call limit) and isp.* (platform-side) are retryable.

Delivery (docs/platforms.md §open platform; parameters confirmed in the TOP API metadata):
- `message_buyer`: `alibaba.idle.order.msg.send` {order_id, text} → {send_success} — the virtual-delivery
  message that puts text in front of the buyer (card/coupon goods); `send_success` false is a refusal. No
  API reads sent messages back, so a send whose outcome is unknown can only be repeated (same text, same
  order). Called with the seller's session (which token it needs is not documented).
- `ship_virtual`: `alibaba.idle.order.dummy.send` {param_order_dummy_send_request: {biz_order_id}} →
  result{success, data, err_code, err_msg}: status only, no content.
- `ship`: `alibaba.idle.isv.order.ship` for physical goods, with a real waybill (refused without one)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.utils import timezone

from common.http import ConfigurationError, PlatformError, SignedClient

from .base import Adapter, OrderSnapshot, PushMessage, ShipRequest, ShipResult
from .xianguanjia import SHANGHAI, fen_to_yuan

TOPIC_ORDER = "idle_autotrade_OrderStateSync"
TOPIC_REFUND = "idle_autotrade_RefundSync"
PUSH_WINDOW = timedelta(minutes=10)
# TOP error codes about our credentials or signature (retrying will not help).
CONFIG_CODES = {11, 24, 25, 26, 27, 28, 29, 30, 31, 53}
RECEIVER_FIELDS = ("name", "phone", "prov", "city", "area", "town", "address")
SIGN_METHODS = ("md5", "hmac", "hmac-sha256")


def top_sign(params: dict[str, Any], secret: str, sign_method: str = "hmac-sha256") -> str:
    s = "".join(f"{k}{params[k]}" for k in sorted(params) if k != "sign" and params[k] is not None)
    key, data = secret.encode(), s.encode()
    if sign_method == "md5":
        digest = hashlib.md5(key + data + key).hexdigest()  # noqa: S324 (the platform's algorithm)
    elif sign_method == "hmac":
        digest = hmac.new(key, data, hashlib.md5).hexdigest()
    elif sign_method == "hmac-sha256":
        digest = hmac.new(key, data, hashlib.sha256).hexdigest()
    else:
        raise ValueError(f"unknown sign_method {sign_method!r}")
    return digest.upper()


def goofish_target_status(order_status: Any) -> str | None:
    try:
        code = int(order_status)
    except (TypeError, ValueError):
        return None
    return {1: "pending_payment", 2: "paid", 3: "shipped", 4: "completed", 5: "refunded", 6: "closed"}.get(code)


def refund_target_status(refund_status: Any) -> str | None:
    try:
        code = int(refund_status)
    except (TypeError, ValueError):
        return None
    if code in (1, 2, 3, 8):
        return "refunding"
    if code == 5:
        return "refunded"
    return None  # 4, 6, 9, 11: the refund ended; the order's own status decides


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def top_time(dt: datetime | None = None) -> str:
    return (dt or timezone.now()).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def parse_top_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


def ms_time(value: Any) -> datetime | None:
    if value in (None, "", 0):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=SHANGHAI)


def relay_params(query: dict[str, str], body: bytes) -> dict[str, str]:
    """A relayed message's parameters: the query string merged with the form body (the body wins)."""
    params = dict(query)
    if body:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return params


class TopClient(SignedClient):
    platform = "闲鱼开放平台"

    def __init__(self, app_key: str, app_secret: str, session: str = "", sign_method: str = "hmac-sha256",
                 **kwargs):
        kwargs.setdefault("base_url", settings.GOOFISH_GATEWAY_URL)
        super().__init__(**kwargs)
        self.app_key, self.app_secret, self.seller_session, self.sign_method = app_key, app_secret, session, sign_method

    def call(self, method: str, **biz: Any) -> dict[str, Any]:
        if not self.seller_session:
            raise ConfigurationError(f"{self.platform}: the shop has no session token (seller authorisation)")
        params = {"method": method, "app_key": self.app_key, "sign_method": self.sign_method,
                  "timestamp": top_time(), "format": "json", "v": "2.0", "simplify": "true"}
        if self.seller_session:
            params["session"] = self.seller_session
        for k, v in biz.items():
            if v is None:
                continue
            params[k] = json.dumps(v, ensure_ascii=False, separators=(",", ":")) if isinstance(v, (dict, list)) else v
        params["sign"] = top_sign(params, self.app_secret, self.sign_method)
        answer = self.json_of(self.send("POST", self.base_url, data=params), self.platform)
        if not isinstance(answer, dict):
            raise PlatformError(f"{method}: unexpected answer", payload=answer, retryable=True, outcome_unknown=True)
        err = answer.get("error_response")
        if err:
            code, sub = _int(err.get("code")), str(err.get("sub_code") or "")
            msg = f"{method}: {err.get('msg')} {sub} {err.get('sub_msg') or ''}".strip()
            if code in CONFIG_CODES or "signature" in sub or "session" in sub or sub.startswith(
                    ("isv.invalid-signature", "isv.invalid-app", "isv.appkey", "isv.invalid-session")):
                raise ConfigurationError(msg, code=err.get("code"), payload=err)
            raise PlatformError(msg, code=err.get("code"), payload=err,
                                retryable=code == 7 or sub.startswith("isp."))
        return answer


def _body(answer: dict[str, Any], wrapper: str) -> dict[str, Any]:
    """The answer's payload: with simplify=true it is the answer itself; without, under `<method>_response`."""
    inner = answer.get(wrapper)
    return inner if isinstance(inner, dict) else answer


def _result(answer: dict[str, Any], wrapper: str) -> dict[str, Any]:
    """The `result` object of an answer (TOP's BaseResult), or the payload itself when it has none."""
    body = _body(answer, wrapper)
    return body["result"] if isinstance(body.get("result"), dict) else body


class GoofishAdapter(Adapter):
    platform = "goofish"
    list_cap = None
    can_message_buyer = True
    can_ship_virtual = True

    @property
    def client(self) -> TopClient:
        return TopClient(self.shop.app_key, self.shop.app_secret, self.shop.session_token, **self.client_kwargs)

    # inbound -------------------------------------------------------------------------------------
    def verify_push(self, *, query: dict[str, str], body: bytes, headers: dict[str, str]) -> bool:
        try:
            params = relay_params(query, body)
        except UnicodeDecodeError:
            return False
        sign, method = params.get("sign", ""), params.get("sign_method", "")
        if not sign or method not in SIGN_METHODS or not self.shop.app_key:
            return False
        if not hmac.compare_digest(params.get("app_key", "").encode(), self.shop.app_key.encode()):
            return False
        try:
            sent = parse_top_time(params.get("timestamp"))
        except ValueError:
            return False
        if sent is None or abs(timezone.now() - sent) > PUSH_WINDOW:
            return False
        return hmac.compare_digest(top_sign(params, self.shop.app_secret, method).encode(), sign.upper().encode())

    def parse_push(self, *, query: dict[str, str], body: bytes) -> PushMessage:
        params = relay_params(query, body)
        topic, raw_message = params.get("topic", ""), params.get("message") or "{}"
        if topic not in (TOPIC_ORDER, TOPIC_REFUND):
            raise ValueError(f"unknown topic {topic!r}")
        content = json.loads(raw_message)
        if not isinstance(content, dict):
            raise ValueError("message is not a JSON object")
        order_id = str(content.get("order_id") or content.get("biz_order_id") or "")
        status = content.get("order_status")
        event_at = parse_top_time(params.get("pub_time") or params.get("timestamp"))
        if params.get("msg_id"):
            key = "top:" + params["msg_id"]
        else:  # the message's own time is part of its identity (protocols/goofish.md §1)
            when = event_at.isoformat() if event_at else ""
            key = "top:sha256:" + hashlib.sha256(f"{topic}\n{when}\n{raw_message}".encode()).hexdigest()
        refund = topic == TOPIC_REFUND
        return PushMessage(
            key=key, topic="refund" if refund else "order", platform_order_id=order_id, event_at=event_at,
            raw_status="" if status is None else str(status),
            target_status=refund_target_status(status) if refund else goofish_target_status(status),
        )

    # outbound ------------------------------------------------------------------------------------
    def fetch_order(self, platform_order_id: str) -> OrderSnapshot:
        answer = self.client.call("alibaba.idle.isv.order.query",
                                  param_appraise_isv_order_query={"biz_order_id": platform_order_id})
        result = answer.get("result") or answer.get("alibaba_idle_isv_order_query_response", {}).get("result") or {}
        module = result.get("module")
        if not module:
            raise PlatformError(f"order.query {platform_order_id}: no order in the answer", payload=answer)
        return self.snapshot(module)

    def ship(self, req: ShipRequest) -> ShipResult:
        if not req.waybill_no.strip():
            raise ConfigurationError("闲鱼开放平台: a physical shipment needs a real waybill "
                                     "(virtual goods ship with ship_virtual)")
        answer = self.client.call(
            "alibaba.idle.isv.order.ship", biz_order_id=req.platform_order_id, ship_mail_no=req.waybill_no.strip(),
            logistics_company=req.express_name or None, lc_code=req.express_code or None)
        body = _result(answer, "alibaba_idle_isv_order_ship_response")
        if body.get("result_success") not in (True, "true"):
            raise PlatformError(f"order.ship: {body.get('result_err_msg') or 'refused'}",
                                code=body.get("result_err_code"), payload=answer)
        return ShipResult(ok=True, message="isv.order.ship: result_success=true", raw=answer)

    def ship_virtual(self, platform_order_id: str) -> ShipResult:
        oid = int(platform_order_id) if platform_order_id.isascii() and platform_order_id.isdigit() \
            else platform_order_id
        answer = self.client.call("alibaba.idle.order.dummy.send", param_order_dummy_send_request={"biz_order_id": oid})
        result = _result(answer, "alibaba_idle_order_dummy_send_response")
        if result.get("success") not in (True, "true") or result.get("data") in (False, "false"):
            raise PlatformError(f"order.dummy.send: {result.get('err_msg') or 'refused'}",
                                code=result.get("err_code"), payload=answer)
        return ShipResult(ok=True, message="order.dummy.send: success=true", raw=answer)

    def message_buyer(self, platform_order_id: str, text: str) -> ShipResult:
        if not text:
            raise ConfigurationError("order.msg.send: empty text")
        answer = self.client.call("alibaba.idle.order.msg.send", order_id=platform_order_id, text=text)
        body = _body(answer, "alibaba_idle_order_msg_send_response")
        request_id = str(body.get("request_id") or answer.get("request_id") or "")
        if body.get("send_success") not in (True, "true"):
            raise PlatformError("order.msg.send: send_success=false", code="send_success_false", payload=answer)
        return ShipResult(ok=True, message=f"order.msg.send: send_success=true request_id={request_id}"[:200],
                          raw=answer)

    def close(self, platform_order_id: str, reason: str) -> None:
        answer = self.client.call(
            "alibaba.idle.isv.order.close",
            isv_appraise_isv_order_close_dto={"biz_order_id": platform_order_id, "close_reason": reason or "卖家关闭"})
        result = answer.get("result") if isinstance(answer.get("result"), dict) else answer
        if result.get("data") in (False, "false"):
            raise PlatformError(f"order.close {platform_order_id}: refused", payload=answer)

    @staticmethod
    def snapshot(m: dict[str, Any]) -> OrderSnapshot:
        item = m.get("item") or {}
        addr = m.get("buyer_address") or {}
        status = m.get("order_status")
        times = [ms_time(m.get(k)) for k in ("create_time", "pay_time", "ship_time", "end_time")]
        sku = str(m.get("sku") or "")
        return OrderSnapshot(
            platform_order_id=str(m.get("biz_order_id")),
            raw_status=str(status),
            target_status=goofish_target_status(status) or "",
            updated_at=max(filter(None, times), default=None),
            buyer_id=str(m.get("encryption_buyer_id") or ""),
            buyer_nick=str(m.get("buyer_nick") or ""),
            item_id=str(item.get("item_id") or ""),
            item_title=str(item.get("title") or "")[:255],
            sku=sku[:255],
            quantity=int(m.get("buy_amount") or 1),
            amount=fen_to_yuan(m.get("payment")),
            receiver={k: str(addr[k]) for k in RECEIVER_FIELDS if addr.get(k)},
            paid_at=ms_time(m.get("pay_time")),
            shipped_at=ms_time(m.get("ship_time")),
            closed_at=ms_time(m.get("end_time")) if goofish_target_status(status) in ("closed", "refunded") else None,
            waybill_no=str((m.get("logistics") or {}).get("express_no") or ""),
            express_name=str((m.get("logistics") or {}).get("express_comp_name") or ""),
            raw=m,
        )
