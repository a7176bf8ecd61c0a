"""The admin's dashboard (今日工作台): today's work in figures, each linking to the filtered list behind it.

Every figure is an aggregate query on indexed columns (COUNT/SUM over a status index or a bounded time range of
`created_at`), never rows loaded into Python, so the page costs the same number of queries at ten orders and at a
million. The 30-day chart and the auto-ship rate read closed days from `DailyOrderStats` and count only today
live (common.stats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from .admin_mixins import is_admin

CHART_DAYS = 30
RATE_DAYS = 7


@dataclass
class Figure:
    key: str
    title: str
    value: object
    link: str = ""
    note: str = ""
    alarm: bool = False  # shown in red: something waits for staff


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)


def changelist(label: str, **params) -> str:
    """The admin list of `app_label.model_name`, filtered by plain field lookups."""
    app_label, model_name = label.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def today_start():
    """Midnight today in the site's time zone (Asia/Shanghai)."""
    return timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)


def _can(request, label: str) -> bool:
    app_label, model_name = label.split(".")
    return request.user.has_perm(f"{app_label}.view_{model_name}")


# --- the sections ----------------------------------------------------------------------------------------------

def orders_section(request, days) -> Section | None:
    from orders.models import Order
    from shipping.models import Shipment, ShipmentStatus

    if days is None:
        return None
    start = today_start()
    today = Order.objects.filter(created_at__gte=start).aggregate(n=Count("id"), amount=Sum("amount"))
    section = Section(_("Today"))
    since = start.isoformat()
    section.figures.append(Figure("orders_today", _("Orders today"), today["n"],
                                  changelist("orders.order", created_at__gte=since)))
    section.figures.append(Figure("amount_today", _("Amount today (yuan)"),
                                  number_format(today["amount"] or Decimal("0.00"), 2, force_grouping=True),
                                  changelist("orders.order", created_at__gte=since)))
    anomalies = Order.objects.filter(has_anomaly=True).count()
    section.figures.append(Figure("order_anomalies", _("Orders with an anomaly"), anomalies,
                                  changelist("orders.order", has_anomaly__exact=1), alarm=anomalies > 0))
    if _can(request, "shipping.shipment"):
        counts = dict(Shipment.objects.filter(status__in=[ShipmentStatus.AWAITING_STAFF, ShipmentStatus.FAILED])
                      .values_list("status").annotate(n=Count("id")).order_by())
        waiting = counts.get(ShipmentStatus.AWAITING_STAFF, 0)
        failed = counts.get(ShipmentStatus.FAILED, 0)
        section.figures.append(Figure("awaiting_manual", _("Awaiting manual shipment"), waiting,
                                      changelist("shipping.shipment", status__exact=ShipmentStatus.AWAITING_STAFF),
                                      alarm=waiting > 0))
        section.figures.append(Figure("delivery_failed", _("Deliveries that failed to reach the buyer"), failed,
                                      changelist("shipping.shipment", status__exact=ShipmentStatus.FAILED),
                                      alarm=failed > 0))
        # Auto-ship outcome of the shipments due in the last 7 days (closed days kept, today live: common.stats).
        recent = days[-RATE_DAYS:]
        ok = sum(d.auto_shipped for d in recent)
        tried = ok + sum(d.ship_failed for d in recent)
        since7 = start - timedelta(days=RATE_DAYS - 1)
        section.figures.append(Figure(
            "autoship_rate", _("Auto-ship success, last 7 days"), f"{ok * 100 / tried:.1f}%" if tried else "—",
            changelist("shipping.shipment", due_at__gte=since7.isoformat()),
            note=_("%(ok)d shipped automatically of %(tried)d") % {"ok": ok, "tried": tried},
            alarm=bool(tried) and ok < tried))
    return section


def kyc_section(request) -> Section | None:
    from kyc.models import Verification
    from kyc.models import VerificationStatus as V

    if not _can(request, "kyc.verification"):
        return None
    since = today_start() - timedelta(days=CHART_DAYS - 1)
    counts = dict(Verification.objects.filter(created_at__gte=since).values_list("status")
                  .annotate(n=Count("id")).order_by())
    section = Section(_("KYC, last 30 days"))
    day = since.isoformat()
    sent = sum(counts.values()) - counts.get(V.CREATED, 0)
    section.figures.append(Figure("kyc_sent", _("Links sent"), sent,
                                  changelist("kyc.verification", created_at__gte=day)))
    submitted = sum(counts.get(s, 0) for s in (V.PENDING, V.APPROVED, V.REJECTED, V.RETRY_REQUESTED))
    section.figures.append(Figure("kyc_submitted", _("Submitted"), submitted,
                                  changelist("kyc.verification", created_at__gte=day, status__exact=V.PENDING),
                                  note=_("%(n)d under review") % {"n": counts.get(V.PENDING, 0)}))
    section.figures.append(Figure("kyc_approved", _("Approved"), counts.get(V.APPROVED, 0),
                                  changelist("kyc.verification", created_at__gte=day, status__exact=V.APPROVED)))
    section.figures.append(Figure("kyc_rejected", _("Rejected"), counts.get(V.REJECTED, 0),
                                  changelist("kyc.verification", created_at__gte=day, status__exact=V.REJECTED)))
    staff = Verification.objects.filter(needs_staff=True).count()
    section.figures.append(Figure("kyc_needs_staff", _("Verifications needing staff"), staff,
                                  changelist("kyc.verification", needs_staff__exact=1), alarm=staff > 0))
    return section


def onboarding_section(request) -> Section | None:
    from payments.models import ApplicationStatus, FacetofaceApplication

    if not _can(request, "payments.facetofaceapplication"):
        return None
    rows = FacetofaceApplication.objects.values_list("status").annotate(n=Count("id")).order_by()
    counts = dict(rows)
    attention = FacetofaceApplication.objects.filter(needs_attention=True).count()
    section = Section(_("Merchant onboarding"))
    section.figures.append(Figure("onboarding_attention", _("Applications needing attention"), attention,
                                  changelist("payments.facetofaceapplication", attention="yes"),
                                  alarm=attention > 0))
    for status, label in ApplicationStatus.choices:
        if counts.get(status):
            section.figures.append(Figure(f"onboarding_{status}", str(label), counts[status],
                                          changelist("payments.facetofaceapplication", status__exact=status)))
    return section


def system_section(request) -> Section | None:
    from notifications.models import Channel, Delivery

    from .health import STALE_AFTER
    from .inbox import INBOX_MODELS
    from .models import Heartbeat, InboxEvent

    section = Section(_("Notifications and the system"))
    if _can(request, "notifications.delivery"):
        failed = Delivery.objects.filter(status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN]).count()
        section.figures.append(Figure("notifications_failed", _("Failed notifications"), failed,
                                      changelist("notifications.delivery", status__exact=Delivery.Status.FAILED),
                                      alarm=failed > 0))
    if not Channel.objects.filter(enabled=True).exists():
        link = changelist("notifications.channel") if _can(request, "notifications.channel") else ""
        section.figures.append(Figure("no_channel", _("Notification channels"), _("None set up"), link,
                                      note=_("Notifications reach nobody until a channel is enabled."),
                                      alarm=True))
    now = timezone.now()
    backlog_since = now - timedelta(minutes=5)
    S = InboxEvent.Status
    for model in INBOX_MODELS:
        opts = model._meta
        label = f"{opts.app_label}.{opts.model_name}"
        if not _can(request, label):
            continue
        c = model.objects.filter(status__in=[S.PENDING, S.PROCESSING, S.FAILED]).aggregate(
            backlog=Count("id", filter=Q(status__in=[S.PENDING, S.PROCESSING], received_at__lt=backlog_since)),
            failed=Count("id", filter=Q(status=S.FAILED)))
        section.figures.append(Figure(
            f"inbox_{opts.model_name}", str(opts.verbose_name_plural), c["failed"],
            changelist(label, status__exact=S.FAILED),
            note=_("failed; %(n)d waiting over 5 minutes") % {"n": c["backlog"]},
            alarm=bool(c["failed"] or c["backlog"])))
    seen = dict(Heartbeat.objects.filter(name__in=["worker", "beat"]).values_list("name", "seen_at"))
    try:
        from django_celery_beat.models import PeriodicTask

        beat = (PeriodicTask.objects.filter(task="common.tasks.heartbeat")
                .values_list("last_run_at", flat=True).first())
    except Exception:  # the scheduler's tables are missing (not migrated)
        beat = None
    for key, title, at in (("worker", _("Worker last seen"), seen.get("worker")),
                           ("beat", _("Beat last ran"), beat or seen.get("beat"))):
        fresh = bool(at and now - at < STALE_AFTER)
        shown = date_format(timezone.localtime(at), "SHORT_DATETIME_FORMAT") if at else _("never")
        link = changelist("common.heartbeat") if request.user.has_perm("common.view_heartbeat") else ""
        section.figures.append(Figure(key, title, shown, link, note=_("running") if fresh else _("not running"),
                                      alarm=not fresh))
    return section


def order_chart(days) -> dict | None:
    """Orders and amount per day over the last 30 days (Chart.js data, as unfold's chart component takes it)."""
    if days is None:
        return None
    labels = [date_format(d.day, "m-d") for d in days]
    return {
        "orders": json.dumps({"labels": labels, "datasets": [
            {"label": _("Orders"), "data": [d.orders for d in days],
             "backgroundColor": "var(--color-primary-600)"}]}),
        "amount": json.dumps({"labels": labels, "datasets": [
            {"label": _("Amount (yuan)"), "data": [float(d.amount) for d in days],
             "borderColor": "var(--color-primary-600)"}]}),
        "total_orders": sum(d.orders for d in days),
        "total_amount": number_format(sum((d.amount for d in days), Decimal("0.00")), 2, force_grouping=True),
    }


def dashboard(request) -> dict:
    from .stats import daily_stats

    days = daily_stats(CHART_DAYS) if _can(request, "orders.order") else None
    sections = [s for s in (orders_section(request, days), kyc_section(request), onboarding_section(request),
                            system_section(request)) if s and s.figures]
    return {"dashboard_sections": sections, "dashboard_chart": order_chart(days),
            "failures_url": reverse("admin-failures"), "is_admin": is_admin(request.user)}


def dashboard_callback(request, context: dict) -> dict:
    """UNFOLD["DASHBOARD_CALLBACK"]: the index page's figures."""
    context.update(dashboard(request))
    return context
