"""Staff actions on verifications (the admin calls these): re-send a link, override a result with a written
reason (recorded in the order's event log), confirm an order was closed on the platform by hand, and ask the
Sumsub sandbox to finish a review (testCompleted). Same locks and outcomes as kyc.services."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.http import PlatformError
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import order_close, order_note

from . import events as log_event
from .clients import SumsubClient, is_sandbox_token, sumsub_configured
from .models import ACTIONABLE, OPEN, OVERRIDABLE, BuyerMessage, Closure, Verification, VerificationEvent
from .models import VerificationStatus as V
from .services import (
    KycError,
    Policy,
    Review,
    decide,
    lock_pair,
    policy_for,
    reach_buyer,
    refetch,
    schedule,
    verification_create,
)

OS = OrderStatus
Actor = VerificationEvent.Actor
OrderActor = OrderEvent.Actor
REASON_MAX = 500


def _reason(reason: str) -> str:
    text = (reason or "").strip()
    if not text:
        raise KycError(_("Give a reason."))
    if len(text) > REASON_MAX:
        raise KycError(_("The reason may be at most %(n)d characters long.") % {"n": REASON_MAX})
    if "\x00" in text or any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise KycError(_("The reason contains characters that are not allowed."))
    return text


def verification_resend(*, verification: Verification, user) -> Verification:
    """Send the link again. An open link is sent as is; an expired one (order still awaiting KYC) is
    replaced by a new verification with a new link and lifetime. Returns the verification sent."""
    with transaction.atomic():
        order, v = lock_pair(verification.pk)
        if v.status in ACTIONABLE and v.expires_at > timezone.now():
            channels = reach_buyer(v, order, kind=BuyerMessage.Kind.LINK)
            log_event.link_event(v, channels=channels, actor=Actor.STAFF, user=user)
            v.needs_staff, v.staff_reason = False, ""
            v.save()
            return v
        if order.status != OS.AWAITING_KYC:
            raise KycError(_("Order %(order)s is %(status)s: no link needs sending.")
                           % {"order": order.platform_order_id, "status": order.get_status_display()})
        if v.status in OPEN or Verification.objects.filter(order=order, status__in=OPEN).exists():
            raise KycError(_("Order %(order)s already has a verification in progress (submitted or under review): wait "
                             "for its result.") % {"order": order.platform_order_id})
        if v.status not in (V.EXPIRED, V.REJECTED, V.CANCELLED):
            raise KycError(_("The verification is %(status)s: it cannot be sent again.")
                           % {"status": v.get_status_display()})
        policy = policy_for(order.product) or Policy(v.level_name, timedelta(days=settings.KYC_VALIDITY_DAYS),
                                                     timedelta(hours=settings.KYC_LINK_TTL_HOURS), v.expiry_action)
        v.needs_staff, v.staff_reason = False, ""
        if v.closure == Closure.STAFF:
            v.closure = Closure.NONE
        v.save()
        log_event.note_event(v, actor=Actor.STAFF, user=user, message="员工重新发起认证：已生成新的链接")
        fresh = verification_create(order=order, policy=policy, user=user)
        order_note(order=order, actor=OrderActor.STAFF, user=user, data={"verification": fresh.pk},
                   message="员工重新发起实名认证（新链接）")
        return fresh


def verification_override(*, verification: Verification, user, approve: bool, reason: str) -> Verification:
    """Staff decide the result themselves, with a written reason recorded in the order's event log."""
    reason = _reason(reason)
    with transaction.atomic():
        order, v = lock_pair(verification.pk)
        if v.status not in OVERRIDABLE:
            raise KycError(_("The verification is %(status)s: its result cannot be overridden.")
                           % {"status": v.get_status_display()})
        if approve and order.status != OS.AWAITING_KYC:
            raise KycError(_("Order %(order)s is %(status)s: it cannot be released.")
                           % {"order": order.platform_order_id, "status": order.get_status_display()})
        if not approve and v.status == V.REJECTED:
            raise KycError(_("The verification is already rejected."))
        verdict = "通过" if approve else "拒绝"
        order_note(order=order, actor=OrderActor.STAFF, user=user, data={"verification": v.pk, "approve": approve},
                   message=f"实名认证人工{verdict}：{reason}")
        review = Review(answer="GREEN" if approve else "RED", reject_type="" if approve else "FINAL",
                        client_comment=reason, review_status="staff")
        order = decide(v, order, review, actor=Actor.STAFF, user=user, message=f"人工{verdict}：{reason}")
        schedule(v, order)
        v.save()
        return v


def verification_staff_closed(*, verification: Verification, user) -> Verification:
    """Staff closed the order on the platform themselves (one without a close API): close it here."""
    with transaction.atomic():
        order, v = lock_pair(verification.pk)
        if v.closure != Closure.STAFF:
            raise KycError(_("This verification has no order waiting to be closed by staff."))
        order_close(order=order, actor=OrderActor.STAFF, user=user, data={"verification": v.pk},
                    message="员工已在平台关闭订单（实名认证未通过或超时）")
        v = refetch(v)
        v.closure, v.needs_staff, v.staff_reason = Closure.DONE, False, ""
        log_event.note_event(v, actor=Actor.STAFF, user=user, message="员工确认已在平台关闭订单")
        schedule(v, Order.objects.get(pk=order.pk))
        v.save()
        return v


def verification_test_completed(*, verification: Verification, user, answer: str, reject_type: str = "",
                                comment: str = "") -> None:
    """Staff rehearsal with Sumsub sandbox credentials (`sbx:` tokens): ask Sumsub to finish the applicant's
    review as GREEN or RED; Sumsub then sends the applicantReviewed webhook like a real review."""
    if not sumsub_configured() or not is_sandbox_token():
        raise KycError(_("A review can be simulated only with Sumsub sandbox credentials (an App Token that starts "
                          "with sbx:)."))
    if answer not in ("GREEN", "RED"):
        raise KycError(_("The review answer must be GREEN or RED."))
    v = Verification.objects.select_related("applicant").get(pk=verification.pk)
    if v.status not in OPEN:
        raise KycError(_("The verification is %(status)s: a review can no longer be simulated.")
                       % {"status": v.get_status_display()})
    if not v.applicant.applicant_id:
        raise KycError(_("The buyer has not opened the verification page yet: Sumsub has no applicant."))
    try:
        SumsubClient().test_completed(v.applicant.applicant_id, review_answer=answer,
                                      reject_type=reject_type or ("RETRY" if answer == "RED" else ""),
                                      moderation_comment=comment, client_comment="testCompleted from the admin")
    except PlatformError as exc:
        raise KycError(_("Sumsub did not accept the simulated review: %(error)s") % {"error": exc}) from exc
    log_event.note_event(v, actor=Actor.STAFF, user=user, message=f"已请求 Sumsub 沙箱模拟审核：{answer}"
                         f"{(' ' + reject_type) if reject_type else ''}")
