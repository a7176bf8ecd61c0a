"""Admin for trades (a new trade shows its QR code as an image), refunds (who asked, why, the outcome), and
Alipay's notification inbox. Trades move only through Alipay's answers; staff query now or refund."""

from __future__ import annotations

import segno
from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import render
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from common.admin_mixins import InboxEventAdmin, ReadOnlyAdminMixin

from ..models import AlipayInboxEvent, Merchant, Refund, TokenState, Trade
from ..selectors import refundable
from ..services.base import PaymentsError
from ..services.refunds import refund_check_now, refund_request
from ..services.trades import parse_amount, trade_check, trade_create
from .base import badge, report
from .onboarding import AlipayCallInline


def qr_image(content: str, *, scale: int = 6):
    """The QR code of `content` as an inline SVG image (segno, pure Python)."""
    uri = segno.make(content, error="m").svg_data_uri(scale=scale, border=2)
    return format_html('<img src="{}" alt="QR" style="image-rendering:pixelated">', uri)


class TradeCreateForm(forms.ModelForm):
    class Meta:
        model = Trade
        fields = ["merchant", "subject", "total_amount"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["merchant"].queryset = Merchant.objects.filter(token_state=TokenState.ACTIVE).exclude(
            app_auth_token="")
        self.fields["merchant"].help_text = _("Only merchants that authorised us (onboarded) are listed.")

    def clean_total_amount(self):
        try:
            return parse_amount(self.cleaned_data["total_amount"], field=_("Amount"))
        except PaymentsError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_merchant(self):
        merchant = self.cleaned_data["merchant"]
        if not merchant.can_trade:
            raise forms.ValidationError(_("This merchant's authorisation has expired."))
        return merchant


class RefundInline(TabularInline):
    hide_title = True  # no "<pk>: <str>" line above each row
    model = Refund
    extra = 0
    can_delete = False
    fields = ("created_at", "out_request_no", "amount", "status", "fund_change", "reason", "requested_by_name",
              "last_error", "refunded_at")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount (yuan)"), required=False, max_digits=12, decimal_places=2,
                                min_value=0, help_text=_("Blank refunds everything that is left."))
    reason = forms.CharField(label=_("Reason"), max_length=256)


@admin.register(Trade)
class TradeAdmin(ModelAdmin):
    list_display = ("out_trade_no", "merchant", "subject", "total_amount", "status_badge", "refunded_amount",
                    "needs_attention", "paid_at", "created_at")
    list_filter = ("status", "needs_attention", "merchant")
    search_fields = ("=out_trade_no", "=trade_no", "subject")
    list_select_related = ("merchant",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = ["query_now", "refund"]
    shown = ("qr", "merchant", "out_trade_no", "trade_no", "subject", "total_amount", "status_badge",
             "alipay_status", "refunded_amount", "refundable_now", "buyer_logon_id", "paid_at", "closed_at",
             "expires_at", "needs_attention", "attention_reason", "last_error", "check_due_at", "created_by",
             "created_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TradeCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["merchant", "subject", "total_amount"] if obj is None else list(self.shown)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else list(self.shown)

    def get_inlines(self, request, obj):
        return [] if obj is None else [RefundInline, AlipayCallInline]

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """A new trade is stored here; it is precreated once the admin's transaction has committed (no
        platform call inside a transaction), before the page with its QR code is shown."""
        if change:
            return
        trade = trade_create(merchant=form.cleaned_data["merchant"], subject=form.cleaned_data["subject"],
                             total_amount=form.cleaned_data["total_amount"], user=request.user, precreate=False)
        obj.pk, obj.out_trade_no = trade.pk, trade.out_trade_no
        transaction.on_commit(lambda: trade_check(trade_id=trade.pk))

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        pass  # the Trade row itself and its AlipayCall log are the record

    # --- displays ---------------------------------------------------------------------------------------
    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    @admin.display(description=_("QR code"))
    def qr(self, obj):
        if obj.status != "waiting" or not obj.qr_code:
            return "—"
        return format_html('{}<div>{}</div><div><code>{}</code></div>', qr_image(obj.qr_code),
                           _("The buyer scans this with Alipay."), obj.qr_code)

    @admin.display(description=_("still refundable"))
    def refundable_now(self, obj):
        return refundable(obj) if obj.status == "paid" else "—"

    # --- actions -----------------------------------------------------------------------------------------
    @admin.action(description=_("Query Alipay now"), permissions=["view"])
    def query_now(self, request, queryset):
        done = 0
        for trade in queryset.order_by("pk")[:50]:
            trade_check(trade_id=trade.pk, force=True)
            done += 1
        self.message_user(request, _("Queried %(n)s trade(s).") % {"n": done}, messages.SUCCESS)

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.refund_trade")

    @admin.action(description=_("Refund"), permissions=["refund"])
    def refund(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one trade to refund."), messages.ERROR)
            return None
        trade = queryset.get()
        form = RefundForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                r = refund_request(trade_id=trade.pk, amount=form.cleaned_data["amount"],
                                   reason=form.cleaned_data["reason"], user=request.user)
            except PaymentsError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            level = {"succeeded": messages.SUCCESS, "failed": messages.ERROR}.get(r.status, messages.WARNING)
            self.message_user(request, _("Refund %(no)s of %(amount)s yuan: %(status)s %(error)s") % {
                "no": r.out_request_no, "amount": r.amount, "status": r.get_status_display(),
                "error": r.last_error}, level)
            return None
        return render(request, "admin/payments/action_form.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "form": form, "action": "refund",
            "objects": [trade], "title": _("Refund"),
            "note": _("Still refundable: %(left)s yuan.") % {"left": refundable(trade)}})


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("out_request_no", "trade", "amount", "status_badge", "fund_change", "reason",
                    "requested_by_name", "created_at", "refunded_at")
    list_filter = ("status",)
    search_fields = ("=out_request_no", "=trade__out_trade_no")
    list_select_related = ("trade",)
    show_full_result_count = False
    inlines = [AlipayCallInline]
    actions = ["check_now"]

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    def has_check_permission(self, request):
        return request.user.has_perm("payments.refund_trade")

    @admin.action(description=_("Check with Alipay now"), permissions=["check"])
    def check_now(self, request, queryset):
        done, errors = 0, []
        for r in queryset.order_by("pk")[:50]:
            try:
                status = refund_check_now(refund_id=r.pk)
            except PaymentsError as exc:
                errors.append(f"{r.out_request_no}: {exc}")
                continue
            done += status == "succeeded"
            if status != "succeeded":
                errors.append(f"{r.out_request_no}: {Refund.objects.get(pk=r.pk).last_error or status}")
        report(self, request, done, errors, _("{n} refund(s) confirmed."))


@admin.register(AlipayInboxEvent)
class AlipayInboxEventAdmin(InboxEventAdmin):
    replay_task = "payments.tasks.process_alipay_event"
