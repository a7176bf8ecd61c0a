"""Face-to-face trades for onboarded merchants (seed 003: the asynchronous notification is the truth).

`trade_create` stores the trade and precreates it on Alipay (idempotent per out_trade_no and amount, so a
precreate whose answer was lost is simply sent again) → a QR code. The trade then waits for Alipay's
notification (`alipay_event_handle`, through the inbox); a status check (due work on `check_state`) queries
it ALIPAY_TRADE_QUERY_DELAY_SECONDS after creation and then with backoff for a notification that never came,
until a final answer: paid, closed, or — still unscanned after its QR code expired — closed here.

Statuses only move forward (`trade_apply_status`); a payment reported after a local close is accepted and
flagged, never ignored.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from common.due import DueWork
from common.http import ConfigurationError, PlatformError
from common.inbox import Ignored
from common.locks import lock_one

from ..client import BEIJING, sub_code_of
from ..models import ALIPAY_TRADE_STATUS, Merchant, Trade, TradeStatus, Work
from . import calls
from .base import LEASE, PaymentsError, clean_text, retry_in

log = logging.getLogger(__name__)
T = TradeStatus
TRADE_CHECK = DueWork(Trade, waiting=(Work.WAITING,), busy=Work.BUSY, status_field="check_state",
                      due_field="check_due_at", lease_field="check_lease_until", attempts_field="check_attempts",
                      lease=LEASE)
MAX_AMOUNT = Decimal("100000000.00")
EXPIRY_GRACE = timedelta(minutes=5)


class TradeError(PaymentsError):
    pass


def parse_amount(value, *, field: str) -> Decimal:
    """Yuan with at most two decimals, 0.01 … 100,000,000.00."""
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise TradeError(_("%(field)s is not an amount.") % {"field": field}) from None
    if not (amount.is_finite() and Decimal("0.01") <= amount <= MAX_AMOUNT
            and amount == amount.quantize(Decimal("0.01"))):
        raise TradeError(_("%(field)s must be between 0.01 and 100000000.00 yuan, with at most two decimals.")
                         % {"field": field})
    return amount.quantize(Decimal("0.01"))


def new_out_trade_no() -> str:
    return f"XO{timezone.now().astimezone(BEIJING):%Y%m%d%H%M%S}{secrets.token_hex(5).upper()}"


def _queryset():
    return Trade.objects.select_related("merchant")


def trade_create(*, merchant: Merchant, subject, total_amount, user=None, precreate: bool = True,
                 now: datetime | None = None) -> Trade:
    """Staff: a face-to-face trade for an onboarded merchant, precreated at once (its QR code) unless
    `precreate=False` (the caller is inside a transaction: it runs `trade_check` after commit; the sweeper
    would too)."""
    now = now or timezone.now()
    subject = clean_text(subject, field=_("Subject"), max_length=256)
    amount = parse_amount(total_amount, field=_("Amount"))
    if not merchant.can_trade:
        raise TradeError(_("%(m)s is not authorised for trades yet (no valid app authorisation token).")
                         % {"m": merchant.name})
    trade = Trade.objects.create(merchant=merchant, out_trade_no=new_out_trade_no(), subject=subject,
                                 total_amount=amount, created_by=user, check_state=Work.WAITING, check_due_at=now,
                                 expires_at=now + timedelta(minutes=settings.ALIPAY_TRADE_TIMEOUT_MINUTES))
    if precreate:
        trade_check(trade_id=trade.pk, now=now)
    return _queryset().get(pk=trade.pk)


def trade_check(*, trade_id: int, now: datetime | None = None, force: bool = False) -> str:
    """The status check (the check_trade task, the sweeper, staff "query now"): precreate a trade whose
    precreate failed, or query a waiting one. Returns the trade's status (or "busy" / "missing")."""
    now = now or timezone.now()
    claim = TRADE_CHECK.claim(trade_id, now=now, force=force)
    if claim is None:
        row = Trade.objects.filter(pk=trade_id).values_list("status", "check_state").first()
        return "missing" if row is None else ("busy" if row[1] == Work.BUSY else row[0])
    trade, attempt = claim.row, claim.row.check_attempts
    trade.merchant = Merchant.objects.get(pk=trade.merchant_id)
    if trade.status == T.CREATED:
        action, method = "precreate", "alipay.trade.precreate"
    elif trade.status == T.WAITING or force:
        action, method = "query", "alipay.trade.query"
    else:
        action, method = None, ""
    answer, error = None, None
    if action is not None:
        token = trade.merchant.app_auth_token
        try:
            if action == "precreate":
                answer = calls.call(method, lambda c: c.trade_precreate(
                    app_auth_token=token, out_trade_no=trade.out_trade_no, total_amount=trade.total_amount,
                    subject=trade.subject, timeout_express=f"{settings.ALIPAY_TRADE_TIMEOUT_MINUTES}m",
                    notify_url=settings.ALIPAY_NOTIFY_URL),
                    request={"out_trade_no": trade.out_trade_no, "total_amount": str(trade.total_amount),
                             "subject": trade.subject}, merchant=trade.merchant, trade=trade)
            else:
                answer = calls.call(method, lambda c: c.trade_query(app_auth_token=token,
                                                                    out_trade_no=trade.out_trade_no),
                                    request={"out_trade_no": trade.out_trade_no}, merchant=trade.merchant, trade=trade)
        except PlatformError as exc:
            error = exc
    with transaction.atomic():
        t = lock_one(_queryset(), pk=trade_id)
        if t.check_state != Work.BUSY or t.check_attempts != attempt:
            return t.status
        t.check_lease_until = None
        if action == "precreate":
            _record_precreate(t, answer, error, now)
        elif action == "query":
            _record_query(t, answer, error, now)
        if action is None or t.status not in (T.CREATED, T.WAITING):
            t.check_state, t.check_due_at = Work.IDLE, None   # nothing left to check
        t.save()
        return t.status


def _retry(t: Trade, error: PlatformError, now: datetime) -> None:
    t.last_error = str(error)[:4000]
    if isinstance(error, ConfigurationError):
        t.needs_attention, t.attention_reason = True, str(error)[:255]
    t.check_state = Work.WAITING
    t.check_due_at = now + retry_in(t.check_attempts)


def _record_precreate(t: Trade, answer, error, now: datetime) -> None:
    if error is None:
        t.qr_code = str(answer.node.get("qr_code") or "")
        t.mark_waiting()
        t.last_error = ""
        t.check_state, t.check_due_at = Work.WAITING, now + timedelta(seconds=settings.ALIPAY_TRADE_QUERY_DELAY_SECONDS)
    elif not (error.retryable or error.outcome_unknown or isinstance(error, ConfigurationError)):
        t.mark_failed()
        t.last_error = _("Alipay refused the trade: %(e)s") % {"e": error}
        t.check_state, t.check_due_at = Work.IDLE, None
    else:
        _retry(t, error, now)   # precreate is idempotent per out_trade_no: it is simply sent again


def _record_query(t: Trade, answer, error, now: datetime) -> None:
    if error is None:
        node = answer.node
        if str(node.get("out_trade_no") or t.out_trade_no) != t.out_trade_no:
            _retry(t, ConfigurationError("alipay.trade.query answered for another trade"), now)
            return
        trade_apply_status(t, str(node.get("trade_status") or ""), node, now=now)
        if t.status == T.WAITING:
            t.check_state = Work.WAITING
            t.check_due_at = now + retry_in(t.check_attempts, cap=timedelta(hours=1))
        return
    if sub_code_of(error) == "ACQ.TRADE_NOT_EXIST" and t.status == T.WAITING:
        # Nobody has scanned the QR code. Once it has expired, nobody can: the trade is over.
        if t.expires_at is not None and now >= t.expires_at + EXPIRY_GRACE:
            t.mark_closed()
            t.closed_at, t.alipay_status = now, "TRADE_NOT_EXIST"
            t.check_state, t.check_due_at, t.last_error = Work.IDLE, None, ""
            return
        t.last_error = ""
        t.check_state = Work.WAITING
        t.check_due_at = min(now + retry_in(t.check_attempts, cap=timedelta(hours=1)),
                             max(now, (t.expires_at or now) + EXPIRY_GRACE))
        return
    _retry(t, error, now)


def _when(value) -> datetime | None:
    """Alipay's 'YYYY-MM-DD HH:MM:SS' (Beijing time) as an aware datetime."""
    if not value:
        return None
    parsed = parse_datetime(str(value))
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=BEIJING)


def trade_apply_status(t: Trade, alipay_status: str, data: dict, *, now: datetime) -> bool:
    """Move a locked trade to what Alipay reports (forward only). Returns True when it moved."""
    target = ALIPAY_TRADE_STATUS.get(alipay_status)
    if target is None:
        return False
    t.alipay_status = alipay_status
    if data.get("trade_no"):
        t.trade_no = str(data["trade_no"])[:64]
    if target in (T.PAID, T.FINISHED) and t.paid_at is None:
        t.paid_at = _when(data.get("gmt_payment") or data.get("send_pay_date")) or now
        t.buyer_logon_id = str(data.get("buyer_logon_id") or "")[:100]
        t.buyer_user_id = str(data.get("buyer_id") or data.get("buyer_user_id") or "")[:32]
        try:
            t.receipt_amount = Decimal(str(data.get("receipt_amount") or data.get("total_amount")))
        except (InvalidOperation, ValueError):
            t.receipt_amount = None
    moved = False
    if target == T.PAID and t.status in (T.CREATED, T.WAITING, T.CLOSED):
        if t.status == T.CLOSED:
            t.needs_attention = True
            t.attention_reason = _("Paid after it was closed here: the money was taken; refund it if needed.")
        t.mark_paid()
        moved = True
    elif target == T.FINISHED and t.status in (T.CREATED, T.WAITING, T.PAID, T.CLOSED):
        t.mark_finished()
        moved = True
    elif target == T.CLOSED and t.status in (T.CREATED, T.WAITING, T.PAID):
        t.mark_closed()
        t.closed_at = _when(data.get("gmt_close")) or now
        moved = True
    elif target == T.WAITING and t.status == T.CREATED:
        t.mark_waiting()
        moved = True
    if t.status in (T.PAID, T.FINISHED, T.CLOSED):
        t.check_state, t.check_due_at = Work.IDLE, None
    return moved


def alipay_event_handle(event) -> str:
    """Inbox handler (common.inbox.process) for an Alipay notification. Idempotent."""
    params = dict(parse_qsl(event.body, keep_blank_values=True))
    kind = params.get("notify_type", "")
    if kind == "open_app_auth_notify":
        from .merchants import merchant_app_auth_notice

        return merchant_app_auth_notice(params, event=event)
    if kind != "trade_status_sync":
        raise Ignored(f"notify_type {kind!r} is not handled")
    from .refunds import refund_confirmed_by_notice

    now = timezone.now()
    with transaction.atomic():
        t = lock_one(_queryset(), out_trade_no=params.get("out_trade_no", ""))
        if t is None:
            raise Ignored("unknown out_trade_no")
        moved = trade_apply_status(t, params.get("trade_status", ""), params, now=now)
        t.save()
        refund = ""
        if params.get("out_biz_no") and params.get("refund_fee"):
            refund = refund_confirmed_by_notice(trade=t, out_request_no=params["out_biz_no"], now=now)
    return f"{t.out_trade_no}: {t.status}{'' if moved else ' (unchanged)'}{refund}"


def trades_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    return TRADE_CHECK.due_ids(now=now, limit=limit)


def refund_lock_trade(trade_id: int) -> Trade | None:
    """The trade row lock every refund takes first (lock order: trade → refund)."""
    return lock_one(_queryset(), pk=trade_id)

