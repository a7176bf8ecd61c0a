"""Merchants' app authorisation tokens: stored encrypted when Alipay grants them (a confirm answer that
carries them, the `open_app_auth_notify` notice, or an authorisation code staff exchange), and refreshed
ALIPAY_TOKEN_REFRESH_BEFORE_HOURS before they expire (due work on `token_state` / `token_refresh_at`).

A refresh whose outcome is unknown may have consumed the refresh token: it is retried, and if Alipay then
refuses the old refresh token the merchant is marked `expired` and staff are told to authorise again."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.due import DueWork
from common.http import ConfigurationError, PlatformError
from common.inbox import Ignored
from common.locks import lock_one

from ..models import POLLED, ApplicationStatus, FacetofaceApplication, Merchant, TokenState, Work
from . import calls
from .base import LEASE, PaymentsError, clean_text, notify_event, retry_in

log = logging.getLogger(__name__)
TOKEN_WORK = DueWork(Merchant, waiting=(TokenState.ACTIVE,), busy=TokenState.REFRESHING, status_field="token_state",
                     due_field="token_refresh_at", lease_field="token_lease_until",
                     attempts_field="token_refresh_attempts", lease=LEASE)


def _refresh_due(m: Merchant, now: datetime) -> datetime | None:
    if not m.app_refresh_token or m.token_expires_at is None:
        return None
    return max(now, m.token_expires_at - timedelta(hours=settings.ALIPAY_TOKEN_REFRESH_BEFORE_HOURS))


def merchant_upsert(*, name: str, alipay_account: str, contact_name: str, contact_mobile: str = "",
                    contact_email: str = "") -> Merchant:
    """Create the merchant with this Alipay account, or update its name and contact (validated)."""
    merchant = Merchant.objects.filter(alipay_account=alipay_account).first() or Merchant(alipay_account=alipay_account)
    merchant.name, merchant.contact_name = name, contact_name
    merchant.contact_mobile, merchant.contact_email = contact_mobile, contact_email
    merchant.full_clean()
    merchant.save()
    return merchant


def merchant_store_tokens(*, merchant: Merchant, node: dict, now: datetime | None = None) -> Merchant:
    """Store a grant (`app_auth_token`, `app_refresh_token`, `expires_in`, `re_expires_in`, `user_id`,
    `auth_app_id`) on the merchant (caller's transaction, merchant row locked or new)."""
    now = now or timezone.now()
    token = str(node.get("app_auth_token") or "")
    if not token:
        raise PaymentsError(_("Alipay's answer carries no app_auth_token."))

    def seconds(key: str) -> int:
        try:
            return max(0, int(node.get(key) or 0))
        except (TypeError, ValueError):
            return 0

    merchant.app_auth_token = token
    merchant.app_refresh_token = str(node.get("app_refresh_token") or "")
    merchant.token_expires_at = now + timedelta(seconds=seconds("expires_in")) if seconds("expires_in") else None
    merchant.refresh_expires_at = (now + timedelta(seconds=seconds("re_expires_in"))
                                   if seconds("re_expires_in") else None)
    merchant.alipay_user_id = str(node.get("user_id") or merchant.alipay_user_id)[:32]
    merchant.auth_app_id = str(node.get("auth_app_id") or merchant.auth_app_id)[:32]
    merchant.token_state, merchant.token_error, merchant.token_lease_until = TokenState.ACTIVE, "", None
    merchant.token_refresh_at = _refresh_due(merchant, now)
    merchant.save()
    return merchant


def merchant_refresh_token(*, merchant_id: int, now: datetime | None = None, force: bool = False) -> str:
    """Refresh one merchant's token (the refresh task; `force` for staff). Returns the token state."""
    now = now or timezone.now()
    claim = TOKEN_WORK.claim(merchant_id, now=now, force=force)
    if claim is None:
        return Merchant.objects.filter(pk=merchant_id).values_list("token_state", flat=True).first() or "missing"
    m = claim.row
    attempt = m.token_refresh_attempts
    error, answer = None, None
    if not m.app_refresh_token:
        error = ConfigurationError(_("No refresh token: authorise again."))
    else:
        try:
            answer = calls.call("alipay.open.auth.token.app", lambda c: c.auth_token(refresh_token=m.app_refresh_token),
                                request={"grant_type": "refresh_token"}, merchant=m)
        except PlatformError as exc:
            error = exc
    with transaction.atomic():
        m = lock_one(Merchant.objects.all(), pk=merchant_id)
        if m.token_state != TokenState.REFRESHING or m.token_refresh_attempts != attempt:
            return m.token_state
        if error is None:
            merchant_store_tokens(merchant=m, node=answer.node, now=now)
            return m.token_state
        m.token_error = str(error)[:4000]
        if error.retryable or error.outcome_unknown:
            m.token_state, m.token_lease_until = TokenState.ACTIVE, None
            m.token_refresh_at = now + retry_in(attempt, cap=timedelta(hours=6))
        else:
            m.token_state, m.token_refresh_at, m.token_lease_until = TokenState.EXPIRED, None, None
            notify_event("merchant.status_changed", merchant=m.name, old_status=str(TokenState.ACTIVE.label),
                         new_status=str(TokenState.EXPIRED.label),
                         note=_("The authorisation token could not be refreshed (%(e)s): the merchant must "
                                "authorise again.") % {"e": error})
        m.save()
        return m.token_state


def merchant_exchange_code(*, merchant_id: int, code: str, now: datetime | None = None) -> Merchant:
    """Staff: exchange an app_auth_code (from the authorisation page's redirect) for the merchant's tokens."""
    code = clean_text(code, field=_("Authorisation code"), max_length=128)
    merchant = Merchant.objects.get(pk=merchant_id)
    try:
        answer = calls.call("alipay.open.auth.token.app", lambda c: c.auth_token(code=code),
                            request={"grant_type": "authorization_code"}, merchant=merchant)
    except PlatformError as exc:
        raise PaymentsError(_("Alipay refused the code: %(e)s") % {"e": exc}) from exc
    with transaction.atomic():
        m = lock_one(Merchant.objects.all(), pk=merchant_id)
        user_id = str(answer.node.get("user_id") or "")
        if m.alipay_user_id and user_id and user_id != m.alipay_user_id:
            raise PaymentsError(_("This code authorises Alipay user %(got)s, not this merchant (%(want)s).")
                                % {"got": user_id, "want": m.alipay_user_id})
        return merchant_store_tokens(merchant=m, node=answer.node, now=now)


def merchant_app_auth_notice(params: dict[str, str], *, event=None, now: datetime | None = None) -> str:
    """Handler of `open_app_auth_notify`: the merchant authorised our app (after confirming a
    sign-and-authorise application). Matched by the merchant's Alipay user id; if no merchant has it yet
    (our next query learns it), the submitted applications are queried now and the event is retried. Once the
    tokens are stored (encrypted) on the merchant, the stored notice keeps them masked only."""
    try:
        detail = json.loads(params.get("biz_content") or "{}").get("detail") or {}
    except (ValueError, AttributeError) as exc:
        raise PaymentsError("open_app_auth_notify: biz_content is not a JSON object") from exc
    user_id = str(detail.get("user_id") or "")
    if detail.get("app_auth_token") == calls.REDACTED:
        raise Ignored("already applied: the stored notice keeps the tokens masked")
    if not user_id or not detail.get("app_auth_token"):
        raise PaymentsError("open_app_auth_notify: no user_id or app_auth_token")
    if not Merchant.objects.filter(alipay_user_id=user_id).exists():
        FacetofaceApplication.objects.filter(status__in=POLLED, work_state=Work.WAITING).update(
            due_at=now or timezone.now())
        raise PaymentsError(f"no merchant with Alipay user id {user_id} yet: applications queried, retry later")
    with transaction.atomic():
        m = lock_one(Merchant.objects.all(), alipay_user_id=user_id)
        merchant_store_tokens(merchant=m, node=detail, now=now)
        ok = m.applications.filter(status=ApplicationStatus.SUCCESS).exists()
        if event is not None:
            biz = json.loads(params["biz_content"])
            biz["detail"] = calls.redacted(detail)
            masked = {**params, "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":"))}
            type(event).objects.filter(pk=event.pk).update(body=urlencode(masked))
    return f"merchant {m.pk} authorised{'' if ok else ' (no onboarded application yet)'}"


def merchants_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    return TOKEN_WORK.due_ids(now=now, limit=limit)
