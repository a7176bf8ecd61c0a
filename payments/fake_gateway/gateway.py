"""The fake gateway itself: the checks every request passes, fault injection, answer signing, state."""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import BEIJING, ON_BEHALF, FakeResponse, Fault, _refuse, _Refused, sign_text, signing_text
from .onboarding import OnboardingMethods
from .trades import TradeMethods


class FakeAlipayGateway(OnboardingMethods, TradeMethods):
    """Alipay's gateway as far as this project calls it (see the package docstring). `respond()` answers one
    HTTP request; the public methods are the test and demo controls."""

    def __init__(self, *, app_id: str, app_public_key: str, alipay_private_key: str,
                 clock: Callable[[], datetime] | None = None, base_url: str = "", audit_seconds: float | None = None,
                 confirm_seconds: float | None = None, default_notify_url: str = "",
                 send_notification: Callable[[str, dict], bool] | None = None, timestamp_window: int = 600):
        self.app_id = app_id
        self.app_public_key = serialization.load_pem_public_key(app_public_key.encode())
        self.alipay_private_key = serialization.load_pem_private_key(alipay_private_key.encode(), password=None)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.base_url = base_url.rstrip("/")
        self.audit_seconds, self.confirm_seconds = audit_seconds, confirm_seconds
        self.default_notify_url = default_notify_url
        self.send_notification = send_notification
        self.timestamp_window = timestamp_window
        self.batches: dict[str, dict] = {}
        self.trades: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}           # app_auth_token -> {user_id, auth_app_id, expires_at, refresh}
        self.refresh_tokens: dict[str, str] = {}    # refresh token -> app_auth_token
        self.auth_codes: dict[str, str] = {}        # app_auth_code -> user_id
        self.received: list[str] = []               # the method of every request received, faults included
        self.calls: list[dict] = []                 # every request that passed the checks: method, params, files
        self.refused_calls: list[dict] = []         # requests refused by the gateway checks
        self.fund_changes: list[tuple[str, str, Decimal]] = []
        self.notifications_sent: list[dict] = []
        self.faults: list[Fault] = []
        self._state_lock = threading.RLock()
        self._seq = itertools.count(1)

    # --- test and demo controls ----------------------------------------------------------------------
    def fail_next(self, method: str, kind: str, *, sub_code: str = "", seconds: float = 0.0, times: int = 1) -> None:
        with self._state_lock:
            self.faults.extend(Fault(method, kind, sub_code, seconds) for _ in range(times))

    def calls_of(self, method: str) -> list[dict]:
        return [c for c in self.calls if c["method"] == method]

    def sign_notification(self, params: dict[str, str], *, sign: str | None = None) -> dict[str, str]:
        params = {**params, "sign_type": "RSA2"}
        params["sign"] = sign if sign is not None else sign_text(
            self.alipay_private_key, signing_text(params, drop=("sign", "sign_type")))
        return params

    def dump(self) -> dict:
        """The fake's state as JSON-ready data (the runnable fake keeps it across restarts)."""
        with self._state_lock:
            return json.loads(json.dumps({
                "batches": self.batches, "trades": self.trades, "tokens": self.tokens,
                "refresh_tokens": self.refresh_tokens, "auth_codes": self.auth_codes,
                "seq": next(self._seq)}, default=str))

    def load(self, state: dict) -> None:
        with self._state_lock:
            for name in ("batches", "trades", "tokens", "refresh_tokens", "auth_codes"):
                getattr(self, name).update(state.get(name) or {})
            self._seq = itertools.count(int(state.get("seq") or 1))

    # --- HTTP -------------------------------------------------------------------------------------------
    def respond(self, http_method: str, path: str, query: dict[str, str], headers: dict[str, str],
                body: bytes) -> FakeResponse:
        """Answer one HTTP request to the gateway (`/gateway.do`)."""
        try:
            params, files = self._parse(query, headers, body)
        except ValueError:
            return FakeResponse(400, b'{"error":"unreadable request"}')
        method = params.get("method", "")
        with self._state_lock:
            self.received.append(method)
        fault = self._take_fault(method)
        if fault is not None and fault.kind in ("http500", "drop_before", "system_error", "busy", "refuse"):
            return self._pre_fault(fault, method)
        node, signed = self._serve(method, params, files)
        resp = self._encode(method, node, signed=signed, bad_sign=fault is not None and fault.kind == "bad_sign")
        if fault is not None and fault.kind == "drop_after":
            resp.drop = True
        if fault is not None and fault.kind == "stall_after":
            resp.delay = fault.seconds or 2.0
        return resp

    def _pre_fault(self, fault: Fault, method: str) -> FakeResponse:
        if fault.kind == "http500":
            return FakeResponse(500, b"Internal Server Error", "text/plain")
        if fault.kind == "drop_before":
            return FakeResponse(drop=True)
        if fault.kind == "busy":
            return self._encode(method, {"code": "20000", "msg": "Service Currently Unavailable",
                                         "sub_code": "isp.unknow-error", "sub_msg": "系统繁忙"}, signed=True)
        sub = fault.sub_code or ("ACQ.SYSTEM_ERROR" if method.startswith("alipay.trade") else "SYSTEM_ERROR")
        msg = "系统错误" if fault.kind == "system_error" else "业务处理失败"
        return self._encode(method, _refuse(sub, msg).node, signed=True)

    def _take_fault(self, method: str) -> Fault | None:
        with self._state_lock:
            for i, f in enumerate(self.faults):
                if f.method == method:
                    return self.faults.pop(i)
        return None

    def _parse(self, query: dict[str, str], headers: dict[str, str], body: bytes):
        params, files = dict(query), {}
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                data = part.get_payload(decode=True) or b""
                if part.get_filename():
                    files[name] = {"filename": part.get_filename(), "content": data,
                                   "content_type": part.get_content_type()}
                else:
                    params[name] = data.decode("utf-8")
        elif body:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False))
        return params, files

    def _encode(self, method: str, node: dict, *, signed: bool, bad_sign: bool = False) -> FakeResponse:
        key = (method.replace(".", "_") + "_response") if method else "error_response"
        text = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        if not signed:
            return FakeResponse(body=f'{{"{key}":{text}}}'.encode())
        signer = rsa.generate_private_key(public_exponent=65537, key_size=1024) if bad_sign else self.alipay_private_key
        return FakeResponse(body=f'{{"{key}":{text},"sign":"{sign_text(signer, text)}"}}'.encode())

    # --- the gateway's checks --------------------------------------------------------------------------
    def _serve(self, method: str, params: dict[str, str], files: dict) -> tuple[dict, bool]:
        problem = self._check(params)
        if problem is not None:
            with self._state_lock:
                self.refused_calls.append({"method": method, "params": params, "problem": problem["sub_code"]})
            return problem, False
        handler = getattr(self, "_" + method.replace("alipay.", "").replace(".", "_"), None)
        if handler is None:
            return {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method",
                    "sub_msg": "不存在的方法名"}, False
        with self._state_lock:
            self.calls.append({"method": method, "params": params, "at": self.clock(),
                               "files": {k: (v["filename"], len(v["content"])) for k, v in files.items()}})
            try:
                biz = json.loads(params.get("biz_content") or "{}")
                if not isinstance(biz, dict):
                    raise ValueError
            except ValueError:
                return {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-biz-content",
                        "sub_msg": "biz_content 不是 JSON 对象"}, False
            merchant = None
            if method in ON_BEHALF:
                merchant = self.tokens.get(params.get("app_auth_token", ""))
                if merchant is None:
                    return {"code": "20001", "msg": "Insufficient Token Permissions",
                            "sub_code": "aop.invalid-app-auth-token", "sub_msg": "无效的应用授权令牌"}, True
                if merchant["expires_at"] < self.clock().timestamp():
                    return {"code": "20001", "msg": "Insufficient Token Permissions",
                            "sub_code": "aop.app-auth-token-time-out", "sub_msg": "应用授权令牌已过期"}, True
            try:
                result = handler(biz=biz, params=params, files=files, merchant=merchant)
            except _Refused as exc:
                return exc.node, True
        return {"code": "10000", "msg": "Success", **result}, True

    def _check(self, params: dict[str, str]) -> dict | None:
        def bad(code, sub, text):
            return {"code": code, "msg": "Invalid Arguments" if code == "40002" else "Missing Required Arguments",
                    "sub_code": sub, "sub_msg": text}

        for name in ("app_id", "method", "charset", "sign_type", "timestamp", "version", "sign"):
            if not params.get(name):
                return bad("40001", "isv.missing-signature" if name == "sign" else f"isv.missing-{name}",
                           f"缺少参数 {name}")
        if params["app_id"] != self.app_id:
            return bad("40002", "isv.invalid-app-id", "无效的AppID参数")
        if params["sign_type"] != "RSA2":
            return bad("40002", "isv.invalid-signature-type", "签名类型不支持")
        if params["version"] != "1.0" or params["charset"].lower() != "utf-8":
            return bad("40002", "isv.invalid-charset", "charset 或 version 不正确")
        try:
            stamp = datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
        except ValueError:
            return bad("40002", "isv.invalid-timestamp", "时间戳格式不正确")
        if abs((datetime.now(UTC) - stamp).total_seconds()) > self.timestamp_window:
            return bad("40002", "isv.invalid-timestamp", "时间戳与支付宝服务器时间相差过大（应为北京时间）")
        try:
            self.app_public_key.verify(base64.b64decode(params["sign"]), signing_text(params, drop=("sign",)).encode(),
                                       padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return bad("40002", "isv.invalid-signature", "验签出错")
        return None

    def _local(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, BEIJING).strftime("%Y-%m-%d %H:%M:%S")

    def _send(self, url: str, params: dict) -> None:
        with self._state_lock:
            self.notifications_sent.append({"url": url, "params": params})
        if url and self.send_notification is not None:
            self.send_notification(url, params)
