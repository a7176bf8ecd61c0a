"""KYC in the admin. Verifications are the KYC reviewer's page: states, Sumsub's answers and comments, the
link with a copy button (to paste into the platform's chat), the verification's own log — never documents
(Sumsub keeps them). Staff act through actions: re-send the link, override a result with a written reason
(recorded in the order's event log), confirm an order was closed on the platform by hand, and, with Sumsub
sandbox credentials, ask Sumsub to simulate a review (testCompleted). Also: policies per product, applicants,
the Sumsub webhook inbox and the messages sent through the platform's chat."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from common.admin_mixins import InboxEventAdmin, ReadOnlyAdminMixin, pretty_json

from .clients import is_sandbox_token, sumsub_configured
from .models import (
    BuyerMessage,
    Closure,
    KycApplicant,
    KycPolicy,
    SumsubInboxEvent,
    Verification,
    VerificationEvent,
    VerificationStatus,
)
from .services import KycError, labels_text
from .staff import verification_override, verification_resend, verification_staff_closed

V = VerificationStatus
STATUS_COLORS = {V.CREATED: "#999999", V.LINK_SENT: "#337ab7", V.PENDING: "#8e44ad", V.APPROVED: "#27ae60",
                 V.RETRY_REQUESTED: "#e67e22", V.REJECTED: "#c0392b", V.EXPIRED: "#7f8c8d", V.CANCELLED: "#7f8c8d"}
ACTION_LIMIT = 100


class OverrideForm(forms.Form):
    reason = forms.CharField(label=_("Reason (recorded in the order's event log)"), max_length=500,
                             widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class VerificationEventInline(TabularInline):
    hide_title = True  # no "<pk>: <str>" line above each row
    model = VerificationEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "from_status", "to_status", "actor", "user", "message")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class BuyerMessageInline(TabularInline):
    hide_title = True  # no "<pk>: <str>" line above each row
    model = BuyerMessage
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "status", "attempts", "sent_at", "last_error", "text")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


def copy_link(v: Verification):
    """The buyer's link with a copy button (staff paste it into the platform's chat)."""
    field_id = f"kyc-link-{v.pk}"
    return format_html(
        '<input type="text" readonly id="{}" value="{}" size="70" style="font-family:monospace"> '
        '<button type="button" class="button" '
        "onclick=\"navigator.clipboard.writeText(document.getElementById('{}').value);"
        "this.textContent='{}'\">{}</button>",
        field_id, v.url, field_id, _("Copied"), _("Copy"))


@admin.register(Verification)
class VerificationAdmin(ModelAdmin):
    list_display = ("order_link", "shop", "status_badge", "level_name", "review_answer", "reject_type",
                    "expires_at", "needs_staff", "closure", "created_at")
    list_filter = ("status", "needs_staff", "closure", "order__shop")
    search_fields = ("=order__platform_order_id", "=applicant__applicant_id")
    list_select_related = ("order", "order__shop")
    date_hierarchy = "created_at"
    show_full_result_count = False
    list_per_page = 50
    inlines = [VerificationEventInline, BuyerMessageInline]
    actions = ["resend_link", "override_approve", "override_reject", "mark_closed_on_platform",
               "sumsub_test_approve", "sumsub_test_retry", "sumsub_test_reject"]
    # Re-sending the link as a button on each row and on the verification's page (the same service).
    actions_row = ["resend_link_row"]
    actions_detail = ["resend_link_detail"]
    fieldsets = (
        (None, {"fields": ("order_link", "status_badge", "level_name", "link", "expires_at", "remind_at",
                           "reminded_at", "opened_at")}),
        (_("Sumsub"), {"fields": ("applicant_ref", "review_status", "review_answer", "reject_type", "labels_shown",
                                  "moderation_comment", "client_comment", "last_event_at", "decided_at",
                                  "next_check_at", "checked_at")}),
        (_("Order handling"), {"fields": ("expiry_action", "closure", "close_attempts", "needs_staff",
                                          "staff_reason", "last_error")}),
        (_("Due work"), {"fields": ("work_state", "due_at", "lease_until", "work_attempts", "created_at",
                                    "updated_at")}),
    )
    readonly_fields = tuple(name for _title, opts in fieldsets for name in opts["fields"])

    def has_add_permission(self, request):
        return False  # verifications are created by the order flow

    def has_delete_permission(self, request, obj=None):
        return False

    def has_override_permission(self, request):
        return request.user.has_perm("kyc.override_verification")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # Every field is read-only (staff act through the buttons and actions): titled "view", no save buttons.
        extra = {"show_save": False, "show_save_and_continue": False,
                 "title": gettext("View %s") % self.model._meta.verbose_name, **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra)

    # --- columns ----------------------------------------------------------------------------------------
    @admin.display(description=_("order"), ordering="order__platform_order_id")
    def order_link(self, obj):
        url = reverse("admin:orders_order_change", args=[obj.order_id])
        return format_html('<a href="{}">{}</a>', url, obj.order.platform_order_id)

    @admin.display(description=_("shop"), ordering="order__shop")
    def shop(self, obj):
        return obj.order.shop.name

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return format_html('<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px">{}</span>',
                           STATUS_COLORS.get(obj.status, "#999999"), obj.get_status_display())

    @admin.display(description=_("buyer's link"))
    def link(self, obj):
        return copy_link(obj)

    @admin.display(description=_("applicant"))
    def applicant_ref(self, obj):
        a = obj.applicant
        return format_html("{} <span style='color:#888'>({})</span>", a.applicant_id or "—", a.external_user_id)

    @admin.display(description=_("reject labels"))
    def labels_shown(self, obj):
        if not obj.reject_labels:
            return "—"
        text = labels_text(obj.reject_labels)
        return f"{', '.join(obj.reject_labels)}{'（' + text + '）' if text else ''}"

    # --- actions ----------------------------------------------------------------------------------------
    def _each(self, request, queryset, fn, done_message):
        done = 0
        for v in queryset.select_related("order")[:ACTION_LIMIT]:
            try:
                fn(v)
                done += 1
            except KycError as exc:
                self.message_user(request, f"{v.order.platform_order_id}：{exc}", messages.ERROR)
        if done:
            self.message_user(request, done_message % {"n": done}, messages.SUCCESS)
        if queryset.count() > ACTION_LIMIT:
            self.message_user(request, _("At most %(n)d at a time.") % {"n": ACTION_LIMIT}, messages.WARNING)

    @admin.action(description=_("Re-send the link to the buyer"), permissions=["change"])
    def resend_link(self, request, queryset):
        self._each(request, queryset, lambda v: verification_resend(verification=v, user=request.user),
                   _("Link sent for %(n)d verification(s)."))

    def _resend_one(self, request, object_id):
        self._each(request, self.get_queryset(request).filter(pk=object_id),
                   lambda v: verification_resend(verification=v, user=request.user),
                   _("Link sent for %(n)d verification(s)."))
        return redirect(request.META.get("HTTP_REFERER") or reverse("admin:kyc_verification_change",
                                                                    args=[object_id]))

    @action(description=_("Re-send the link to the buyer"), permissions=["change"], icon="send")
    def resend_link_row(self, request, object_id):
        return self._resend_one(request, object_id)

    @action(description=_("Re-send the link to the buyer"), permissions=["change"], icon="send")
    def resend_link_detail(self, request, object_id):
        return self._resend_one(request, object_id)

    @admin.action(description=_("Mark the order as closed on the platform"), permissions=["change"])
    def mark_closed_on_platform(self, request, queryset):
        self._each(request, queryset.filter(closure=Closure.STAFF),
                   lambda v: verification_staff_closed(verification=v, user=request.user),
                   _("%(n)d order(s) closed."))

    def _override(self, request, queryset, *, approve: bool, action: str):
        if "apply" in request.POST:
            form = OverrideForm(request.POST)
            if form.is_valid():
                reason = form.cleaned_data["reason"]
                self._each(request, queryset, lambda v: verification_override(
                    verification=v, user=request.user, approve=approve, reason=reason),
                    _("%(n)d result(s) overridden."))
                return None
        else:
            form = OverrideForm()
        return render(request, "admin/kyc/override.html", {
            **self.admin_site.each_context(request), "form": form, "verifications": queryset[:ACTION_LIMIT],
            "action": action, "approve": approve, "opts": self.model._meta,
            "title": _("Approve with a written reason") if approve else _("Reject with a written reason"),
        })

    @admin.action(description=_("Override: approve (written reason required)"), permissions=["override"])
    def override_approve(self, request, queryset):
        return self._override(request, queryset, approve=True, action="override_approve")

    @admin.action(description=_("Override: reject and close the order (written reason required)"),
                  permissions=["override"])
    def override_reject(self, request, queryset):
        return self._override(request, queryset, approve=False, action="override_reject")

    def _test_completed(self, request, queryset, answer: str, reject_type: str = ""):
        from .staff import verification_test_completed

        if not (sumsub_configured() and is_sandbox_token()):
            self.message_user(request, _("Only with Sumsub sandbox credentials (an app token starting with sbx:)."),
                              messages.ERROR)
            return
        self._each(request, queryset, lambda v: verification_test_completed(
            verification=v, user=request.user, answer=answer, reject_type=reject_type),
            _("Sumsub was asked to finish %(n)d review(s); its webhook brings the result."))

    @admin.action(description=_("Sumsub sandbox: simulate approval"), permissions=["override"])
    def sumsub_test_approve(self, request, queryset):
        self._test_completed(request, queryset, "GREEN")

    @admin.action(description=_("Sumsub sandbox: simulate a resubmission request"), permissions=["override"])
    def sumsub_test_retry(self, request, queryset):
        self._test_completed(request, queryset, "RED", "RETRY")

    @admin.action(description=_("Sumsub sandbox: simulate a final rejection"), permissions=["override"])
    def sumsub_test_reject(self, request, queryset):
        self._test_completed(request, queryset, "RED", "FINAL")


@admin.register(KycPolicy)
class KycPolicyAdmin(ModelAdmin):
    list_display = ("product", "level_name", "validity_days", "link_ttl_hours", "expiry_action", "product_needs_kyc")
    list_select_related = ("product", "product__shop")
    search_fields = ("product__title", "=product__item_id")
    fields = ("product", "level_name", "validity_days", "link_ttl_hours", "expiry_action")

    @admin.display(description=_("product needs KYC"), boolean=True)
    def product_needs_kyc(self, obj):
        return obj.product.needs_kyc


@admin.register(KycApplicant)
class KycApplicantAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("external_user_id", "applicant_id", "buyer", "created_at")
    search_fields = ("=external_user_id", "=applicant_id")
    list_select_related = ("buyer",)
    show_full_result_count = False
    fields = ("external_user_id", "applicant_id", "buyer", "created_at")
    readonly_fields = fields


@admin.register(SumsubInboxEvent)
class SumsubInboxEventAdmin(InboxEventAdmin):
    replay_task = "kyc.tasks.process_sumsub_event"
    list_display = (*InboxEventAdmin.list_display, "applicant_id")
    search_fields = ("=key", "=applicant_id")


@admin.register(BuyerMessage)
class BuyerMessageAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "verification", "kind", "status", "attempts", "sent_at", "last_error_short")
    list_filter = ("status", "kind")
    list_select_related = ("verification", "verification__order")
    show_full_result_count = False
    fields = ("verification", "kind", "status", "attempts", "due_at", "sent_at", "last_error", "text", "created_at")
    readonly_fields = fields

    @admin.display(description=_("last error"))
    def last_error_short(self, obj):
        return obj.last_error[:80]


@admin.register(VerificationEvent)
class VerificationEventAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "verification", "kind", "from_status", "to_status", "actor", "user", "message")
    list_filter = ("kind", "actor")
    list_select_related = ("verification", "verification__order", "user")
    search_fields = ("=verification__order__platform_order_id",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ("verification", "kind", "from_status", "to_status", "actor", "user", "message", "data_pretty",
              "created_at")
    readonly_fields = fields

    @admin.display(description=_("data"))
    def data_pretty(self, obj):
        return pretty_json(obj.data or {})
