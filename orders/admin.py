from django import forms
from django.contrib import admin, messages
from django.contrib.admin import RelatedFieldListFilter
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django_fsm.admin import FSMAdminMixin
from import_export.admin import ImportExportModelAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RelatedDropdownFilter
from unfold.contrib.import_export.forms import ExportForm, ImportForm
from unfold.decorators import action

from accounts.admin import sandbox_badge
from accounts.models import Shop
from common.admin_mixins import (
    FieldLabelsMixin,
    InboxEventAdmin,
    PIIMaskMixin,
    ReadOnlyAdminMixin,
    pretty_json,
    titled_filter,
)

from .admin_lists import BigListMixin, DayRangeFilter
from .delivery_content import mentions_codes
from .models import (
    Order,
    OrderEvent,
    OrderInboxEvent,
    OrderStatus,
    Product,
    SandboxCall,
    SandboxMessage,
    SandboxOrder,
    StockMovement,
)
from .resources import ORDER_COLUMNS, ProductResource, export_view

S = OrderStatus
STATUS_COLORS = {
    S.PENDING_PAYMENT: "#999999", S.PAID: "#337ab7", S.AWAITING_KYC: "#8e44ad", S.READY_TO_SHIP: "#e67e22",
    S.SHIPPED: "#27ae60", S.COMPLETED: "#2c3e50", S.CLOSED: "#7f8c8d", S.REFUNDING: "#c0392b",
    S.REFUNDED: "#a93226",
}
SANDBOX_NOTE = _("沙箱：本地模拟平台的数据，用于试运行商品规则，不是真实平台订单。")
REFRESH_LIMIT = 100
LINK = "text-primary-600 underline dark:text-primary-500"


class StockAdjustForm(forms.Form):
    change = forms.IntegerField(label=_("数量变化（补货填正数，扣减填负数）"))
    note = forms.CharField(label=_("备注"), required=False, max_length=200)

    def clean_change(self):
        value = self.cleaned_data["change"]
        if value == 0:
            raise forms.ValidationError(_("数量变化不能为 0"))
        return value


@admin.register(Product)
class ProductAdmin(ImportExportModelAdmin, ModelAdmin):
    """Products, with import (CSV/XLSX: preview, then confirm; each bad row shows its errors) and export."""

    resource_classes = [ProductResource]
    import_form_class = ImportForm
    export_form_class = ExportForm
    list_display = ("title", "item_id", "shop", "kind", "auto_ship", "needs_kyc", "stock_shown", "delay_window",
                    "is_active")
    list_display_links = ("title",)
    list_filter = ("shop", "kind", "auto_ship", "needs_kyc", "is_active")
    list_editable = ("auto_ship", "is_active")
    search_fields = ("title", "=item_id")
    search_help_text = _("Title or item ID")
    list_select_related = ("shop",)
    actions = ["adjust_stock"]
    fieldsets = (
        (None, {"fields": ("shop", "item_id", "title", "kind", "is_active")}),
        (_("发货规则"), {"fields": ("auto_ship", ("ship_delay_min", "ship_delay_max"), "delivery_way", "card_kind_id",
                                   "staff_confirms_shipping", "delivery_template", "logistics_company",
                                   "express_code", "needs_kyc")}),
        (_("库存"), {"fields": ("stock", "low_stock_threshold"),
                     "description": _("新建后库存只能通过列表页的“调整库存”操作修改，每次修改都有库存变动记录。")}),
        (_("记录"), {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        from shipping.models import CardCode

        codes = CardCode.objects.filter(product=OuterRef("pk"))
        available = (codes.filter(status=CardCode.Status.AVAILABLE).order_by().values("product")
                     .annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(
            codes_available=Coalesce(Subquery(available), 0), has_codes=Exists(codes))

    def get_readonly_fields(self, request, obj=None):
        # A new product starts with the stock given here; later changes go through stock movements.
        return ("created_at", "updated_at") if obj is None else ("stock", "created_at", "updated_at")

    @admin.display(description=_("库存"), ordering="stock")
    def stock_shown(self, obj):
        left = obj.stock
        if obj.unlimited:
            # A card-code product sells what its pool holds: show the codes left, not "unlimited".
            if not (getattr(obj, "has_codes", False) or mentions_codes(obj.delivery_template)):
                return _("不限")
            left = getattr(obj, "codes_available", 0)
            label = _("%(n)d codes left") % {"n": left}
        else:
            label = left
        if left <= obj.low_stock_threshold:
            return format_html('<b style="color:#c0392b;white-space:nowrap">{}</b>', label)
        return format_html('<span style="white-space:nowrap">{}</span>', label)

    @admin.display(description=_("发货延时（分钟）"))
    def delay_window(self, obj):
        if obj.ship_delay_min == obj.ship_delay_max:
            return str(obj.ship_delay_min)
        return f"{obj.ship_delay_min}–{obj.ship_delay_max}"

    @admin.action(description=_("调整库存"), permissions=["change"])
    def adjust_stock(self, request, queryset):
        from .services import OrderError, stock_adjust

        if "apply" in request.POST:
            form = StockAdjustForm(request.POST)
            if form.is_valid():
                change, note = form.cleaned_data["change"], form.cleaned_data["note"]
                reason = StockMovement.Reason.RESTOCK if change > 0 else StockMovement.Reason.ADJUST
                done = 0
                for product in queryset:
                    try:
                        stock_adjust(product=product, change=change, reason=reason, user=request.user, note=note)
                        done += 1
                    except OrderError as exc:
                        self.message_user(request, str(exc), messages.ERROR)
                if done:
                    self.message_user(request, _("已调整 %(n)d 个商品的库存。") % {"n": done}, messages.SUCCESS)
                return None
            for error in form.errors.get("change", []):
                self.message_user(request, error, messages.ERROR)
        else:
            form = StockAdjustForm()
        return render(request, "admin/orders/stock_adjust.html", {
            **self.admin_site.each_context(request), "form": form, "products": queryset, "title": _("调整库存"),
            "opts": self.model._meta,
        })


@admin.register(StockMovement)
class StockMovementAdmin(BigListMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "product", "reason", "change", "remaining", "order", "user", "note")
    list_filter = ("reason", ("created_at", DayRangeFilter))
    list_select_related = ("product", "order", "user")
    search_fields = ("product__title", "=product__item_id", "=order__platform_order_id")


class EventStatusLabels:
    """Show an event's from/to states by their Chinese labels."""

    @admin.display(description=_("原状态"), ordering="from_status")
    def from_label(self, obj):
        return S(obj.from_status).label if obj.from_status in S.values else obj.from_status

    @admin.display(description=_("新状态"), ordering="to_status")
    def to_label(self, obj):
        return S(obj.to_status).label if obj.to_status in S.values else obj.to_status


class OrderEventInline(EventStatusLabels, TabularInline):
    """The order's append-only log, read-only."""
    hide_title = True  # no "<pk>: <str>" line above each row

    model = OrderEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_label", "to_label", "actor", "user", "message")
    readonly_fields = fields
    ordering = ("created_at", "id")
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def status_badge(obj):
    return format_html('<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;white-space:nowrap">'
                       '{}</span>', STATUS_COLORS.get(obj.status, "#999999"), obj.get_status_display())


class PlatformFilter(admin.SimpleListFilter):
    """The shop's platform, from the platform choices (not a DISTINCT over the orders)."""

    title = _("Platform")
    parameter_name = "platform"

    def lookups(self, request, model_admin):
        return Shop._meta.get_field("platform").choices

    def queryset(self, request, queryset):
        return queryset.filter(shop__platform=self.value()) if self.value() else queryset


# Transitions staff may start from an order's page, each through its service (never a bare FSM call).
STAFF_TRANSITIONS = {
    "release": (_("Release for shipping"), "order_release"),
    "close": (_("Close order"), "order_close"),
}


@admin.register(Order)
class OrderAdmin(BigListMixin, PIIMaskMixin, FSMAdminMixin, ModelAdmin):
    """Orders come from platforms and move only through services (the status is FSM-protected): nothing
    is edited here; staff act through the transition buttons, row actions and list actions."""

    pii_fields = ("receiver",)
    fsm_fields = ["status"]
    change_form_template = "admin/orders/order/change_form.html"
    list_display = ("platform_order_id", "shop", "item_short", "quantity", "amount", "status_colored",
                    "anomaly_mark", "created_at")
    list_filter = (("status", ChoicesDropdownFilter), ("created_at", DayRangeFilter), "has_anomaly",
                   ("shop", RelatedDropdownFilter), PlatformFilter)
    # Indexed columns only, exact matches: no ILIKE scan of a million rows, no join, no DISTINCT.
    search_fields = ("=platform_order_id", "=item_id")
    search_help_text = _("Order number or item ID (exact)")
    list_select_related = ("shop",)
    inlines = [OrderEventInline]
    actions = ["refresh_from_platform"]
    actions_row = ["close_row"]
    actions_list = ["export_csv"]
    fieldsets = (
        (None, {"fields": ("shop", "platform_order_id", "status_colored", "platform_status_label",
                           "platform_event_at", "anomaly_mark")}),
        (_("商品与金额"), {"fields": ("product", "item_id", "item_title", "sku", "quantity", "amount")}),
        (_("Shipment and delivered content"), {"fields": ("shipment_link", "codes_link")}),
        (_("买家"), {"fields": ("buyer", "receiver")}),
        (_("时间"), {"fields": ("paid_at", "shipped_at", "closed_at", "created_at", "updated_at")}),
    )

    readonly_fields = tuple(name for _title, opts in fieldsets for name in opts["fields"])

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("shop")

    def get_search_results(self, request, queryset, search_term):
        # Case-sensitive equality (the admin's "=" is iexact, UPPER(column), which no plain index serves).
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(Q(platform_order_id=term) | Q(item_id=term)), False

    def has_add_permission(self, request):
        return False  # orders come from platforms

    def has_delete_permission(self, request, obj=None):
        return False  # a record, not a draft: nobody deletes an order (its log and shipment keep it too)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Every field is read-only: no save buttons, and the page is titled as a view, not a change.
        obj = self.get_object(request, object_id) if object_id else None
        extra = {"show_save": False, "show_save_and_continue": False,
                 "title": _("Order %(no)s") % {"no": obj.platform_order_id} if obj else None,
                 **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra)

    # Transition buttons (django-fsm-2's admin), limited to STAFF_TRANSITIONS and run by the services.
    def is_fsm_transition_visible(self, transition):
        return transition.name in STAFF_TRANSITIONS

    def get_fsm_label(self, transition):
        return STAFF_TRANSITIONS[transition.name][0]

    @staticmethod
    def get_fsm_block_label(fsm_field_name):
        return _("Change status")

    def _get_fsm_extra_context(self, *, request, obj):
        if obj is None or not self.has_change_permission(request, obj):
            return []
        return list(super()._get_fsm_extra_context(request=request, obj=obj))

    def save_model(self, request, obj, form, change):
        """Nothing on an order is edited here: a transition button's POST lands here first, and the service
        (in `_apply_fsm_transition`) does the work under the order's lock."""

    def _apply_fsm_transition(self, *, obj, transition_name, request, kwargs=None):
        from . import services

        entry = STAFF_TRANSITIONS.get(transition_name)
        if entry is None or not self.has_change_permission(request, obj):
            self.message_user(request, _("This status change is not allowed here."), messages.ERROR)
            return False
        label, service = entry
        try:
            getattr(services, service)(order=obj, actor=OrderEvent.Actor.STAFF, user=request.user,
                                       message=str(label))
        except services.OrderError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return False
        self.message_user(request, _("%(action)s: done for order %(no)s.") % {
            "action": label, "no": obj.platform_order_id}, messages.SUCCESS)
        return True

    @action(description=_("Export CSV"), url_path="export-csv", permissions=["view"], icon="download")
    def export_csv(self, request):
        """Orders created in a date range, streamed (no receiver details: they stay in the admin)."""
        return export_view(self, request, queryset=Order.objects.select_related("shop"), date_field="created_at",
                           columns=ORDER_COLUMNS, name="orders")

    @action(description=_("Close order"), url_path="close", permissions=["change"])
    def close_row(self, request, object_id):
        """Row action: a confirmation page (GET), then the close through the service (POST)."""
        order = get_object_or_404(Order, pk=object_id)
        if request.method == "POST":
            self._apply_fsm_transition(obj=order, transition_name="close", request=request)
            back = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                back = reverse("admin:orders_order_changelist")
            return HttpResponseRedirect(back)
        return render(request, "admin/orders/confirm.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "title": _("Close order"),
            "question": _("Close order %(no)s? Its shipment is cancelled and unsent codes go back to the pool.")
            % {"no": order.platform_order_id}, "submit": _("Close order"),
            "next": request.META.get("HTTP_REFERER", "")})

    @admin.display(description=_("商品"), ordering="item_title")
    def item_short(self, obj):
        title = obj.item_title or obj.item_id
        return format_html('<span title="{}">{}</span>', title, Truncator(title).chars(18))

    @admin.display(description=_("状态"), ordering="status")
    def status_colored(self, obj):
        return status_badge(obj)

    @admin.display(description=_("异常"), ordering="has_anomaly")
    def anomaly_mark(self, obj):
        # Only an anomaly is marked: a normal order shows nothing (not a red cross on every row).
        return format_html('<span style="color:#c0392b;white-space:nowrap">⚠ {}</span>', _("Anomaly")) \
            if obj.has_anomaly else ""

    @admin.display(description=_("platform status"))
    def platform_status_label(self, obj):
        # The platform's status by our label when it names one of ours ("paid" → 已付款), else as reported.
        value = obj.platform_status
        return S(value).label if value in S.values else (value or "-")

    @admin.display(description=_("Shipment"))
    def shipment_link(self, obj):
        from shipping.models import Shipment

        shipment = Shipment.objects.filter(order=obj).only("pk", "status", "shipped_at").first()
        if shipment is None:
            return _("No shipment yet")
        return format_html('<a class="{}" href="{}">{}</a>（{}）', LINK,
                           reverse("admin:shipping_shipment_change", args=[shipment.pk]),
                           _("Shipment #%(pk)s, with the delivered content") % {"pk": shipment.pk},
                           shipment.get_status_display())

    @admin.display(description=_("Card codes"))
    def codes_link(self, obj):
        return format_html('<a class="{}" href="{}?order__id__exact={}">{}</a>', LINK,
                           reverse("admin:shipping_cardcode_changelist"), obj.pk, _("Card codes of this order"))

    @admin.action(description=_("从平台同步"), permissions=["change"])
    def refresh_from_platform(self, request, queryset):
        try:
            from .services import order_refresh
        except ImportError:
            self.message_user(request, _("同步功能尚未提供（orders.services.order_refresh）。"), messages.ERROR)
            return
        done = 0
        for order in queryset.select_related("shop")[:REFRESH_LIMIT]:
            try:
                result = order_refresh(order=order, user=request.user)
            except Exception as exc:  # a platform failure is shown to staff, never a 500 (DESIGN.md §4.5)
                self.message_user(request, _("%(order)s 同步失败：%(error)s") % {"order": order.platform_order_id,
                                                                              "error": exc}, messages.ERROR)
                continue
            done += 1
            if getattr(result, "outcome", "") == "anomaly":
                self.message_user(request, _("%(order)s 平台状态无法到达，已记录异常。") % {
                    "order": order.platform_order_id}, messages.WARNING)
        if done:
            self.message_user(request, _("已同步 %(n)d 个订单。") % {"n": done}, messages.SUCCESS)
        if queryset.count() > REFRESH_LIMIT:
            self.message_user(request, _("一次最多同步 %(n)d 个订单。") % {"n": REFRESH_LIMIT}, messages.WARNING)


@admin.register(OrderEvent)
class OrderEventAdmin(BigListMixin, EventStatusLabels, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "order", "kind", "from_label", "to_label", "actor", "user", "message")
    list_filter = ("kind", "actor", ("created_at", DayRangeFilter))
    list_select_related = ("order", "user")
    search_fields = ("=order__platform_order_id",)
    search_help_text = _("Order number (exact)")
    fields = ("order", "kind", "from_label", "to_label", "actor", "user", "message", "data_pretty", "created_at")

    def get_search_results(self, request, queryset, search_term):
        # The order's number, exactly (an index lookup on orders, then the events' order_id index).
        term = search_term.strip()
        return (queryset.filter(order__platform_order_id=term) if term else queryset), False
    readonly_fields = fields

    @admin.display(description=_("数据"))
    def data_pretty(self, obj):
        return pretty_json(obj.data or {})


@admin.register(OrderInboxEvent)
class OrderInboxEventAdmin(InboxEventAdmin, ModelAdmin):
    replay_task = "orders.tasks.process_order_event"
    list_display = (*InboxEventAdmin.list_display, "shop", "platform_order_id")
    list_filter = (*InboxEventAdmin.list_filter, "shop")
    search_fields = ("=key", "=platform_order_id")
    list_select_related = ("shop",)


class SandboxAdminMixin(FieldLabelsMixin):
    """Sandbox models: a badge in every row and a note on every page."""

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"subtitle": SANDBOX_NOTE, **(extra_context or {})})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        return super().changeform_view(request, object_id, form_url, {"subtitle": SANDBOX_NOTE,
                                                                      **(extra_context or {})})

    @admin.display(description=_("沙箱"))
    def sandbox(self, obj):
        return sandbox_badge()


class SandboxMessageInline(PIIMaskMixin, TabularInline):
    """What the sandbox buyer received, exactly as they would read it (read-only; codes masked without the
    PII permission)."""
    hide_title = True  # no "<pk>: <str>" line above each row

    model = SandboxMessage
    extra = 0
    can_delete = False
    pii_fields = ("text",)
    fields = ("created_at", "text")
    readonly_fields = ("created_at",)
    verbose_name_plural = _("What the buyer received")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SandboxOrder)
class SandboxOrderAdmin(SandboxAdminMixin, ModelAdmin):
    field_labels = {
        "shop": _("店铺"), "order_no": _("订单号"), "status": _("平台状态"), "item_id": _("商品 ID"),
        "title": _("标题"), "quantity": _("数量"), "amount_fen": _("金额（分）"), "buyer_id": _("买家 ID"),
        "buyer_nick": _("买家昵称"), "waybill_no": _("运单号"), "express_name": _("物流公司"),
        "modified_at": _("更新时间"),
    }
    list_display = ("sandbox", "order_no", "shop", "status", "item_id", "quantity", "amount_fen", "waybill_no",
                    "modified_at")
    list_display_links = ("order_no",)
    list_filter = (("status", titled_filter(_("平台状态"))), ("shop", titled_filter(_("店铺"), RelatedFieldListFilter)))
    list_select_related = ("shop",)
    search_fields = ("=order_no",)
    show_full_result_count = False
    inlines = (SandboxMessageInline,)

    def get_list_display_links(self, request, list_display):
        return [list_display[1]]  # the order number column (a per-request callable)


@admin.register(SandboxCall)
class SandboxCallAdmin(PIIMaskMixin, SandboxAdminMixin, ReadOnlyAdminMixin, ModelAdmin):
    """A ship call's parameters carry the delivery content (card codes): masked without `view_pii`."""

    field_labels = {"shop": _("店铺")}
    pii_fields = ("params", "response")
    pretty_fields = pii_fields
    list_display = ("sandbox", "created_at", "shop", "method", "params", "response")
    list_display_links = ("created_at",)
    list_filter = ("method", ("shop", titled_filter(_("店铺"), RelatedFieldListFilter)))
    list_select_related = ("shop",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("created_at", "shop", "method", "params", "response")
    readonly_fields = fields
