"""Recording what Alipay says of a submitted application (alipay.open.agent.order.query): its status, the
merchant's confirmation link (stored, and sent to the merchant's contact once per link), the next query
(ALIPAY_POLL_INTERVAL_SECONDS, sooner after a failure), and the overdue flag — an application under review
ALIPAY_AUDIT_OVERDUE_HOURS after submitting is flagged and staff are notified once."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.locks import lock_one

from ..models import ALIPAY_ORDER_STATUS, POLLED, TRANSITIONS, ApplicationStatus, FacetofaceApplication, Merchant, Work
from .base import notify_event, retry_in

A = ApplicationStatus


def seconds(name: str) -> timedelta:
    return timedelta(seconds=getattr(settings, name))


def with_merchant():
    return FacetofaceApplication.objects.select_related("merchant")


def record_query(app, answer, error, now, *, count: bool = True) -> None:
    """Store one status query's outcome on the locked application and schedule the next one."""
    if count:
        app.query_count += 1
    app.last_query_at = now
    interval = seconds("ALIPAY_POLL_INTERVAL_SECONDS")
    if error is not None:
        app.failures += 1
        app.last_error = _("Query: %(e)s") % {"e": error}
        if not (error.retryable or error.outcome_unknown):
            app.needs_attention = True
            app.attention_reason = (_("Alipay refused the status query: %(e)s") % {"e": error})[:255]
            app.due_at = now + interval
        else:
            app.due_at = now + retry_in(app.failures, cap=interval)
        app.work_state = Work.WAITING
        check_overdue(app, now)
        return
    node = answer.node
    app.failures, app.last_error = 0, ""
    alipay_status = str(node.get("order_status") or "")
    app.alipay_status = alipay_status
    if node.get("order_no"):
        app.order_no = str(node["order_no"])
    pid = str(node.get("merchant_pid") or "")
    if pid and app.merchant.alipay_user_id != pid:
        Merchant.objects.filter(pk=app.merchant_id).update(alipay_user_id=pid, updated_at=now)
        app.merchant.alipay_user_id = pid
    target = ALIPAY_ORDER_STATUS.get(alipay_status)
    if target is None:
        app.needs_attention = True
        app.attention_reason = (_("Unknown Alipay order status %(s)s") % {"s": alipay_status or "—"})[:255]
    elif target != app.status:
        _move(app, target, node, now)
    elif target == A.AWAITING_CONFIRMATION:
        _confirmation_link(app, node)
    if app.status in POLLED:
        app.work_state, app.due_at = Work.WAITING, now + interval
    else:
        app.work_state, app.due_at = Work.IDLE, None
    check_overdue(app, now)


def _move(app: FacetofaceApplication, target: str, node: dict, now: datetime) -> None:
    old = app.get_status_display()
    getattr(app, TRANSITIONS[target])()
    note = ""
    if target == A.AWAITING_CONFIRMATION:
        note = _confirmation_link(app, node)
    elif target == A.SUCCESS:
        app.finished_at, app.needs_attention, app.attention_reason = now, False, ""
    elif target in (A.CLOSED, A.HELD):
        app.reject_reason = str(node.get("reject_reason") or "") or json.dumps(
            node.get("restrict_infos") or [], ensure_ascii=False)[:2000]
        note = app.reject_reason
        if target == A.CLOSED:
            app.finished_at = now
        else:
            app.needs_attention = True
            app.attention_reason = _("Alipay holds the application: fix it and submit again.")
    elif target == A.TIMED_OUT:
        app.finished_at = now
        note = _("The merchant did not confirm within 15 days.")
    status_notice(app, old, note)


def _confirmation_link(app: FacetofaceApplication, node: dict) -> str:
    """Store the merchant's confirmation link and send it to the merchant's contact once per link."""
    url = str(node.get("confirm_url") or "")
    if not url:
        return ""
    app.confirm_url = url
    if url != app.confirm_sent_url:
        m = app.merchant
        if m.contact_address:
            notify_event("merchant.confirm_requested", recipient=m.contact_address, merchant=m.name,
                         shop_name=app.shop_name, url=url, application=app.pk)
        else:
            app.needs_attention = True
            app.attention_reason = _("The merchant has no contact mobile or e-mail: send the link yourself.")
        app.confirm_sent_url = url
    return _("Confirmation link: %(url)s") % {"url": url}


def status_notice(app: FacetofaceApplication, old: str, note: str = "") -> None:
    notify_event("merchant.status_changed", merchant=app.merchant.name, shop_name=app.shop_name,
                 application=app.pk, old_status=str(old), new_status=str(app.get_status_display()),
                 note=str(note or "")[:500])


def check_overdue(app: FacetofaceApplication, now: datetime) -> bool:
    """Flag an application still under review past ALIPAY_AUDIT_OVERDUE_HOURS and notify staff once."""
    limit = timedelta(hours=settings.ALIPAY_AUDIT_OVERDUE_HOURS)
    if (app.status not in (A.SUBMITTED, A.AUDITING) or app.submitted_at is None or app.overdue_notified_at
            or now - app.submitted_at <= limit):
        return False
    app.needs_attention, app.overdue_notified_at = True, now
    days = round((now - app.submitted_at).total_seconds() / 86400, 1)
    app.attention_reason = (_("Under review for %(days)s days") % {"days": days})[:255]
    notify_event("merchant.audit_overdue", merchant=app.merchant.name, shop_name=app.shop_name,
                 application=app.pk, days=days, order_no=app.order_no)
    return True


def applications_flag_overdue(*, now: datetime | None = None, limit: int = 200) -> int:
    """The sweeper's check between polls (an overdue review is noticed within a minute, not at the next
    4-hourly query). Each application is flagged and notified once."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.ALIPAY_AUDIT_OVERDUE_HOURS)
    ids = list(FacetofaceApplication.objects.filter(
        status__in=[A.SUBMITTED, A.AUDITING], submitted_at__lt=cutoff, overdue_notified_at__isnull=True)
        .values_list("pk", flat=True)[:limit])
    flagged = 0
    for pk in ids:
        with transaction.atomic():
            app = lock_one(with_merchant(), pk=pk, skip_locked=True)
            if app is not None and check_overdue(app, now):
                app.save(update_fields=["needs_attention", "overdue_notified_at", "attention_reason", "updated_at"])
                flagged += 1
    return flagged
