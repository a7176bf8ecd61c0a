"""Import and export in the admin.

- `ProductResource` (django-import-export): products from CSV/XLSX, matched on (shop name, item ID); the
  preview shows every row's change and each bad row's errors (Product.full_clean through
  `orders.services.product_save`, which every product save goes through). Stock is not imported: a new
  product starts unlimited, and stock moves only by stock movements (the list's "调整库存").
- `stream_csv`: a streamed CSV of a queryset (orders, shipments) — rows are read with `.iterator()` and
  written as they come, so a year of orders never sits in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, time, timedelta

from django import forms
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from accounts.models import Shop

from .models import Product
from .services import product_save

CHUNK = 2000


class ProductResource(resources.ModelResource):
    shop = fields.Field(attribute="shop", column_name="shop", widget=widgets.ForeignKeyWidget(Shop, "name"))

    class Meta:
        model = Product
        import_id_fields = ("shop", "item_id")
        fields = ("shop", "item_id", "title", "kind", "auto_ship", "ship_delay_min", "ship_delay_max",
                  "delivery_way", "card_kind_id", "staff_confirms_shipping", "delivery_template", "needs_kyc",
                  "low_stock_threshold", "is_active")
        export_order = fields
        clean_model_instances = True  # full_clean per row: its errors are the row's errors in the preview
        skip_unchanged = True
        report_skipped = True

    def do_instance_save(self, instance, is_create):
        product_save(product=instance)  # the service: full_clean (delivery rules, template sandbox), then save


class _Echo:
    def write(self, value):
        return value


def local(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def stream_csv(rows: Iterable, columns: list[tuple[str, Callable]], filename: str) -> StreamingHttpResponse:
    """A CSV download written row by row (UTF-8 with BOM, so Excel opens the Chinese right)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow([str(title) for title, _get in columns])
        for row in rows:
            yield writer.writerow([get(row) for _title, get in columns])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


ORDER_COLUMNS = [
    (_("Order no."), lambda o: o.platform_order_id),
    (_("Shop"), lambda o: o.shop.name),
    (_("Item ID"), lambda o: o.item_id),
    (_("Item"), lambda o: o.item_title),
    (_("Quantity"), lambda o: o.quantity),
    (_("Amount (yuan)"), lambda o: o.amount),
    (_("Status"), lambda o: o.get_status_display()),
    (_("Anomaly"), lambda o: _("Yes") if o.has_anomaly else ""),
    (_("Created"), lambda o: local(o.created_at)),
    (_("Paid"), lambda o: local(o.paid_at)),
    (_("Shipped"), lambda o: local(o.shipped_at)),
    (_("Closed"), lambda o: local(o.closed_at)),
]

SHIPMENT_COLUMNS = [
    (_("Order no."), lambda s: s.order.platform_order_id),
    (_("Shop"), lambda s: s.order.shop.name),
    (_("Item"), lambda s: s.order.item_title),
    (_("Status"), lambda s: s.get_status_display()),
    (_("Shipping method"), lambda s: s.get_method_display()),
    (_("Attempts"), lambda s: s.attempts),
    (_("Due"), lambda s: local(s.due_at)),
    (_("Shipped"), lambda s: local(s.shipped_at)),
    (_("Courier"), lambda s: s.logistics_company),
    (_("Waybill no."), lambda s: s.waybill_no),
    (_("Reason / error"), lambda s: (s.manual_reason or s.last_error)[:200]),
]


class ExportRangeForm(forms.Form):
    since = forms.DateField(label=_("From (day, included)"), widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To (day, included)"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError(_("The first day is after the last day."))
        return data


def export_view(model_admin, request, *, queryset, date_field: str, columns, name: str):
    """GET without dates: the form. GET with a valid range: the streamed CSV of the rows whose `date_field`
    falls in the range (local days, both included), oldest first, read in chunks with `.iterator()`."""
    form = ExportRangeForm(request.GET if "since" in request.GET else None)
    if form.is_bound and form.is_valid():
        since, until = form.cleaned_data["since"], form.cleaned_data["until"]
        start = timezone.make_aware(datetime.combine(since, time.min))
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))
        rows = queryset.filter(**{f"{date_field}__gte": start, f"{date_field}__lt": end}).order_by(date_field, "pk")
        return stream_csv(rows.iterator(chunk_size=CHUNK), columns, f"{name}-{since:%Y%m%d}-{until:%Y%m%d}.csv")
    return render(request, "admin/orders/export.html", {
        **model_admin.admin_site.each_context(request), "opts": model_admin.model._meta, "form": form,
        "title": _("Export %(what)s as CSV") % {"what": model_admin.model._meta.verbose_name_plural}})
