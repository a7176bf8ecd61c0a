"""What the buyer's verify page does (no login: the 256-bit token in the link is the credential): the state
the page shows, starting a Sumsub WebSDK session (the buyer's applicant, created or reused, and a short-lived
access token) and, without Sumsub credentials, the local sandbox review (`kyc.sandbox`).

Nothing here starts a verification for a link that cannot be used any more: an expired, decided or
cancelled link, or an order that is no longer waiting for KYC, raises LinkUnusable before any call."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from orders.models import OrderStatus

from . import events as log_event
from .clients import SumsubClient, sumsub_configured
from .models import OPEN, KycApplicant, Verification, VerificationStatus
from .services import KycError, check_interval, lock_pair, sandbox_active, schedule

V = VerificationStatus
OS = OrderStatus
SDK_TOKEN_TTL = 1800
TOKEN_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
USABLE = ("open", "retry", "pending")


class LinkUnusable(KycError):
    def __init__(self, state: str):
        super().__init__(state)
        self.state = state


def verification_by_token(token: str) -> Verification | None:
    if not token or len(token) > 64 or not set(token) <= TOKEN_CHARS:
        return None
    return (Verification.objects.select_related("order", "order__shop", "order__product", "applicant")
            .filter(token=token).first())


def page_state(v: Verification, now: datetime | None = None) -> str:
    """approved | rejected | closed | expired | pending | retry | open"""
    now = now or timezone.now()
    order = v.order
    if v.status == V.APPROVED:
        return "approved"
    if v.status == V.REJECTED:
        return "rejected"
    if v.status == V.CANCELLED or order.status in (OS.CLOSED, OS.REFUNDING, OS.REFUNDED):
        return "closed"
    if v.status == V.EXPIRED or (v.status in OPEN and now >= v.expires_at):
        return "expired"
    if order.status != OS.AWAITING_KYC:
        return "closed"
    if v.status == V.PENDING:
        return "pending"
    if v.status == V.RETRY_REQUESTED:
        return "retry"
    return "open"


def page_mode() -> str:
    if sumsub_configured():
        return "sumsub"
    return "sandbox" if sandbox_active() else "unavailable"


def usable(v: Verification) -> None:
    state = page_state(v)
    if state not in USABLE:
        raise LinkUnusable(state)


def mark_opened(verification_id: int, *, mode: str) -> None:
    """The buyer started a session: logged once, and from now on a missing result is looked up at Sumsub."""
    with transaction.atomic():
        order, v = lock_pair(verification_id)
        if v.opened_at is not None:
            return
        now = timezone.now()
        v.opened_at = now
        if v.next_check_at is None and v.status in OPEN:
            v.next_check_at = now + check_interval()
        log_event.opened_event(v, mode=mode)
        schedule(v, order, now=now)
        v.save()


def session_start(v: Verification) -> str:
    """A WebSDK access token for the buyer's applicant at the verification's level (Sumsub calls happen
    here, outside any transaction). Raises LinkUnusable, KycError (no Sumsub), PlatformError."""
    usable(v)
    if not sumsub_configured():
        raise KycError("unavailable")
    client = SumsubClient()
    applicant = v.applicant
    if not applicant.applicant_id:
        applicant_id = client.create_applicant(external_user_id=applicant.external_user_id, level_name=v.level_name)
        KycApplicant.objects.filter(pk=applicant.pk, applicant_id="").update(applicant_id=applicant_id)
    remaining = int((v.expires_at - timezone.now()).total_seconds())
    token = client.sdk_access_token(external_user_id=applicant.external_user_id, level_name=v.level_name,
                                    ttl_seconds=max(60, min(SDK_TOKEN_TTL, remaining)))
    mark_opened(v.pk, mode="Sumsub")
    return token
