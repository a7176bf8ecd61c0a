"""Refunds (seed 003: idempotent by the merchant's request number, never more than paid).

`refund_request` locks the trade (common.locks; lock order trade → refund), checks that the trade is paid
and that this refund plus every refund not failed stays within the paid amount, and stores the refund with
its own `out_request_no`, who asked and why. Two concurrent requests that together exceed the amount
queue on the trade's lock: the second sees the first and is refused.

`refund_send` is due work (common.due): lock → mark `sending` → commit → call `alipay.trade.refund` with the
refund's `out_request_no` → record. An outcome that is unknown (timeout, 5xx, Alipay's system error, a
worker that died while sending) is reconciled with `alipay.trade.fastpay.refund.query` before anything
else; only a refund Alipay does not know is sent again — with the same `out_request_no`, so Alipay refunds
it once whatever happens (a repeat answers `fund_change=N`). A refusal frees the amount again.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from common.due import DueWork
from common.http import ConfigurationError, PlatformError
from common.locks import lock_one

from ..client import BEIJING
from ..models import Refund, RefundStatus, Trade, TradeStatus
from ..selectors import refundable
from . import calls
from .base import LEASE, PaymentsError, clean_text, retry_in
from .trades import parse_amount

log = logging.getLogger(__name__)
R = RefundStatus
REFUND_WORK = DueWork(Refund, waiting=(R.PENDING, R.UNKNOWN), busy=R.SENDING, lease=LEASE)


class RefundError(PaymentsError):
    pass


def new_out_request_no() -> str:
    return f"RF{timezone.now().astimezone(BEIJING):%Y%m%d%H%M%S}{secrets.token_hex(5).upper()}"


def refund_request(*, trade_id: int, amount=None, reason, user=None, send: bool = True,
                   now: datetime | None = None) -> Refund:
    """Staff: refund `amount` yuan (None: all that is left) of a paid trade. Raises RefundError with the
    reason when the trade or the amount does not allow it; otherwise stores the refund and (by default)
    sends it at once. Returns the refund as it stands."""
    now = now or timezone.now()
    reason = clean_text(reason, field=_("Reason"), max_length=256)
    with transaction.atomic():
        trade = lock_one(Trade.objects.all(), pk=trade_id)
        if trade is None:
            raise RefundError(_("The trade does not exist."))
        if trade.status != TradeStatus.PAID:
            raise RefundError(_("Only a paid trade can be refunded (this one is %(status)s).")
                              % {"status": trade.get_status_display()})
        left = refundable(trade)
        value = left if amount in (None, "") else parse_amount(amount, field=_("Refund amount"))
        if value <= 0:
            raise RefundError(_("Nothing is left to refund on this trade."))
        if value > left:
            raise RefundError(_("At most %(left)s yuan can still be refunded on this trade (asked: %(asked)s).")
                              % {"left": left, "asked": value})
        refund = Refund.objects.create(
            trade=trade, out_request_no=new_out_request_no(), amount=value, reason=reason, requested_by=user,
            requested_by_name=(user.get_username() if user is not None else "")[:150], status=R.PENDING, due_at=now)
    if send:
        refund_send(refund_id=refund.pk, now=now)
    return Refund.objects.select_related("trade").get(pk=refund.pk)


def refund_send(*, refund_id: int, now: datetime | None = None) -> str:
    """Send (or reconcile) one due refund. Safe to run any number of times, concurrently."""
    now = now or timezone.now()
    with transaction.atomic():
        claim = REFUND_WORK.lock(refund_id, now=now)
        if claim is None:
            return Refund.objects.filter(pk=refund_id).values_list("status", flat=True).first() or "missing"
        r = claim.row
        reconcile = claim.reclaimed or r.status == R.UNKNOWN
        REFUND_WORK.mark(r, now=now)
        attempt = r.attempts
    trade = Trade.objects.select_related("merchant").get(pk=r.trade_id)
    token = trade.merchant.app_auth_token
    ctx = {"merchant": trade.merchant, "trade": trade, "refund": r}
    request = {"out_trade_no": trade.out_trade_no, "out_request_no": r.out_request_no}
    if reconcile:
        try:
            answer = calls.call("alipay.trade.fastpay.refund.query", lambda c: c.refund_query(
                app_auth_token=token, out_trade_no=trade.out_trade_no, out_request_no=r.out_request_no),
                request=request, **ctx)
        except PlatformError as exc:
            return _record(refund_id, attempt, now, error=exc, during=_("checking the refund"), unknown=True)
        node = answer.node
        if node.get("refund_amount") and node.get("refund_status", "REFUND_SUCCESS") in ("", "REFUND_SUCCESS"):
            return _record(refund_id, attempt, now, node=node, fund_change="")
    if attempt > settings.ALIPAY_REFUND_MAX_ATTEMPTS:
        return _record(refund_id, attempt, now, error=PlatformError(
            _("gave up after %(n)s attempts") % {"n": attempt - 1}),
            during=_("refunding"), give_up=True)
    try:
        answer = calls.call("alipay.trade.refund", lambda c: c.trade_refund(
            app_auth_token=token, out_trade_no=trade.out_trade_no, refund_amount=r.amount,
            out_request_no=r.out_request_no, refund_reason=r.reason),
            request={**request, "refund_amount": str(r.amount), "refund_reason": r.reason}, **ctx)
    except PlatformError as exc:
        return _record(refund_id, attempt, now, error=exc, during=_("refunding"))
    return _record(refund_id, attempt, now, node=answer.node, fund_change=str(answer.node.get("fund_change") or ""))


def _record(refund_id: int, attempt: int, now: datetime, *, node: dict | None = None, fund_change: str = "",
            error: PlatformError | None = None, during: str = "", give_up: bool = False,
            unknown: bool = False) -> str:
    """Store an attempt's result. `unknown`: the refund's fate is still unknown whatever the error says
    (the reconciling query failed)."""
    with transaction.atomic():
        trade_id = Refund.objects.values_list("trade_id", flat=True).get(pk=refund_id)
        trade = lock_one(Trade.objects.all(), pk=trade_id)       # trade before refund, as refund_request
        r = lock_one(Refund.objects.all(), pk=refund_id)
        if r.status != R.SENDING or r.attempts != attempt:
            return r.status   # our lease ran out and another worker took over: it records
        r.lease_until = None
        if error is None:
            r.status, r.fund_change, r.refunded_at, r.due_at, r.last_error = R.SUCCEEDED, fund_change[:1], now, None, ""
            r.save()
            _sync_refunded(trade)
            return r.status
        r.last_error = f"{during}: {error}"[:4000]
        if give_up:
            r.status, r.due_at = R.FAILED, None         # Alipay does not have it (just checked, or never sent)
        elif unknown or error.outcome_unknown:
            r.status, r.due_at = R.UNKNOWN, now + retry_in(attempt, cap=timedelta(hours=1))
        elif error.retryable or isinstance(error, ConfigurationError):
            # Not sent (or refused for our configuration): the same request goes again later.
            r.status, r.due_at = R.PENDING, now + retry_in(attempt, cap=timedelta(hours=1))
        else:
            r.status, r.due_at = R.FAILED, None          # refused: the amount is free again
        r.save()
        return r.status


def _sync_refunded(trade: Trade) -> None:
    total = trade.refunds.filter(status=R.SUCCEEDED).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    if total != trade.refunded_amount:
        trade.refunded_amount = total
        trade.save(update_fields=["refunded_amount", "updated_at"])


def refund_confirmed_by_notice(*, trade: Trade, out_request_no: str, now: datetime) -> str:
    """A trade notification that names a refund (`out_biz_no`): Alipay refunded it. Caller holds the trade."""
    r = lock_one(Refund.objects.all(), trade=trade, out_request_no=out_request_no)
    if r is None or r.status == R.SUCCEEDED:
        return ""
    if r.status == R.SENDING:
        return f"; refund {out_request_no} in flight"    # its worker records the answer
    r.status, r.refunded_at, r.due_at, r.lease_until = R.SUCCEEDED, now, None, None
    r.last_error = ""
    r.save()
    _sync_refunded(trade)
    return f"; refund {out_request_no} confirmed"


def refund_check_now(*, refund_id: int, now: datetime | None = None) -> str:
    """Staff: check (and if Alipay does not know it, send) a refund whose outcome is unknown, now."""
    now = now or timezone.now()
    with transaction.atomic():
        r = lock_one(Refund.objects.all(), pk=refund_id)
        if r is None or r.status not in (R.PENDING, R.UNKNOWN):
            raise RefundError(_("Only a pending refund or one whose outcome is unknown can be checked."))
        r.due_at = now
        r.save(update_fields=["due_at", "updated_at"])
    return refund_send(refund_id=refund_id, now=now)


def refunds_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    return REFUND_WORK.due_ids(now=now, limit=limit)
