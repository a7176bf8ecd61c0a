"""Shipping in the admin: every shipment, the staff's manual queue (ship one with a form, or several at
once), and card-code pools with import. Codes, delivery content and delivery links (which open the
content) are masked for staff without `accounts.view_pii`, through common.admin_mixins.PIIMaskMixin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter
from unfold.decorators import action

from common.admin_mixins import PIIMaskMixin
from orders.admin_lists import BigListMixin, DayRangeFilter, ViewOnlyFormMixin
from orders.resources import SHIPMENT_COLUMNS, export_view

from .forms import BulkShipForm, CardCodeImportForm, ManualShipForm
from .models import MANUAL_QUEUE, CardCode, DeliveryView, Handover, ManualShipment, Shipment, ShipmentStatus
from .services import ShippingError, cardcode_import, cardcode_void, shipment_ship_manual, shipment_ship_now


class DeliveryViewInline(PIIMaskMixin, TabularInline):
    hide_title = True  # no "<pk>: <str>" line above each row
    model = DeliveryView
    extra = 0
    can_delete = False
    pii_fields = ("ip",)
    fields = ["viewed_at", "ip", "user_agent"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class HandoverInline(PIIMaskMixin, TabularInline):
    """Proof of delivery: how and where the content went, and the answer (destination masked: no PII)."""
    hide_title = True  # no "<pk>: <str>" line above each row

    model = Handover
    extra = 0
    can_delete = False
    pii_fields = ("answer",)
    fields = ["created_at", "attempt", "channel", "carried", "destination_hint", "status", "answer", "finished_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


SHIPMENT_COLORS = {
    ShipmentStatus.SCHEDULED: "#337ab7", ShipmentStatus.SENDING: "#e67e22", ShipmentStatus.RETRY_WAIT: "#d35400",
    ShipmentStatus.SHIPPED: "#27ae60", ShipmentStatus.FAILED: "#c0392b", ShipmentStatus.CANCELLED: "#7f8c8d",
    ShipmentStatus.AWAITING_STAFF: "#8e44ad",
}


class BaseShipmentAdmin(BigListMixin, PIIMaskMixin, ModelAdmin):
    list_display = ["order_link", "item", "quantity", "status_badge", "due_at", "attempts", "method", "shipped_at",
                    "reason"]
    list_filter = [("status", ChoicesDropdownFilter), "method", ("due_at", DayRangeFilter),
                   ("order__shop", RelatedDropdownFilter)]
    # Exact order number (an index on orders, joined by the shipment's unique order_id) or waybill number.
    search_fields = ["=order__platform_order_id", "=waybill_no"]
    search_help_text = _("Order number or waybill number (exact)")
    list_select_related = ["order", "order__shop"]
    actions_row = ["ship_now_row", "ship_form_row"]
    actions_list = ["export_csv"]
    inlines = [HandoverInline, DeliveryViewInline]
    fields = ["order", "status", "due_at", "attempts", "needs_reconcile", "cancel_requested", "manual_reason",
              "last_error", "delivery_way", "pool_uploaded_at", "content_handed_at", "status_sent_at",
              "logistics_company", "express_code", "waybill_no", "content", "delivery_url",
              "stock_taken", "method", "shipped_by", "sent_at", "shipped_at", "created_at", "updated_at"]
    readonly_fields = fields
    pii_fields = ("content", "delivery_url")
    sensitive_labels = {"delivery_url": _("提货链接")}
    actions = ["ship_manually", "ship_now"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        # Case-sensitive equality on indexed columns (the admin's "=" is iexact: UPPER(column), no index).
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(order__platform_order_id=term) | Q(waybill_no=term)), False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Every field is read-only: a view page without save buttons (staff act through the actions).
        extra = {"show_save": False, "show_save_and_continue": False,
                 "title": _("Shipment #%(pk)s") % {"pk": object_id} if object_id else None, **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra)

    @admin.display(description=_("状态"), ordering="status")
    def status_badge(self, obj):
        return format_html('<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;'
                           'white-space:nowrap">{}</span>', SHIPMENT_COLORS.get(obj.status, "#999999"),
                           obj.get_status_display())

    @action(description=_("Export CSV"), url_path="export-csv", permissions=["view"], icon="download")
    def export_csv(self, request):
        """Shipments due in a date range, streamed (no delivery content: it stays masked in the admin)."""
        return export_view(self, request, queryset=self.get_queryset(request).select_related("order", "order__shop"),
                           date_field="due_at", columns=SHIPMENT_COLUMNS, name="shipments")

    @action(description=_("Ship now"), url_path="ship-now", permissions=["change"])
    def ship_now_row(self, request, object_id):
        """Row action: a scheduled or retrying shipment is made due now (confirmation page, then POST)."""
        shipment = get_object_or_404(Shipment.objects.select_related("order"), pk=object_id)
        if request.method == "POST":
            n = shipment_ship_now(shipments=[shipment])
            if n:
                self.message_user(request, _("Order %(no)s will ship now.") % {"no": shipment.order.platform_order_id},
                                  messages.SUCCESS)
            else:
                self.message_user(request, _("Only a scheduled or retrying shipment can ship now; use the manual "
                                             "shipping form for the others."), messages.WARNING)
            return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"))
        return render(request, "admin/orders/confirm.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Ship now"),
            "question": _("Ship order %(no)s now, without waiting for the rest of its delay (or retry it now)?")
            % {"no": shipment.order.platform_order_id}, "submit": _("Ship now")})

    @action(description=_("Ship by hand"), url_path="ship-form", permissions=["change"])
    def ship_form_row(self, request, object_id):
        return HttpResponseRedirect(reverse("admin:shipping_manualshipment_ship", args=[object_id]))

    @admin.display(description=_("订单"), ordering="order__platform_order_id")
    def order_link(self, obj):
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.platform_order_id)

    @admin.display(description=_("商品"))
    def item(self, obj):
        title = obj.order.item_title or obj.order.item_id
        return format_html('<span title="{}" style="white-space:nowrap">{}</span>', title, Truncator(title).chars(12))

    @admin.display(description=_("数量"))
    def quantity(self, obj):
        return obj.order.quantity

    @admin.display(description=_("原因 / 错误"))
    def reason(self, obj):
        text = obj.manual_reason or obj.last_error
        return format_html('<span title="{}">{}</span>', text, Truncator(text).chars(24)) if text else ""

    def render_clear(self, name, value, *, obj, brief):
        if name == "delivery_url":
            return format_html('<a href="{0}" target="_blank" rel="noreferrer">{0}</a>', value)
        return super().render_clear(name, value, obj=obj, brief=brief)

    def get_urls(self):
        info = self.model._meta.app_label, self.model._meta.model_name
        return [path("<int:pk>/ship/", self.admin_site.admin_view(self.ship_view), name=f"{info[0]}_{info[1]}_ship"),
                *super().get_urls()]

    def _require_ship_permission(self, request):
        if not request.user.has_perm("shipping.change_shipment"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied

    def ship_view(self, request, pk: int):
        """Ship one shipment by hand: logistics company, express code, waybill (or content)."""
        self._require_ship_permission(request)
        shipment = get_object_or_404(Shipment.objects.select_related("order", "order__product"), pk=pk)
        initial = {"logistics_company": shipment.logistics_company, "express_code": shipment.express_code,
                   "waybill_no": shipment.waybill_no}
        form = ManualShipForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                result = shipment_ship_manual(shipment=shipment, user=request.user, **form.cleaned_data)
            except ShippingError as exc:
                messages.error(request, str(exc))
            else:
                if result.status == ShipmentStatus.SHIPPED:
                    messages.success(request, _("订单 %(no)s 已发货") % {"no": shipment.order.platform_order_id})
                    return HttpResponseRedirect(reverse("admin:shipping_manualshipment_changelist"))
                messages.error(request, _("发货未成功：%(err)s") % {"err": result.last_error or result.manual_reason})
        return render(request, "admin/shipping/ship_form.html", {
            **self.admin_site.each_context(request), "title": _("人工发货"), "form": form, "shipment": shipment,
            "opts": self.model._meta})

    @admin.action(description=_("人工发货（填写物流与运单号）"), permissions=["change"])
    def ship_manually(self, request, queryset):
        shipments = list(queryset.select_related("order", "order__product").filter(
            status__in=[*MANUAL_QUEUE, ShipmentStatus.SCHEDULED, ShipmentStatus.RETRY_WAIT]).order_by("pk"))
        if not shipments:
            self.message_user(request, _("所选发货单都不在可发货状态"), messages.WARNING)
            return None
        order_nos = [s.order.platform_order_id for s in shipments]
        form = BulkShipForm(request.POST if "apply" in request.POST else None, order_nos=order_nos)
        if "apply" in request.POST and form.is_valid():
            waybills = form.cleaned_data["waybills"]
            done, failed = 0, []
            for s in shipments:
                no = s.order.platform_order_id
                try:
                    result = shipment_ship_manual(
                        shipment=s, user=request.user, logistics_company=form.cleaned_data["logistics_company"],
                        express_code=form.cleaned_data["express_code"], waybill_no=waybills.get(no, ""))
                except ShippingError as exc:
                    failed.append(str(exc))
                    continue
                if result.status == ShipmentStatus.SHIPPED:
                    done += 1
                else:
                    failed.append(f"{no}：{result.last_error}")
            if done:
                self.message_user(request, _("已发货 %(n)d 单") % {"n": done}, messages.SUCCESS)
            for line in failed:
                self.message_user(request, line, messages.ERROR)
            return None
        return render(request, "admin/shipping/bulk_ship.html", {
            **self.admin_site.each_context(request), "title": _("批量人工发货"), "form": form,
            "shipments": shipments, "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME})

    @admin.action(description=_("Ship now (or retry now), skipping the rest of the delay"), permissions=["change"])
    def ship_now(self, request, queryset):
        n = shipment_ship_now(shipments=queryset)
        self.message_user(request, _("%(n)d 单已设为立即发货") % {"n": n}, messages.SUCCESS)


@admin.register(Shipment)
class ShipmentAdmin(BaseShipmentAdmin):
    pass


@admin.register(ManualShipment)
class ManualShipmentAdmin(BaseShipmentAdmin):
    """The manual queue: what staff have to ship by hand (awaiting_staff, and failed auto-ships)."""

    list_display = ["order_link", "item", "quantity", "status_badge", "reason", "ship_button", "created_at"]
    list_filter = [("status", ChoicesDropdownFilter), ("order__shop", RelatedDropdownFilter)]
    actions_row = ["ship_form_row"]
    actions_list = []
    actions = ["ship_manually"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status__in=MANUAL_QUEUE)

    @admin.display(description=_("操作"))
    def ship_button(self, obj):
        return format_html('<a class="bg-primary-600 font-medium px-2 py-1 rounded-default text-white '
                           'whitespace-nowrap" href="{}">{}</a>',
                           reverse("admin:shipping_manualshipment_ship", args=[obj.pk]), _("发货"))


@admin.register(CardCode)
class CardCodeAdmin(ViewOnlyFormMixin, PIIMaskMixin, ModelAdmin):
    list_display = ["pk", "product", "code", "status", "order", "created_at", "reserved_at", "delivered_at"]
    list_filter = ["status", "product"]
    search_fields = ["order__platform_order_id", "product__title", "product__item_id"]
    list_select_related = ["product", "order"]
    fields = ["product", "code", "status", "order", "imported_by", "created_at", "reserved_at", "delivered_at"]
    readonly_fields = fields
    pii_fields = ("code",)
    actions = ["void_codes"]
    change_list_template = "admin/shipping/cardcode/change_list.html"

    def has_add_permission(self, request):
        return False  # codes come in through the import form (duplicates checked, stock adjusted)

    def has_delete_permission(self, request, obj=None):
        return False  # a code's history matters; withdraw one with the "void" action

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["pools"] = (CardCode.objects.values("product__title", "product__item_id")
                                  .annotate(available=Count("pk", filter=Q(status=CardCode.Status.AVAILABLE)),
                                            reserved=Count("pk", filter=Q(status=CardCode.Status.RESERVED)),
                                            delivered=Count("pk", filter=Q(status=CardCode.Status.DELIVERED)))
                                  .order_by("product__title"))
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [path("import/", self.admin_site.admin_view(self.import_view), name="shipping_cardcode_import"),
                *super().get_urls()]

    def import_view(self, request):
        if not request.user.has_perm("shipping.add_cardcode"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = CardCodeImportForm(request.POST or None, request.FILES or None,
                                  initial={"product": request.GET.get("product")})
        if request.method == "POST" and form.is_valid():
            report = cardcode_import(product=form.cleaned_data["product"], lines=form.cleaned_data["lines"],
                                     user=request.user)
            level = messages.SUCCESS if report.added else messages.WARNING
            self.message_user(request, _("导入完成：%(r)s") % {"r": report}, level)
            return HttpResponseRedirect(reverse("admin:shipping_cardcode_changelist"))
        return render(request, "admin/shipping/cardcode/import.html", {
            **self.admin_site.each_context(request), "title": _("导入卡密"), "form": form,
            "opts": self.model._meta})

    @admin.action(description=_("作废所选可用卡密"), permissions=["change"])
    def void_codes(self, request, queryset):
        n = cardcode_void(codes=list(queryset), user=request.user)
        self.message_user(request, _("已作废 %(n)d 条卡密") % {"n": n}, messages.SUCCESS)


@admin.register(DeliveryView)
class DeliveryViewAdmin(PIIMaskMixin, ModelAdmin):
    pii_fields = ("ip",)
    list_display = ["shipment", "viewed_at", "ip", "user_agent"]
    list_select_related = ["shipment", "shipment__order"]
    search_fields = ["shipment__order__platform_order_id", "ip"]
    readonly_fields = ["shipment", "viewed_at", "ip", "user_agent"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
