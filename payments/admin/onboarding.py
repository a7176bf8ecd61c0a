"""Admin for merchants and their face-to-face applications.

The application form takes the seed's fields and the pictures (type and 5 KB–5 MB checked by the model's
validators, with plain errors); a submitted application is read-only and moves only through actions:
submit, query now, cancel a submission, withdraw. Every Alipay answer is listed on the application. The
list filters by status and by "needs attention" (overdue review, refusals, configuration problems)."""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action

from common.admin_mixins import ReadOnlyAdminMixin, pretty_json

from .. import validators as v
from ..models import PICTURE_FIELDS, RESUBMITTABLE, AlipayCall, FacetofaceApplication, Merchant
from ..services.base import PaymentsError
from ..services.merchants import merchant_exchange_code, merchant_refresh_token
from ..services.onboarding import (
    application_cancel_submission,
    application_run_now,
    application_submit,
    application_withdraw,
)
from .base import WriteOnlyPIIMixin, badge, report

PICTURE_ACCEPT = ".png,.bmp,.gif,.jpg,.jpeg"


class AlipayCallInline(TabularInline):
    """Every call made for this row and Alipay's answer, newest first."""
    hide_title = True  # no "<pk>: <str>" line above each row

    model = AlipayCall
    extra = 0
    can_delete = False
    fields = ("created_at", "method", "outcome", "code", "sub_code", "message", "answer_shown")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    verbose_name_plural = _("Alipay answers")

    @admin.display(description=_("answer"))
    def answer_shown(self, obj):
        return pretty_json(obj.answer or {}, limit=4000)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ExchangeCodeForm(forms.Form):
    code = forms.CharField(label=_("Authorisation code (app_auth_code)"), max_length=128)


@admin.register(Merchant)
class MerchantAdmin(WriteOnlyPIIMixin, ModelAdmin):
    pii_fields = ("contact_mobile", "contact_email")
    secret_fields = ("app_auth_token", "app_refresh_token")
    write_only_pii = {"contact_mobile": lambda: forms.CharField(max_length=11, validators=[v.mobile]),
                      "contact_email": lambda: forms.EmailField(max_length=254)}
    list_display = ("name", "alipay_account", "contact_name", "contact_mobile", "alipay_user_id", "token_state",
                    "token_expires_at", "created_at")
    list_filter = ("token_state",)
    search_fields = ("name", "=alipay_account", "=alipay_user_id")
    actions = ["refresh_token_now", "exchange_code"]

    def get_fieldsets(self, request, obj=None):
        contact = ("contact_name", "new_contact_mobile", "new_contact_email") if obj is None else (
            "contact_name", "contact_mobile", "new_contact_mobile", "contact_email", "new_contact_email")
        sets = [(None, {"fields": ("name", "alipay_account", "shop")}), (_("Contact"), {"fields": contact})]
        if obj is not None:
            sets.append((_("Authorisation"), {"fields": (
                "alipay_user_id", "auth_app_id", "token_state", "app_auth_token", "token_expires_at",
                "app_refresh_token", "refresh_expires_at", "token_refresh_at", "token_error")}))
        return self.arranged(request, obj, sets)

    def get_readonly_fields(self, request, obj=None):
        base = ["alipay_user_id", "auth_app_id", "token_state", "token_expires_at", "refresh_expires_at",
                "token_refresh_at", "token_error"]
        return [*super().get_readonly_fields(request, obj), *base]

    @admin.action(description=_("Refresh the authorisation token now"), permissions=["change"])
    def refresh_token_now(self, request, queryset):
        done, errors = 0, []
        for m in queryset:
            state = merchant_refresh_token(merchant_id=m.pk, force=True)
            m.refresh_from_db()
            if state == "active" and not m.token_error:
                done += 1
            else:
                errors.append(f"{m.name}: {m.token_error or m.get_token_state_display()}")
        report(self, request, done, errors, _("Refreshed {n} token(s)."))

    @admin.action(description=_("Enter an authorisation code"), permissions=["change"])
    def exchange_code(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Choose exactly one merchant."), messages.ERROR)
            return None
        merchant = queryset.get()
        form = ExchangeCodeForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            try:
                merchant_exchange_code(merchant_id=merchant.pk, code=form.cleaned_data["code"])
            except PaymentsError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _("%(m)s is authorised.") % {"m": merchant.name}, messages.SUCCESS)
            return None
        return render(request, "admin/payments/action_form.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "form": form, "action": "exchange_code",
            "objects": [merchant], "title": _("Enter an authorisation code")})


EDITABLE = ("merchant", "shop_name", "province_code", "city_code", "district_code", "shop_address", "longitude",
            "latitude", "mcc_code", "rate", "sign_and_auth", "business_license_no", "date_limitation", "long_term",
            *PICTURE_FIELDS, "remark")


class ApplicationForm(forms.ModelForm):
    class Meta:
        model = FacetofaceApplication
        fields = EDITABLE
        widgets = {name: forms.ClearableFileInput(attrs={"accept": PICTURE_ACCEPT}) for name in PICTURE_FIELDS}


class AttentionFilter(admin.SimpleListFilter):
    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return (("yes", _("Needs attention")), ("no", _("No")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(needs_attention=True)
        if self.value() == "no":
            return queryset.filter(needs_attention=False)
        return queryset


@admin.register(FacetofaceApplication)
class FacetofaceApplicationAdmin(WriteOnlyPIIMixin, ModelAdmin):
    form = ApplicationForm
    change_form_template = "admin/payments/facetofaceapplication/change_form.html"
    pii_fields = ("business_license_mobile",)
    write_only_pii = {"business_license_mobile": lambda: forms.CharField(max_length=11, validators=[v.mobile])}
    list_display = ("id", "shop_name", "merchant_name", "status_badge", "alipay_status", "attention",
                    "query_count", "last_query_at", "due_at", "created_at")
    list_display_links = ("id", "shop_name")
    list_filter = ("status", AttentionFilter)
    search_fields = ("shop_name", "merchant_name", "=batch_no", "=order_no")
    list_select_related = ("merchant",)
    show_full_result_count = False
    date_hierarchy = "created_at"
    actions = ["submit", "query_now", "cancel_submission", "withdraw"]
    # The same services as buttons: on each row, and on the application's page (the status moves only through
    # them; each is guarded by the change permission, like the list's actions).
    actions_row = ["query_now_row"]
    actions_detail = ["query_now_detail", "submit_detail", "cancel_submission_detail", "withdraw_detail"]
    editable = EDITABLE
    progress = ("status_badge", "alipay_status", "attention_shown", "confirm_link", "reject_reason", "last_error",
                "batch_no", "order_no", "submit_step", "submitted_at", "query_count", "last_query_at", "due_at",
                "finished_at", "created_by", "created_at")

    def get_fieldsets(self, request, obj=None):
        shop = ("shop_name", ("province_code", "city_code", "district_code"), "shop_address",
                ("longitude", "latitude"))
        new = ("new_business_license_mobile",) if self._editable(obj) else ()
        licence = ("business_license_no", *(("business_license_mobile",) if obj else ()), *new, "date_limitation",
                   "long_term")
        sets = [
            (None, {"fields": ("merchant", "mcc_code", "rate", "sign_and_auth", "remark")}),
            (_("Shop"), {"fields": shop}),
            (_("Business licence"), {"fields": licence}),
            (_("Pictures"), {"fields": PICTURE_FIELDS if self._editable(obj) else ("pictures",),
                             "description": _("png, bmp, gif, jpg or jpeg, 5 KB to 5 MB each. The shop's "
                                              "interior and sign are required; the licence picture too when a "
                                              "licence number is given.")}),
        ]
        if obj is not None:
            sets.insert(0, (_("Progress"), {"fields": self.progress}))
        return self.arranged(request, obj, sets)

    def get_inlines(self, request, obj):
        return [] if obj is None else [AlipayCallInline]

    def _editable(self, obj) -> bool:
        return obj is None or obj.status in RESUBMITTABLE

    def get_readonly_fields(self, request, obj=None):
        names = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            names += [n for n in self.progress if n not in names]
            if not self._editable(obj):
                names += [n for n in (*self.editable, "pictures") if n not in names and n not in PICTURE_FIELDS]
        return names

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status == "init")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.merchant_name = obj.merchant_name or obj.merchant.name
        super().save_model(request, obj, form, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["show_submit_to_alipay"] = self._editable(obj) and self.has_change_permission(request, obj)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def _after_save(self, request, obj):
        """"Save and submit": the admin saves inside a transaction, and no platform call is made inside one,
        so the submission runs once the save has committed (still in this request, reported as messages)."""
        if "_submit_to_alipay" in request.POST:
            transaction.on_commit(lambda: self._each(
                request, FacetofaceApplication.objects.filter(pk=obj.pk), application_submit,
                _("Submitted {n} application(s).")))

    def response_add(self, request, obj, post_url_continue=None):
        self._after_save(request, obj)
        if "_submit_to_alipay" in request.POST:
            return self.response_post_save_change(request, obj)
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        self._after_save(request, obj)
        if "_submit_to_alipay" in request.POST:
            return self.response_post_save_change(request, obj)
        return super().response_change(request, obj)

    # --- displays ---------------------------------------------------------------------------------------
    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return badge(obj)

    @admin.display(description=_("attention"), boolean=True, ordering="needs_attention")
    def attention(self, obj):
        return obj.needs_attention

    @admin.display(description=_("needs attention"))
    def attention_shown(self, obj):
        if not obj.needs_attention:
            return "—"
        return format_html('<b style="color:#c0392b">{}</b>', obj.attention_reason or _("yes"))

    @admin.display(description=_("merchant confirmation link"))
    def confirm_link(self, obj):
        if not obj.confirm_url:
            return "—"
        return format_html('<a href="{0}" target="_blank" rel="noopener noreferrer">{0}</a><br>{1}', obj.confirm_url,
                           _("Sent to the merchant's contact; the merchant opens it in Alipay to confirm."))

    @admin.display(description=_("pictures"))
    def pictures(self, obj):
        rows = [(reverse("admin:payments_facetofaceapplication_picture", args=[obj.pk, name]),
                 obj._meta.get_field(name).verbose_name) for name in PICTURE_FIELDS if getattr(obj, name)]
        return format_html_join(" · ", '<a href="{}" target="_blank">{}</a>', rows) or "—"

    # --- pictures are private: served to staff who may see the application ----------------------------
    def get_urls(self):
        return [path("<int:pk>/picture/<str:name>/", self.admin_site.admin_view(self.picture_view),
                     name="payments_facetofaceapplication_picture"), *super().get_urls()]

    def picture_view(self, request, pk: int, name: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        if name not in PICTURE_FIELDS:
            raise Http404
        app = get_object_or_404(FacetofaceApplication, pk=pk)
        fieldfile = getattr(app, name)
        if not fieldfile:
            raise Http404
        try:
            return FileResponse(fieldfile.open("rb"), filename=f"{app.pk}-{name}{PurePath(fieldfile.name).suffix}")
        except OSError:
            raise Http404 from None

    # --- actions ------------------------------------------------------------------------------------------
    def _each(self, request, queryset, fn, what):
        done, errors = 0, []
        for app in queryset.order_by("pk"):
            try:
                result = fn(application_id=app.pk)
            except PaymentsError as exc:
                errors.append(f"#{app.pk} {app.shop_name}: {exc}")
                continue
            if result.last_error and result.status in ("init", "submitting"):
                errors.append(f"#{app.pk} {app.shop_name}: {result.get_status_display()} — {result.last_error}")
            else:
                done += 1
        report(self, request, done, errors, what)

    @admin.action(description=_("Submit to Alipay"), permissions=["change"])
    def submit(self, request, queryset):
        self._each(request, queryset, application_submit, _("Submitted {n} application(s)."))

    @admin.action(description=_("Query Alipay now"), permissions=["change"])
    def query_now(self, request, queryset):
        self._each(request, queryset, application_run_now, _("Queried {n} application(s)."))

    def _one(self, request, object_id, fn, what):
        self._each(request, self.get_queryset(request).filter(pk=object_id), fn, what)
        return redirect(request.META.get("HTTP_REFERER") or
                        reverse("admin:payments_facetofaceapplication_change", args=[object_id]))

    @action(description=_("Query Alipay now"), permissions=["change"], icon="sync")
    def query_now_row(self, request, object_id):
        return self._one(request, object_id, application_run_now, _("Queried {n} application(s)."))

    @action(description=_("Query Alipay now"), permissions=["change"], icon="sync")
    def query_now_detail(self, request, object_id):
        return self._one(request, object_id, application_run_now, _("Queried {n} application(s)."))

    @action(description=_("Submit to Alipay"), permissions=["change"], icon="send")
    def submit_detail(self, request, object_id):
        return self._one(request, object_id, application_submit, _("Submitted {n} application(s)."))

    @action(description=_("Cancel the submission"), permissions=["change"], icon="cancel")
    def cancel_submission_detail(self, request, object_id):
        return self._one(request, object_id, application_cancel_submission, _("Cancelled {n} submission(s)."))

    @action(description=_("Withdraw (close) the application"), permissions=["change"], icon="block")
    def withdraw_detail(self, request, object_id):
        return self._one(request, object_id, application_withdraw, _("Withdrew {n} application(s)."))

    @admin.action(description=_("Cancel the submission"), permissions=["change"])
    def cancel_submission(self, request, queryset):
        self._each(request, queryset, application_cancel_submission, _("Cancelled {n} submission(s)."))

    @admin.action(description=_("Withdraw (close) the application"), permissions=["change"])
    def withdraw(self, request, queryset):
        self._each(request, queryset, application_withdraw, _("Withdrew {n} application(s)."))


@admin.register(AlipayCall)
class AlipayCallAdmin(ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("created_at", "method", "outcome", "code", "sub_code", "message", "application", "trade",
                    "refund", "duration_ms")
    list_filter = ("outcome", "method")
    search_fields = ("=sub_code",)
    list_select_related = ("application", "trade", "refund")
    show_full_result_count = False
    fields = ("created_at", "method", "outcome", "code", "sub_code", "message", "duration_ms", "merchant",
              "application", "trade", "refund", "request_shown", "answer_shown")
    readonly_fields = fields

    @admin.display(description=_("request"))
    def request_shown(self, obj):
        return pretty_json(obj.request or {})

    @admin.display(description=_("answer"))
    def answer_shown(self, obj):
        return pretty_json(obj.answer or {})
