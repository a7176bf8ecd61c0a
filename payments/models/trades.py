"""Face-to-face trades we create for onboarded merchants, their refunds, and Alipay's async notifications.

A trade (django-fsm `status`):

    created ─precreate ok─► waiting (QR code shown) ─TRADE_SUCCESS─► paid ─TRADE_FINISHED─► finished
       │                        │                                   │
       └─► failed (refused)     └─TRADE_CLOSED / expired─► closed ◄─┘ TRADE_CLOSED (fully refunded)

The asynchronous notification is the truth (seed 003); a trade whose notification never came is queried
(due work on `check_state` / `check_due_at`) until Alipay gives a final answer.

A refund (`status`, plain: it is due work itself, common.due):

    pending ─► sending ─► succeeded
       ▲          ├─────► failed            (refused: the amount is free again)
       │          └─────► unknown ─► (refund query) ─► succeeded, or sent again with the same out_request_no
       └──────────────────────┘

Each refund has its own `out_request_no`, kept for every retry: Alipay refunds one request number once.
Refunds never exceed the paid amount: checked under the trade's row lock (payments.services.refunds).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from common.models import InboxEvent

from .onboarding import Merchant, Work

CENT = Decimal("0.01")


class TradeStatus(models.TextChoices):
    CREATED = "created", _("Created")
    WAITING = "waiting", _("Waiting for payment")
    PAID = "paid", _("Paid")
    FINISHED = "finished", _("Finished")
    CLOSED = "closed", _("Closed")
    FAILED = "failed", _("Failed")


T = TradeStatus
# Alipay's trade_status → our status. Only SUCCESS and FINISHED mean paid.
ALIPAY_TRADE_STATUS = {"WAIT_BUYER_PAY": T.WAITING, "TRADE_SUCCESS": T.PAID, "TRADE_FINISHED": T.FINISHED,
                       "TRADE_CLOSED": T.CLOSED}
PAID_STATES = (T.PAID, T.FINISHED)


class Trade(ConcurrentTransitionMixin, models.Model):
    merchant = models.ForeignKey(Merchant, verbose_name=_("merchant"), on_delete=models.PROTECT, related_name="trades")
    out_trade_no = models.CharField(_("our trade no."), max_length=64, unique=True)
    trade_no = models.CharField(_("Alipay trade no."), max_length=64, blank=True, db_index=True)
    subject = models.CharField(_("subject"), max_length=256)
    total_amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2,
                                       validators=[MinValueValidator(CENT)])
    status = FSMField(_("status"), max_length=12, choices=TradeStatus.choices, default=T.CREATED, protected=True,
                      db_index=True)
    alipay_status = models.CharField(_("Alipay trade status"), max_length=32, blank=True)
    qr_code = models.TextField(_("QR code content"), blank=True)
    buyer_logon_id = models.CharField(_("buyer account"), max_length=100, blank=True)
    buyer_user_id = models.CharField(_("buyer user id"), max_length=32, blank=True)
    receipt_amount = models.DecimalField(_("received (yuan)"), max_digits=12, decimal_places=2, null=True, blank=True)
    refunded_amount = models.DecimalField(_("refunded (yuan)"), max_digits=12, decimal_places=2, default=Decimal("0"))
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("QR code expires at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    needs_attention = models.BooleanField(_("needs attention"), default=False)
    attention_reason = models.CharField(_("why it needs attention"), max_length=255, blank=True)
    check_state = models.CharField(_("status check"), max_length=8, choices=Work.choices, default=Work.IDLE)
    check_due_at = models.DateTimeField(_("next status check at"), null=True, blank=True)
    check_lease_until = models.DateTimeField(_("status check lease until"), null=True, blank=True)
    check_attempts = models.PositiveIntegerField(_("status checks"), default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Alipay trade")
        verbose_name_plural = _("Alipay trades")
        ordering = ["-created_at", "-pk"]
        permissions = [("refund_trade", _("Can refund Alipay trades"))]
        indexes = [models.Index(fields=["check_state", "check_due_at"], name="trade_check_due")]

    def __str__(self):
        return self.out_trade_no

    @property
    def is_paid(self) -> bool:
        return self.status in PAID_STATES or (self.status == T.CLOSED and self.paid_at is not None)

    # --- transitions -------------------------------------------------------------------------------
    @transition(field=status, source=T.CREATED, target=T.WAITING)
    def mark_waiting(self):
        pass

    @transition(field=status, source=[T.CREATED, T.WAITING, T.CLOSED], target=T.PAID)
    def mark_paid(self):
        """Also from `closed`: money Alipay says it took is never ignored (a payment after a local close)."""

    @transition(field=status, source=[T.CREATED, T.WAITING, T.PAID, T.CLOSED], target=T.FINISHED)
    def mark_finished(self):
        pass

    @transition(field=status, source=[T.CREATED, T.WAITING, T.PAID], target=T.CLOSED)
    def mark_closed(self):
        pass

    @transition(field=status, source=T.CREATED, target=T.FAILED)
    def mark_failed(self):
        pass


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    UNKNOWN = "unknown", _("Outcome unknown: checking")
    SUCCEEDED = "succeeded", _("Refunded")
    FAILED = "failed", _("Failed")


R = RefundStatus
# Refunds that hold part of the paid amount (all but failed ones).
HOLDING = (R.PENDING, R.SENDING, R.UNKNOWN, R.SUCCEEDED)


class Refund(models.Model):
    trade = models.ForeignKey(Trade, verbose_name=_("trade"), on_delete=models.PROTECT, related_name="refunds")
    out_request_no = models.CharField(_("refund request no."), max_length=64, unique=True)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2,
                                 validators=[MinValueValidator(CENT)])
    reason = models.CharField(_("reason"), max_length=256)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("requested by"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_by_name = models.CharField(_("requested by (name)"), max_length=150, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=RefundStatus.choices, default=R.PENDING,
                              db_index=True)
    fund_change = models.CharField(_("funds moved"), max_length=1, blank=True,
                                   help_text=_("Y: this call moved money; N: Alipay had refunded this request "
                                               "already."))
    last_error = models.TextField(_("last error"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    due_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("worker lease until"), null=True, blank=True)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)
    created_at = models.DateTimeField(_("requested at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Alipay refund")
        verbose_name_plural = _("Alipay refunds")
        ordering = ["-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")]
        indexes = [models.Index(fields=["status", "due_at"], name="refund_due")]

    def __str__(self):
        return f"{self.out_request_no} ¥{self.amount}"


class AlipayInboxEvent(InboxEvent):
    """Alipay async notifications (trade status, app authorisation), stored before processing."""

    trade = models.ForeignKey(Trade, verbose_name=_("trade"), null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="notifications")
    out_trade_no = models.CharField(_("our trade no."), max_length=64, blank=True, db_index=True)

    class Meta(InboxEvent.Meta):
        verbose_name = _("Alipay notification")
        verbose_name_plural = _("Alipay notifications")
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="alipay_inbox_unique_key")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="alipay_inbox_due")]
