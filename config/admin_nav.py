"""The admin's navigation (django-unfold's sidebar), grouped by the staff's work rather than by Django app.

Each entry is shown only to staff who may view what it leads to (its model's view permission, or an admin for
the beat scheduler's tables and the operation log); labels are English msgids translated by the catalog."""

from __future__ import annotations

from django.apps import apps
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from common.admin_mixins import is_admin

# (group title, icon, [(model label or url name, icon, admin_only)])
GROUPS = [
    (_("Today's workbench"), [
        ("url:admin:index", _("Dashboard"), "dashboard"),
        ("url:admin-failures", _("Failures"), "error"),
    ]),
    (_("Orders"), [
        ("orders.Order", None, "receipt_long"),
        ("orders.OrderEvent", None, "history"),
        ("orders.OrderInboxEvent", None, "inbox"),
        ("orders.SandboxOrder", None, "science"),
        ("orders.SandboxCall", None, "call_made"),
    ]),
    (_("Shipping"), [
        ("shipping.ManualShipment", None, "pan_tool"),
        ("shipping.Shipment", None, "local_shipping"),
        ("shipping.DeliveryView", None, "visibility"),
    ]),
    (_("Products and card codes"), [
        ("orders.Product", None, "inventory_2"),
        ("shipping.CardCode", None, "key"),
        ("orders.StockMovement", None, "swap_vert"),
    ]),
    (_("KYC"), [
        ("kyc.Verification", None, "verified_user"),
        ("kyc.VerificationEvent", None, "history"),
        ("kyc.BuyerMessage", None, "chat"),
        ("kyc.KycPolicy", None, "policy"),
        ("kyc.KycApplicant", None, "badge"),
        ("kyc.SumsubInboxEvent", None, "inbox"),
    ]),
    (_("Merchant onboarding"), [
        ("payments.FacetofaceApplication", None, "storefront"),
        ("payments.Merchant", None, "store"),
        ("payments.Trade", None, "payments"),
        ("payments.Refund", None, "currency_exchange"),
        ("payments.AlipayCall", None, "call_made"),
        ("payments.AlipayInboxEvent", None, "inbox"),
    ]),
    (_("Notifications"), [
        ("notifications.Channel", None, "campaign"),
        ("notifications.Subscription", None, "notifications_active"),
        ("notifications.Template", None, "description"),
        ("notifications.Notification", None, "notifications"),
        ("notifications.Delivery", None, "send"),
    ]),
    (_("System"), [
        ("accounts.User", None, "person"),
        ("auth.Group", None, "group"),
        ("accounts.Shop", None, "store"),
        ("accounts.BuyerIdentity", None, "face"),
        ("admin.LogEntry", None, "manage_history"),
        ("common.RejectedWebhook", None, "block"),
        ("common.Heartbeat", None, "monitor_heart"),
        ("axes.AccessAttempt", None, "lock"),
        ("axes.AccessLog", None, "login"),
        ("axes.AccessFailureLog", None, "no_accounts"),
        ("django_celery_beat.PeriodicTask", None, "schedule"),
        ("django_celery_beat.IntervalSchedule", None, "timer"),
        ("django_celery_beat.CrontabSchedule", None, "calendar_month"),
        ("django_celery_beat.ClockedSchedule", None, "alarm"),
        ("django_celery_beat.SolarSchedule", None, "wb_sunny"),
    ]),
]

# Tables only administrators see (the beat scheduler's internals, the operation log of everyone's changes).
ADMIN_ONLY_APPS = {"django_celery_beat"}


def _model_entry(label: str, icon: str):
    model = apps.get_model(label)
    opts = model._meta

    def permission(request, opts=opts):
        if opts.app_label in ADMIN_ONLY_APPS and not is_admin(request.user):
            return False
        return request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}")

    return {"title": opts.verbose_name_plural, "icon": icon, "permission": permission,
            "link": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")}


def navigation(request) -> list[dict]:
    """UNFOLD["SIDEBAR"]["navigation"]: the groups, each with the entries this staff member may open."""
    from django.contrib import admin

    groups = []
    for title, entries in GROUPS:
        items = []
        for target, label, icon in entries:
            if target.startswith("url:"):
                items.append({"title": label, "icon": icon, "link": reverse(target[4:])})
                continue
            model = apps.get_model(target)
            if not admin.site.is_registered(model):
                continue
            entry = _model_entry(target, icon)
            if entry["permission"](request):
                items.append(entry)
        if items:
            groups.append({"title": title, "separator": True, "collapsible": bool(groups), "items": items})
    return groups
