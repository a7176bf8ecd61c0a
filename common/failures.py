"""Failures in one place (admin page /admin/failures/): failed inbox events, failed and stuck shipments, failed
notifications, order anomalies — each with how many, the latest few with what each failure said, a link to the
full filtered list, and retry / replay buttons.

A button runs the list page's own admin action on one row or on the rows shown (`ModelAdmin.get_actions`, so
the same permissions and the same service calls): this page adds no business rule of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .dashboard import changelist

ROWS = 10


@dataclass
class Row:
    pk: object
    when: object
    what: str
    error: str
    link: str


@dataclass
class Block:
    key: str
    title: str
    count: int
    link: str
    label: str  # app_label.model_name the buttons act on
    action: str = ""  # the admin action behind the retry buttons ("" if none, or not permitted)
    action_label: str = ""
    rows: list[Row] = field(default_factory=list)


def _admin_of(label: str):
    model = apps.get_model(label)
    return model, admin.site._registry.get(model)


def _action(request, label: str, names: tuple[str, ...]) -> tuple[str, str]:
    """The first of `names` this staff member may run on `label`'s list, and its label."""
    _model, model_admin = _admin_of(label)
    if model_admin is None:
        return "", ""
    actions = model_admin.get_actions(request)
    for name in names:
        if name in actions:
            return name, str(actions[name][2])
    return "", ""


def _change_link(label: str, pk) -> str:
    app_label, model_name = label.split(".")
    return reverse(f"admin:{app_label}_{model_name}_change", args=[pk])


def _can(request, label: str) -> bool:
    app_label, model_name = label.split(".")
    return request.user.has_perm(f"{app_label}.view_{model_name}")


def inbox_blocks(request) -> list[Block]:
    from .inbox import INBOX_MODELS
    from .models import InboxEvent

    blocks = []
    for model in INBOX_MODELS:
        opts = model._meta
        label = f"{opts.app_label}.{opts.model_name}"
        if not _can(request, label):
            continue
        failed = model.objects.filter(status=InboxEvent.Status.FAILED)
        action, action_label = _action(request, label, ("replay_selected",))
        block = Block(f"inbox_{opts.model_name}", str(opts.verbose_name_plural), failed.count(),
                      changelist(label, status__exact=InboxEvent.Status.FAILED), label, action, action_label)
        for e in failed.order_by("-received_at")[:ROWS]:
            block.rows.append(Row(e.pk, e.received_at, f"{e.topic or e.source} · {e.key}",
                                  (e.last_error or e.result or "")[:300], _change_link(label, e.pk)))
        blocks.append(block)
    return blocks


def shipment_blocks(request) -> list[Block]:
    from shipping.models import Shipment, ShipmentStatus

    label = "shipping.shipment"
    if not _can(request, label):
        return []
    counts = dict(Shipment.objects.filter(status__in=[ShipmentStatus.FAILED, ShipmentStatus.AWAITING_STAFF])
                  .values_list("status").annotate(n=Count("id")).order_by())
    action, action_label = _action(request, label, ("ship_now", "retry_now", "retry"))
    blocks = []
    for status, title in ((ShipmentStatus.FAILED, gettext_lazy("Failed shipments")),
                          (ShipmentStatus.AWAITING_STAFF, gettext_lazy("Shipments waiting for staff"))):
        block = Block(f"shipments_{status}", str(title), counts.get(status, 0),
                      changelist(label, status__exact=status), label,
                      action if status == ShipmentStatus.FAILED else "", action_label)
        rows = (Shipment.objects.filter(status=status).select_related("order")
                .only("pk", "updated_at", "last_error", "manual_reason", "order__platform_order_id")
                .order_by("-updated_at")[:ROWS])
        for s in rows:
            block.rows.append(Row(s.pk, s.updated_at, s.order.platform_order_id,
                                  (s.last_error or s.manual_reason or "")[:300], _change_link(label, s.pk)))
        blocks.append(block)
    return blocks


def delivery_block(request) -> list[Block]:
    from notifications.models import Delivery

    label = "notifications.delivery"
    if not _can(request, label):
        return []
    failed = Delivery.objects.filter(status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN])
    action, action_label = _action(request, label, ("retry_now",))
    block = Block("deliveries", _("Failed notifications"), failed.count(),
                  changelist(label, status__exact=Delivery.Status.FAILED), label, action, action_label)
    for d in failed.select_related("channel", "notification").order_by("-updated_at")[:ROWS]:
        block.rows.append(Row(d.pk, d.updated_at, f"{d.notification.get_event_display()} → {d.channel.name}",
                              d.last_error[:300], _change_link(label, d.pk)))
    return [block]


def anomaly_block(request) -> list[Block]:
    from orders.models import Order, OrderEvent

    label = "orders.order"
    if not _can(request, label):
        return []
    anomalies = Order.objects.filter(has_anomaly=True)
    block = Block("anomalies", _("Orders with an anomaly"), anomalies.count(),
                  changelist(label, has_anomaly__exact=1), label)
    orders = list(anomalies.order_by("-updated_at").only("pk", "platform_order_id", "updated_at")[:ROWS])
    said = {}
    if orders:
        events = (OrderEvent.objects.filter(order__in=[o.pk for o in orders], kind=OrderEvent.Kind.ANOMALY)
                  .order_by("-created_at").values_list("order_id", "message")[:ROWS * 10])
        for order_id, message in events:
            said.setdefault(order_id, message)
    for o in orders:
        block.rows.append(Row(o.pk, o.updated_at, o.platform_order_id, said.get(o.pk, ""), _change_link(label, o.pk)))
    return [block]


def failure_blocks(request) -> list[Block]:
    return [*inbox_blocks(request), *shipment_blocks(request), *delivery_block(request), *anomaly_block(request)]


def failures_view(request):
    """GET: the page. POST: run a block's retry action on one row (`pk`) or on the rows shown (`pks`)."""
    if request.method == "POST":
        label = request.POST.get("label", "")
        name = request.POST.get("action", "")
        try:
            model, model_admin = _admin_of(label)
        except (LookupError, ValueError):
            raise PermissionDenied from None
        actions = model_admin.get_actions(request) if model_admin else {}
        if name not in actions:
            raise PermissionDenied
        pks = request.POST.getlist("pk")
        queryset = model_admin.get_queryset(request).filter(pk__in=pks[:1000])
        if not queryset.exists():
            messages.warning(request, _("Nothing to do: the rows are gone."))
        else:
            func = actions[name][0]
            func(model_admin, request, queryset)
        return HttpResponseRedirect(request.path)
    context = {
        **admin.site.each_context(request),
        "title": _("Failures"),
        "blocks": failure_blocks(request),
    }
    return TemplateResponse(request, "admin/failures.html", context)
