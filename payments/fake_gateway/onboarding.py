"""The fake gateway's onboarding methods: agent batches, the face-to-face application, its review and the
merchant's confirmation, app authorisation tokens."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal, InvalidOperation

from .base import (
    BATCH_TTL,
    BEIJING,
    MAGIC,
    PICTURES,
    _pid,
    _refuse,
    _Refused,
)


class OnboardingMethods:
    """Mixed into FakeAlipayGateway (its state and helpers)."""

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
