"""A local stand-in for Alipay's open-platform gateway: the parts this project calls, checked the way
Alipay checks them (protocols/alipay.md), implemented here independently of python-alipay-sdk.

Served by `manage.py fake_alipay` (so a new user can onboard a merchant and take a payment from the admin
without Alipay) and by the tests (tests/fakes/alipay.py, on the shared fake server). Both use this class.

Every request must carry `app_id`, `method`, `charset`, `sign_type=RSA2`, `version=1.0`, a `timestamp` in
Beijing time within ten minutes of now, and an RSA2 `sign` over every non-empty text parameter but `sign`
(sorted `k=v&…`, files excluded), verified with the app's public key. Answers are signed with the fake's
own "Alipay" private key over the exact text of the response node. Calls on a merchant's behalf need an
`app_auth_token` the fake issued.

Onboarding: `create` opens a batch (`init`, one hour to live); `facetoface.sign` checks the parameters and
pictures (png/bmp/gif/jpg/jpeg by content, 5 KB–5 MB); `confirm` submits it (`MERCHANT_AUDITING`); the
application then moves on by itself when `audit_seconds` / `confirm_seconds` are set (the runnable fake),
or when a test says so (`set_order_status`). On `MERCHANT_CONFIRM_SUCCESS` with `sign_and_auth` the fake
authorises the app for the merchant and (if it has somewhere to send it) posts an `open_app_auth_notify`.

Trades: `precreate` (idempotent per out_trade_no and amount) → a QR code; `pay()` plays the buyer and
returns the signed `trade_status_sync` notification; `refund` refunds an `out_request_no` once (a repeat
answers `fund_change=N`), never beyond the paid amount; `fastpay.refund.query` finds a refund or says
nothing. `fail_next()` injects faults: HTTP 500, a dropped connection before or after the work, a stall
after the work (client timeout), Alipay's system error, a business refusal, a bad answer signature.

Sub-codes marked "(fake)" are this fake's own where the protocol notes give none.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import struct
import threading
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BEIJING = ZoneInfo("Asia/Shanghai")
BATCH_TTL = timedelta(hours=1)
PICTURES = ("business_license_pic", "business_license_auth_pic", "shop_scene_pic", "shop_sign_board_pic",
            "special_license_pic")
MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"BM", "bmp"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
         (b"\xff\xd8\xff", "jpg"))
ON_BEHALF = ("alipay.trade.precreate", "alipay.trade.query", "alipay.trade.refund", "alipay.trade.fastpay.refund.query")


def generate_key_pair(bits: int = 2048) -> tuple[str, str]:
    """(private PEM, public PEM) of a new RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def sample_png(min_bytes: int = 8 * 1024, seed: int = 0) -> bytes:
    """A valid PNG of noise, at least `min_bytes` long (noise does not compress)."""
    side = int((min_bytes / 3) ** 0.5) + 8
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _pid(account: str) -> str:
    """A stable 2088… user id for an account."""
    return f"2088{zlib.crc32(account.encode()) % 10**12:012d}"


def sign_text(private_key, text: str) -> str:
    return base64.b64encode(private_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def signing_text(params: dict[str, str], *, drop: tuple[str, ...]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in drop and v != "")


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    drop: bool = False      # close the connection without an answer
    delay: float = 0.0      # seconds to wait before answering (or dropping)


@dataclass
class Fault:
    method: str
    kind: str               # http500 | drop_before | drop_after | stall_after | system_error | busy | refuse | bad_sign
    sub_code: str = ""
    seconds: float = 0.0


class _Refused(Exception):
    def __init__(self, code: str, sub_code: str, sub_msg: str, msg: str = "Business Failed"):
        super().__init__(sub_msg)
        self.node = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _refuse(sub_code: str, sub_msg: str) -> _Refused:
    return _Refused("40004", sub_code, sub_msg)


class FakeAlipayGateway:
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

    def batch_by_order(self, order_no: str) -> dict | None:
        return next((b for b in self.batches.values() if b.get("order_no") == order_no), None)

    def set_order_status(self, batch_no: str, status: str, *, reject_reason: str = "") -> dict:
        with self._state_lock:
            b = self.batches[batch_no]
            b["order_status"], b["status_since"] = status, self.clock().timestamp()
            if status == "MERCHANT_APPLY_ORDER_CANCELED":
                b["reject_reason"] = reject_reason or "资料不符合要求"
            if status == "MERCHANT_CONFIRM_SUCCESS":
                self._authorise(b)
            return b

    def calls_of(self, method: str) -> list[dict]:
        return [c for c in self.calls if c["method"] == method]

    def issue_token(self, *, user_id: str, auth_app_id: str = "", expires_in: int = 365 * 86400) -> dict:
        """Authorise the app for a merchant: a new token and refresh token."""
        with self._state_lock:
            token, refresh = f"fake-auth-{uuid.uuid4().hex[:20]}", f"fake-refresh-{uuid.uuid4().hex[:20]}"
            now = self.clock().timestamp()
            info = {"user_id": user_id, "auth_app_id": auth_app_id or f"2021{user_id[-12:]}", "refresh": refresh,
                    "expires_at": now + expires_in, "re_expires_at": now + expires_in + 30 * 86400}
            self.tokens[token] = info
            self.refresh_tokens[refresh] = token
            return {"app_auth_token": token, "app_refresh_token": refresh, "user_id": user_id,
                    "auth_app_id": info["auth_app_id"], "expires_in": expires_in,
                    "re_expires_in": expires_in + 30 * 86400}

    def issue_auth_code(self, *, user_id: str) -> str:
        """An app_auth_code, as the authorisation page's redirect carries it."""
        with self._state_lock:
            code = f"fake-code-{uuid.uuid4().hex[:16]}"
            self.auth_codes[code] = user_id
            return code

    def scan(self, out_trade_no: str) -> None:
        """The buyer scanned the QR code: the trade exists on Alipay's side, waiting for payment."""
        with self._state_lock:
            t = self.trades[out_trade_no]
            if t["status"] == "CREATED":
                t["status"], t["trade_no"] = "WAIT_BUYER_PAY", self._trade_no()

    def pay(self, out_trade_no: str, *, buyer_logon_id: str = "buy***@example.com", send: bool = True) -> dict:
        """The buyer pays: TRADE_SUCCESS, and the signed notification Alipay would post (sent to the
        trade's notify_url when the fake has a sender)."""
        with self._state_lock:
            self.scan(out_trade_no)
            t = self.trades[out_trade_no]
            t.update(status="TRADE_SUCCESS", buyer_logon_id=buyer_logon_id, paid_at=self.clock().timestamp())
        params = self.notification(out_trade_no)
        if send:
            self._send(t.get("notify_url") or self.default_notify_url, params)
        return params

    def notification(self, out_trade_no: str, /, **overrides: str) -> dict[str, str]:
        """A `trade_status_sync` notification for the trade's current state, signed (overrides are applied
        before signing; pass `sign=` to replace the signature after)."""
        t = self.trades[out_trade_no]
        token = self.tokens.get(t["app_auth_token"], {})
        params = {
            "notify_time": self._local(self.clock().timestamp()), "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex, "app_id": self.app_id, "auth_app_id": token.get("auth_app_id", ""),
            "charset": "utf-8", "version": "1.0", "trade_no": t.get("trade_no") or self._trade_no(),
            "out_trade_no": out_trade_no, "trade_status": t["status"] if t["status"] != "CREATED" else "WAIT_BUYER_PAY",
            "total_amount": t["total_amount"], "subject": t["subject"], "buyer_id": "2088102177846880",
            "buyer_logon_id": t.get("buyer_logon_id") or "buy***@example.com",
            "gmt_create": self._local(t["created_at"]),
        }
        if t.get("paid_at"):
            params.update(gmt_payment=self._local(t["paid_at"]), receipt_amount=t["total_amount"])
        if t["refunds"]:
            last = list(t["refunds"].values())[-1]
            params.update(out_biz_no=last["out_request_no"], refund_fee=str(self._refunded(t)),
                          gmt_refund=self._local(last["at"]))
        sign = overrides.pop("sign", None)
        params.update(overrides)
        params = {k: v for k, v in params.items() if v != ""}
        return self.sign_notification(params, sign=sign)

    def app_auth_notification(self, batch_no: str, /, **overrides: str) -> dict[str, str]:
        b = self.batches[batch_no]
        auth = b["auth"]
        detail = {k: auth[k] for k in ("app_auth_token", "app_refresh_token", "user_id", "auth_app_id",
                                       "expires_in", "re_expires_in")}
        detail["auth_time"] = self._local(self.clock().timestamp())
        params = {"notify_id": uuid.uuid4().hex, "notify_type": "open_app_auth_notify", "app_id": self.app_id,
                  "notify_time": self._local(self.clock().timestamp()), "charset": "utf-8", "version": "1.0",
                  "biz_content": json.dumps({"notify_context": {"trigger": "user", "trigger_context": {}},
                                             "detail": detail}, ensure_ascii=False, separators=(",", ":"))}
        sign = overrides.pop("sign", None)
        params.update(overrides)
        return self.sign_notification(params, sign=sign)

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

    def refunded_total(self, out_trade_no: str) -> Decimal:
        return self._refunded(self.trades[out_trade_no])

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

    # --- onboarding ------------------------------------------------------------------------------------
    def _open_agent_create(self, *, biz, **_):
        account, contact = biz.get("account"), biz.get("contact_info") or {}
        if not account or not contact.get("contact_name") or not (contact.get("contact_mobile")
                                                                   or contact.get("contact_email")):
            raise _refuse("INVALID_PARAMETER", "account 与 contact_info（姓名和手机或邮箱）必填")
        batch_no = f"{self.clock().astimezone(BEIJING):%Y%m%d}{next(self._seq):08d}"
        self.batches[batch_no] = {"batch_no": batch_no, "status": "init", "created_at": self.clock().timestamp(),
                                  "account": account, "contact": contact, "sign": None, "order_no": "",
                                  "order_status": "", "status_since": 0.0, "merchant_pid": "", "auth": None}
        return {"batch_no": batch_no, "batch_status": "init"}

    def _batch(self, batch_no: str, *, init: bool) -> dict:
        b = self.batches.get(batch_no or "")
        if b is None:
            raise _refuse("BATCH_IS_NOT_EXIST", "事务编号不存在")
        if b["status"] == "init" and self.clock().timestamp() - b["created_at"] > BATCH_TTL.total_seconds():
            b["status"] = "timeout"
        if init and b["status"] != "init":
            raise _refuse("BATCH_STATUS_ERROR", f"事务状态为 {b['status']}，只有 init 可操作 (fake)")
        return b

    def _open_agent_facetoface_sign(self, *, params, files, **_):
        b = self._batch(params.get("batch_no", ""), init=True)
        if not params.get("mcc_code"):
            raise _refuse("INVALID_PARAMETER", "mcc_code 必填")
        sign_and_auth = params.get("sign_and_auth", "false") == "true"
        if sign_and_auth or params.get("rate"):
            try:
                rate = Decimal(params.get("rate", ""))
            except InvalidOperation:
                raise _refuse("INVALID_PARAMETER", "rate 必填（0.38–0.6）") from None
            if not Decimal("0.38") <= rate <= Decimal("0.6"):
                raise _refuse("INVALID_PARAMETER", "rate 取值范围 0.38–0.6")
        if params.get("shop_address"):
            try:
                address = json.loads(params["shop_address"])
                assert isinstance(address, dict) and address.get("detail_address")
            except (ValueError, AssertionError):
                raise _refuse("INVALID_PARAMETER", "shop_address 格式不正确") from None
        required = ["shop_scene_pic", "shop_sign_board_pic"]
        if params.get("business_license_no"):
            required.append("business_license_pic")
        for name in required:
            if name not in files:
                raise _refuse("INVALID_PARAMETER", f"{name} 必传")
        for name, f in files.items():
            if name not in PICTURES:
                raise _refuse("INVALID_PARAMETER", f"未知的文件参数 {name}")
            if not any(f["content"].startswith(m) for m, _ in MAGIC):
                raise _refuse("INVALID_PARAMETER", f"{name} 格式须为 png/bmp/gif/jpg/jpeg")
            if not 5 * 1024 <= len(f["content"]) <= 5 * 1024 * 1024:
                raise _refuse("INVALID_PARAMETER", f"{name} 大小须在 5KB–5MB 之间")
        b["sign"] = {"params": {k: v for k, v in params.items() if k not in ("sign",)},
                     "files": sorted(files), "sign_and_auth": sign_and_auth}
        return {}

    def _open_agent_confirm(self, *, biz, **_):
        b = self._batch(biz.get("batch_no", ""), init=True)
        if b["sign"] is None:
            raise _refuse("BATCH_IS_EMPTY", "事务中没有业务申请，不能提交 (fake)")
        b.update(status="submit", order_no=f"2026{next(self._seq):012d}", order_status="MERCHANT_AUDITING",
                 status_since=self.clock().timestamp())
        return {"order_no": b["order_no"]}

    def _open_agent_cancel(self, *, biz, **_):
        b = self._batch(biz.get("batch_no", ""), init=True)
        b["status"] = "cancel"
        return {}

    def _open_agent_order_query(self, *, biz, **_):
        if not biz.get("batch_no"):
            raise _refuse("INVALID_BATCH_NO", "batch_no 不能为空")
        b = self._batch(biz["batch_no"], init=False)
        if b["status"] != "submit":
            raise _refuse("BATCH_STATUS_NOT_SUBMIT", "事务未提交")
        self._progress(b)
        out = {"order_no": b["order_no"], "order_status": b["order_status"]}
        if b["order_status"] not in ("MERCHANT_AUDITING", "MERCHANT_INFO_HOLD"):
            b["merchant_pid"] = b["merchant_pid"] or _pid(b["account"])
            out["merchant_pid"] = b["merchant_pid"]
        if b["order_status"] == "MERCHANT_CONFIRM":
            out["confirm_url"] = f"{self.base_url}/confirm/{b['order_no']}"
        if b["order_status"] == "MERCHANT_CONFIRM_SUCCESS" and b["auth"]:
            out["agent_app_id"] = b["auth"]["auth_app_id"]
        if b["order_status"] == "MERCHANT_APPLY_ORDER_CANCELED":
            out["reject_reason"] = b.get("reject_reason", "")
        return out

    def _progress(self, b: dict) -> None:
        """The runnable fake's timeline: review, then the merchant's confirmation, by the clock."""
        now = self.clock().timestamp()
        if b["order_status"] == "MERCHANT_AUDITING" and self.audit_seconds is not None \
                and now - b["status_since"] >= self.audit_seconds:
            self.set_order_status(b["batch_no"], "MERCHANT_CONFIRM")
        if b["order_status"] == "MERCHANT_CONFIRM" and self.confirm_seconds is not None \
                and now - b["status_since"] >= self.confirm_seconds:
            self.set_order_status(b["batch_no"], "MERCHANT_CONFIRM_SUCCESS")

    def _authorise(self, b: dict) -> None:
        if b["auth"] or not (b["sign"] or {}).get("sign_and_auth"):
            return
        b["merchant_pid"] = b["merchant_pid"] or _pid(b["account"])
        b["auth"] = self.issue_token(user_id=b["merchant_pid"])
        if self.send_notification is not None and self.default_notify_url:
            self._send(self.default_notify_url, self.app_auth_notification(b["batch_no"]))

    def _open_auth_token_app(self, *, biz, **_):
        if biz.get("grant_type") == "authorization_code":
            user_id = self.auth_codes.pop(biz.get("code", ""), None)
            if user_id is None:
                raise _Refused("40002", "isv.code-invalid", "授权码无效", msg="Invalid Arguments")
            return self.issue_token(user_id=user_id)
        if biz.get("grant_type") != "refresh_token":
            raise _Refused("40002", "isv.invalid-grant-type", "grant_type 不正确", msg="Invalid Arguments")
        old = self.refresh_tokens.pop(biz.get("refresh_token", ""), None)
        if old is None:
            raise _Refused("40002", "isv.refresh-token-invalid", "刷新令牌无效", msg="Invalid Arguments")
        info = self.tokens.pop(old)
        return self.issue_token(user_id=info["user_id"], auth_app_id=info["auth_app_id"])

    # --- trades -------------------------------------------------------------------------------------
    def _trade_precreate(self, *, biz, params, merchant, **_):
        otn, subject = biz.get("out_trade_no", ""), biz.get("subject", "")
        try:
            amount = Decimal(biz.get("total_amount", ""))
        except InvalidOperation:
            amount = Decimal(0)
        if not otn or not subject or not Decimal("0.01") <= amount <= Decimal("100000000"):
            raise _refuse("ACQ.INVALID_PARAMETER", "out_trade_no、subject、total_amount 不正确")
        t = self.trades.get(otn)
        if t is not None:
            if t["status"] in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise _refuse("ACQ.TRADE_HAS_SUCCESS", "交易已支付")
            if Decimal(t["total_amount"]) != amount or t["user_id"] != merchant["user_id"]:
                raise _refuse("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return {"out_trade_no": otn, "qr_code": t["qr_code"]}
        qr = f"{self.base_url}/qr/{otn}" if self.base_url else f"https://qr.alipay.com/bax0{uuid.uuid4().hex[:20]}"
        self.trades[otn] = {"out_trade_no": otn, "total_amount": f"{amount:.2f}", "subject": subject,
                            "status": "CREATED", "qr_code": qr, "user_id": merchant["user_id"],
                            "app_auth_token": params.get("app_auth_token", ""), "trade_no": "",
                            "notify_url": params.get("notify_url", ""), "created_at": self.clock().timestamp(),
                            "paid_at": None, "refunds": {}, "buyer_logon_id": ""}
        return {"out_trade_no": otn, "qr_code": qr}

    def _own_trade(self, biz: dict, merchant: dict) -> dict:
        t = self.trades.get(biz.get("out_trade_no", ""))
        if t is None or t["user_id"] != merchant["user_id"] or t["status"] == "CREATED":
            raise _refuse("ACQ.TRADE_NOT_EXIST", "交易不存在")
        return t

    def _trade_query(self, *, biz, merchant, **_):
        t = self._own_trade(biz, merchant)
        out = {"trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"], "trade_status": t["status"],
               "total_amount": t["total_amount"], "buyer_logon_id": t["buyer_logon_id"] or "buy***@example.com"}
        if t["paid_at"]:
            out.update(send_pay_date=self._local(t["paid_at"]), receipt_amount=t["total_amount"],
                       buyer_user_id="2088102177846880")
        return out

    def _trade_refund(self, *, biz, merchant, **_):
        t = self._own_trade(biz, merchant)
        request_no = biz.get("out_request_no") or t["out_trade_no"]
        try:
            amount = Decimal(biz.get("refund_amount", ""))
        except InvalidOperation:
            raise _refuse("ACQ.INVALID_PARAMETER", "refund_amount 不正确") from None
        done = t["refunds"].get(request_no)
        if done is not None:
            if Decimal(done["amount"]) != amount:
                raise _refuse("ACQ.CONTEXT_INCONSISTENT", "同一退款请求号的退款金额不一致")
            return self._refund_answer(t, fund_change="N")
        if t["status"] not in ("TRADE_SUCCESS",):
            raise _refuse("ACQ.TRADE_STATUS_ERROR", "交易状态不允许退款")
        if amount <= 0 or self._refunded(t) + amount > Decimal(t["total_amount"]):
            raise _refuse("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        t["refunds"][request_no] = {"out_request_no": request_no, "amount": f"{amount:.2f}",
                                    "at": self.clock().timestamp(), "reason": biz.get("refund_reason", "")}
        self.fund_changes.append((t["out_trade_no"], request_no, amount))
        if self._refunded(t) == Decimal(t["total_amount"]):
            t["status"] = "TRADE_CLOSED"
        return self._refund_answer(t, fund_change="Y")

    def _refund_answer(self, t: dict, *, fund_change: str) -> dict:
        return {"trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"], "fund_change": fund_change,
                "refund_fee": f"{self._refunded(t):.2f}", "buyer_logon_id": t["buyer_logon_id"],
                "gmt_refund_pay": self._local(self.clock().timestamp())}

    def _trade_fastpay_refund_query(self, *, biz, merchant, **_):
        t = self._own_trade(biz, merchant)
        r = t["refunds"].get(biz.get("out_request_no", ""))
        out = {"trade_no": t["trade_no"], "out_trade_no": t["out_trade_no"]}
        if r is not None:
            out.update(out_request_no=r["out_request_no"], refund_amount=r["amount"], total_amount=t["total_amount"],
                       refund_status="REFUND_SUCCESS")
        return out

    # --- helpers ---------------------------------------------------------------------------------------
    def _refunded(self, t: dict) -> Decimal:
        return sum((Decimal(r["amount"]) for r in t["refunds"].values()), Decimal("0.00"))

    def _trade_no(self) -> str:
        return f"{self.clock().astimezone(BEIJING):%Y%m%d}2200{next(self._seq):014d}"

    def _local(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, BEIJING).strftime("%Y-%m-%d %H:%M:%S")

    def _send(self, url: str, params: dict) -> None:
        with self._state_lock:
            self.notifications_sent.append({"url": url, "params": params})
        if url and self.send_notification is not None:
            self.send_notification(url, params)
