"""The Alipay open-platform client (protocols/alipay.md).

python-alipay-sdk does the signing (`sign_data`, RSA2 over the sorted `k=v` text) and verifies answers
(`_verify_and_return_sync_response`); a small subclass gives it a configurable gateway and Beijing-time
timestamps whatever the host's zone. Transport is ours (common.http.SignedClient: one session, timeouts,
HTTP errors classified), never the SDK's `urlopen`.

Every answer's `code` / `sub_code` is checked and sorted:
- success (`10000`, signed answer that verifies) → the response node;
- retryable (`20000` service busy, system errors, rate limits, timeouts, 5xx) → PlatformError(retryable),
  with `outcome_unknown` when the call may have taken effect;
- refused (`40004` business failures, bad parameters) → PlatformError (not retryable), `code` = sub_code;
- our side (`20001` authorisation token, `40006` permissions, signature / app id / timestamp refused, an
  answer whose signature does not verify) → ConfigurationError.

`app_auth_token` is passed on calls made on a merchant's behalf. `alipay.open.agent.facetoface.sign` takes
pictures: its text parameters are signed with the SDK's signing code and sent with the pictures as
multipart/form-data (the SDK cannot upload).
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from django.conf import settings

from common.http import ConfigurationError, PlatformError, RateLimited, SignedClient

BEIJING = ZoneInfo("Asia/Shanghai")
SUCCESS = "10000"
# Sub-codes that mean "Alipay had a problem, the call may or may not have taken effect".
SYSTEM_ERRORS = {"ACQ.SYSTEM_ERROR", "SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error",
                 "isp.unknown-error"}
RATE_LIMITS = {"aop.api-call-limit", "isp.call-limited", "isv.app-call-limited", "ACQ.REQUEST_TOO_FAST"}
# 40002 sub-codes that say our configuration is wrong rather than the request's content.
OUR_SIDE = {"isv.invalid-signature", "isv.invalid-app-id", "isv.invalid-timestamp", "isv.missing-signature",
            "isv.invalid-signature-type", "isv.missing-app-id", "isv.invalid-charset"}


def beijing_timestamp(now: datetime | None = None) -> str:
    """`timestamp` as Alipay expects it: Beijing wall-clock time, whatever the host's zone."""
    return (now or datetime.now(UTC)).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def load_key(value: str, *, what: str) -> str:
    """A key given as PEM text, as a path to a PEM file, or as the bare base64 body Alipay's key tool prints."""
    value = (value or "").strip()
    if not value:
        raise ConfigurationError(f"alipay: {what} is not set")
    if "-----BEGIN" in value:
        return value[value.index("-----BEGIN"):]
    looks_base64 = len(value) >= 64 and re.fullmatch(r"[A-Za-z0-9+/=\s]+", value) is not None
    if not looks_base64 and len(value) < 1024:
        path = Path(value)
        if not path.is_absolute():
            path = Path(settings.BASE_DIR) / path
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"alipay: {what}: neither a key nor a readable file "
                                     f"({exc.__class__.__name__})") from exc
    try:
        der = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"alipay: {what} is neither PEM, a file path, nor base64") from exc
    body = base64.encodebytes(der).decode()
    kind = "PRIVATE KEY" if "private" in what else "PUBLIC KEY"
    return f"-----BEGIN {kind}-----\n{body}-----END {kind}-----\n"


class GatewayAliPay(AliPay):
    """python-alipay-sdk with a configurable gateway and timestamps in Beijing time. It never sends
    anything itself: AlipayClient does."""

    def __init__(self, *, gateway: str, **kwargs):
        super().__init__(**kwargs)
        self._gateway = gateway

    def build_body(self, method, biz_content=None, **kwargs):
        data = super().build_body(method, biz_content, **kwargs)
        data["timestamp"] = beijing_timestamp()
        return data

    def verified_sync_response(self, data, response_type):  # pragma: no cover - guard
        raise RuntimeError("send through payments.client.AlipayClient, not the SDK's urlopen")

    def sign_params(self, params: dict[str, str]) -> str:
        """The SDK's RSA2 signature over the sorted `k=v&…` text of `params` (no URL encoding)."""
        ordered = self._ordered_data(dict(params))
        return self._sign("&".join(f"{k}={v}" for k, v in ordered))


@dataclass(frozen=True)
class Answer:
    """A verified success: the response node and how long the call took."""

    method: str
    node: dict
    duration_ms: int


def node_of(exc: PlatformError) -> dict:
    """The response node an error carries (empty for transport errors)."""
    return exc.payload if isinstance(exc.payload, dict) else {}


def sub_code_of(exc: PlatformError) -> str:
    return str(node_of(exc).get("sub_code") or "")


def classify(method: str, node: dict) -> PlatformError:
    """The error a non-success answer stands for."""
    code, sub = str(node.get("code") or ""), str(node.get("sub_code") or "")
    text = f"alipay {method}: {node.get('sub_msg') or node.get('msg') or 'failed'}"
    label = sub or code
    if sub in RATE_LIMITS:
        return RateLimited(text, code=label, payload=node)
    if code == "20000" or sub in SYSTEM_ERRORS:
        return PlatformError(text, code=label, retryable=True, outcome_unknown=True, payload=node)
    if code in ("20001", "40006") or sub in OUR_SIDE:
        return ConfigurationError(text, code=label, payload=node)
    return PlatformError(text, code=label, payload=node)


def money(amount: Decimal | str) -> str:
    return f"{Decimal(amount):.2f}"


class AlipayClient(SignedClient):
    platform = "alipay"

    def __init__(self, *, app_id: str | None = None, app_private_key: str | None = None,
                 alipay_public_key: str | None = None, gateway: str | None = None, timeout=None, session=None):
        app_id = app_id if app_id is not None else settings.ALIPAY_APP_ID
        if not app_id:
            raise ConfigurationError("alipay: ALIPAY_APP_ID is not set")
        gateway = gateway or settings.ALIPAY_GATEWAY_URL
        private = load_key(app_private_key if app_private_key is not None else settings.ALIPAY_APP_PRIVATE_KEY,
                           what="ALIPAY_APP_PRIVATE_KEY")
        public = load_key(alipay_public_key if alipay_public_key is not None else settings.ALIPAY_PUBLIC_KEY,
                          what="ALIPAY_PUBLIC_KEY")
        try:
            self.sdk = GatewayAliPay(gateway=gateway, appid=app_id, app_private_key_string=private,
                                     alipay_public_key_string=public, sign_type="RSA2")
        except (ValueError, IndexError, TypeError) as exc:
            raise ConfigurationError(f"alipay: a key cannot be read ({exc.__class__.__name__})") from exc
        self.app_id = app_id
        super().__init__(base_url=gateway, timeout=timeout, session=session)

    # --- the two ways of calling ---------------------------------------------------------------------
    def call(self, method: str, biz_content: dict | None = None, *, app_auth_token: str = "",
             **params: Any) -> Answer:
        """A signed form POST of every parameter; returns the verified success node or raises."""
        extra = {k: str(v) for k, v in params.items() if v not in (None, "")}
        if app_auth_token:
            extra["app_auth_token"] = app_auth_token
        data = self.sdk.build_body(method, biz_content or {}, **extra)
        started = time.monotonic()
        resp = self.send("POST", self.base_url, data=self.sdk.sign_data(data).encode(),
                         headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})
        return self._answer(method, resp.content, started)

    def upload(self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes, str]]) -> Answer:
        """Multipart: common parameters and `sign` in the URL, business text parameters and the files in the
        body. The signature covers every text parameter (common and business), never the files."""
        text = {k: str(v) for k, v in params.items() if v not in (None, "")}
        common = self.sdk.build_body(method)
        common.pop("biz_content", None)
        sign = self.sdk.sign_params({**common, **text})
        started = time.monotonic()
        resp = self.send("POST", self.base_url, params={**common, "sign": sign}, data=text,
                         files={name: f for name, f in files.items() if f})
        return self._answer(method, resp.content, started)

    def _answer(self, method: str, content: bytes, started: float) -> Answer:
        raw = content.decode("utf-8", "replace")
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise PlatformError(f"alipay {method}: answer is not JSON", retryable=True, outcome_unknown=True,
                                payload={"raw": raw[:2000]}) from exc
        key = method.replace(".", "_") + "_response"
        node = doc.get(key) if isinstance(doc, dict) else None
        if not isinstance(node, dict):
            error = doc.get("error_response") if isinstance(doc, dict) else None
            if isinstance(error, dict):
                raise classify(method, error)
            raise PlatformError(f"alipay {method}: answer has no {key}", retryable=True, outcome_unknown=True,
                                payload={"raw": raw[:2000]})
        if isinstance(doc.get("sign"), str) and doc["sign"]:
            try:
                node = self.sdk._verify_and_return_sync_response(raw, key)
            except (AliPayValidationError, AliPayException, ValueError) as exc:
                raise ConfigurationError(f"alipay {method}: the answer's signature does not verify "
                                         "(check ALIPAY_PUBLIC_KEY)", outcome_unknown=True, payload=node) from exc
            signed = True
        else:
            signed = False
        if str(node.get("code")) != SUCCESS:
            error = classify(method, node)
            error.verified = signed   # a failure Alipay signed (and we verified) proves keys and gateway work
            raise error
        if not signed:
            raise ConfigurationError(f"alipay {method}: success answer without a signature", outcome_unknown=True,
                                     payload=node)
        return Answer(method, node, int((time.monotonic() - started) * 1000))

    # --- notifications -------------------------------------------------------------------------------
    def verify_notification(self, params: dict[str, str]) -> bool:
        """RSA2 over every parameter but `sign` and `sign_type`, sorted, URL-decoded."""
        data = dict(params)
        sign = data.pop("sign", "")
        if not sign or data.get("sign_type", "RSA2") != "RSA2":
            return False
        try:
            return self.sdk.verify(data, sign)
        except Exception:  # malformed base64 and the like: simply not a valid signature
            return False

    # --- onboarding (ISV on its own account) -----------------------------------------------------------
    def agent_create(self, *, account: str, contact_name: str, contact_mobile: str = "",
                     contact_email: str = "") -> Answer:
        contact = {"contact_name": contact_name, "contact_mobile": contact_mobile, "contact_email": contact_email}
        return self.call("alipay.open.agent.create", {"account": account,
                                                      "contact_info": {k: v for k, v in contact.items() if v}})

    def facetoface_sign(self, *, params: dict[str, Any], files: dict[str, tuple[str, bytes, str]]) -> Answer:
        return self.upload("alipay.open.agent.facetoface.sign", params, files)

    def agent_confirm(self, *, batch_no: str) -> Answer:
        return self.call("alipay.open.agent.confirm", {"batch_no": batch_no})

    def agent_cancel(self, *, batch_no: str) -> Answer:
        return self.call("alipay.open.agent.cancel", {"batch_no": batch_no})

    def agent_order_query(self, *, batch_no: str) -> Answer:
        return self.call("alipay.open.agent.order.query", {"batch_no": batch_no})

    def auth_token(self, *, code: str = "", refresh_token: str = "") -> Answer:
        biz = ({"grant_type": "refresh_token", "refresh_token": refresh_token} if refresh_token
               else {"grant_type": "authorization_code", "code": code})
        return self.call("alipay.open.auth.token.app", biz)

    # --- trades (on a merchant's behalf) -------------------------------------------------------------
    def trade_precreate(self, *, app_auth_token: str, out_trade_no: str, total_amount: Decimal, subject: str,
                        timeout_express: str, notify_url: str = "") -> Answer:
        return self.call("alipay.trade.precreate", {"out_trade_no": out_trade_no, "total_amount": money(total_amount),
                                                    "subject": subject, "timeout_express": timeout_express},
                         app_auth_token=app_auth_token, notify_url=notify_url)

    def trade_query(self, *, app_auth_token: str, out_trade_no: str) -> Answer:
        return self.call("alipay.trade.query", {"out_trade_no": out_trade_no}, app_auth_token=app_auth_token)

    def trade_refund(self, *, app_auth_token: str, out_trade_no: str, refund_amount: Decimal, out_request_no: str,
                     refund_reason: str) -> Answer:
        return self.call("alipay.trade.refund", {"out_trade_no": out_trade_no, "refund_amount": money(refund_amount),
                                                 "out_request_no": out_request_no, "refund_reason": refund_reason},
                         app_auth_token=app_auth_token)

    def refund_query(self, *, app_auth_token: str, out_trade_no: str, out_request_no: str) -> Answer:
        return self.call("alipay.trade.fastpay.refund.query",
                         {"out_trade_no": out_trade_no, "out_request_no": out_request_no},
                         app_auth_token=app_auth_token)


@lru_cache(maxsize=4)
def _cached(app_id: str, private: str, public: str, gateway: str, timeout: tuple) -> AlipayClient:
    return AlipayClient(app_id=app_id, app_private_key=private, alipay_public_key=public, gateway=gateway,
                        timeout=timeout)


def get_client() -> AlipayClient:
    """The client for the current settings (keys are parsed once per settings)."""
    return _cached(settings.ALIPAY_APP_ID, settings.ALIPAY_APP_PRIVATE_KEY, settings.ALIPAY_PUBLIC_KEY,
                   settings.ALIPAY_GATEWAY_URL, tuple(settings.PLATFORM_HTTP_TIMEOUT))
