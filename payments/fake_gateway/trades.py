"""The fake gateway's trade methods: precreate, the buyer's scan and payment, query, refunds (once per
request number, never beyond the amount), refund query, and the signed notifications."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation

from .base import (
    BEIJING,
    _refuse,
)


class TradeMethods:
    """Mixed into FakeAlipayGateway (its state and helpers)."""

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

    def refunded_total(self, out_trade_no: str) -> Decimal:
        return self._refunded(self.trades[out_trade_no])

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
