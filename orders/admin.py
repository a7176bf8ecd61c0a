from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.admin_mixins import InboxEventAdmin, ReadOnlyAdminMixin, can_view_pii
from common.fields import mask
from common.http import PlatformError

from .models import Order, OrderEvent, OrderInboxEvent, Product, SandboxCall, SandboxOrder, StockMovement
from .services import OrderError, order_refresh, stock_adjust

STATUS_COLORS = {"pending_payment": "#999", "paid": "#337ab7", "awaiting_kyc": "#8e44ad", "ready_to_ship": "#e67e22",
                 "shipped": "#27ae60", "completed": "#2c3e50", "closed": "#7f8c8d", "refunding": "#c0392b",
                 "refunded": "#c0392b"}


class StockAdjustForm(forms.Form):
    change = forms.IntegerField(label=_("数量变化（补货为正，扣减为负）"))
    note = forms.CharField(label=_("备注"), required=False, max_length=200)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("title", "item_id", "shop", "kind", "auto_ship", "needs_kyc", "stock_shown", "delay_window",
                    "is_active")
    list_filter = ("shop", "kind", "auto_ship", "needs_kyc", "is_active")
    list_editable = ("auto_ship", "is_active")
    search_fields = ("title", "item_id")
    list_select_related = ("shop",)
    readonly_fields = ("stock", "created_at", "updated_at")
    actions = ["adjust_stock"]
    fieldsets = (
        (None, {"fields": ("shop", "item_id", "title", "kind", "is_active")}),
        (_("发货规则"), {"fields": ("auto_ship", "ship_delay_min", "ship_delay_max", "logistics_company",
                                   "express_code", "delivery_template", "needs_kyc")}),
        (_("库存"), {"fields": ("stock", "low_stock_threshold"),
                     "description": _("库存只能通过“调整库存”操作修改，每次修改都有记录。")}),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # A new product starts with the stock given here; later changes go through stock movements.
        return ("created_at", "updated_at") if obj is None else self.readonly_fields

    @admin.display(description=_("库存"), ordering="stock")
    def stock_shown(self, obj):
        if obj.unlimited:
            return _("不限")
        if obj.stock <= obj.low_stock_threshold:
            return format_html('<b style="color:#c0392b">{}</b>', obj.stock)
        return obj.stock

    @admin.display(description=_("发货延时（分钟）"))
    def delay_window(self, obj):
        return f"{obj.ship_delay_min}–{obj.ship_delay_max}"

    @admin.action(description=_("调整库存"))
    def adjust_stock(self, request, queryset):
        if "apply" in request.POST:
            form = StockAdjustForm(request.POST)
            if form.is_valid():
                ok = 0
                for product in queryset:
                    try:
                        stock_adjust(product=product, change=form.cleaned_data["change"], reason="adjust",
                                     user=request.user, note=form.cleaned_data["note"])
                        ok += 1
                    except OrderError as exc:
                        self.message_user(request, str(exc), messages.ERROR)
                if ok:
                    self.message_user(request, f"已调整 {ok} 个商品的库存", messages.SUCCESS)
                return None
        else:
            form = StockAdjustForm()
        return render(request, "admin/orders/stock_adjust.html",
                      {**self.admin_site.each_context(request), "form": form, "products": queryset,
                       "title": _("调整库存"), "opts": self.model._meta})


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "product", "reason", "change", "remaining", "order", "user", "note")
    list_filter = ("reason",)
    list_select_related = ("product", "order", "user")
    search_fields = ("product__title", "order__platform_order_id")
    date_hierarchy = "created_at"


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_status", "to_status", "actor", "user", "message")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("platform_order_id", "shop", "item_title", "quantity", "amount", "status_badge", "has_anomaly",
                    "paid_at", "created_at")
    list_filter = ("status", "has_anomaly", "shop__platform", "shop")
    search_fields = ("=platform_order_id", "item_title")
    date_hierarchy = "created_at"
    list_select_related = ("shop",)
    show_full_result_count = False
    inlines = [OrderEventInline]
    actions = ["refresh_from_platform"]
    base_fields = ("shop", "platform_order_id", "status", "platform_status", "platform_event_at", "has_anomaly",
                   "buyer", "product", "item_id", "item_title", "sku", "quantity", "amount", "paid_at", "shipped_at",
                   "closed_at", "created_at", "updated_at")

    def has_add_permission(self, request):
        return False  # orders come from platforms

    def get_fields(self, request, obj=None):
        if not hasattr(request, "_receiver_col"):  # one callable per request (admin instances are shared)
            pii = can_view_pii(request)

            def receiver(order):
                data = order.receiver or {}
                text = " ".join(str(data.get(k, "")) for k in ("name", "phone", "prov", "city", "area", "town",
                                                               "address")).strip()
                return text if pii else mask(text, keep=1)

            receiver.short_description = _("收货信息")
            request._receiver_col = receiver
        return (*self.base_fields, request._receiver_col)

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("状态"), ordering="status")
    def status_badge(self, obj):
        return format_html('<span style="color:#fff;background:{};padding:2px 6px;border-radius:3px">{}</span>',
                           STATUS_COLORS.get(obj.status, "#999"), obj.get_status_display())

    @admin.action(description=_("从平台同步"))
    def refresh_from_platform(self, request, queryset):
        done = 0
        for order in queryset.select_related("shop")[:200]:
            try:
                order_refresh(order=order, user=request.user)
                done += 1
            except (PlatformError, OrderError) as exc:
                self.message_user(request, f"{order.platform_order_id}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"已同步 {done} 个订单", messages.SUCCESS)


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "order", "kind", "from_status", "to_status", "actor", "user", "message")
    list_filter = ("kind", "actor", "to_status")
    list_select_related = ("order", "user")
    search_fields = ("=order__platform_order_id",)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(OrderInboxEvent)
class OrderInboxEventAdmin(InboxEventAdmin):
    list_display = (*InboxEventAdmin.list_display, "shop", "platform_order_id")
    search_fields = ("key", "=platform_order_id")
    list_select_related = ("shop",)


@admin.register(SandboxOrder)
class SandboxOrderAdmin(admin.ModelAdmin):
    list_display = ("sandbox", "order_no", "shop", "status", "item_id", "quantity", "amount_fen", "waybill_no",
                    "modified_at")
    list_filter = ("status", "shop")
    search_fields = ("order_no",)

    @admin.display(description=_("沙箱"))
    def sandbox(self, obj):
        return format_html('<span style="background:#f0ad4e;color:#fff;padding:2px 6px;border-radius:3px">沙箱</span>')


@admin.register(SandboxCall)
class SandboxCallAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("created_at", "shop", "method", "params", "response")
    list_filter = ("method", "shop")

    def has_change_permission(self, request, obj=None):
        return request.method == "GET"
