"""What keeps the admin's big lists (orders, events, shipments) fast at a million rows.

- `EstimatedCountPaginator`: no `COUNT(*)` over the whole table. Unfiltered, the count is PostgreSQL's own
  estimate (`pg_class.reltuples`, kept by autovacuum/ANALYZE); filtered, the count stops at `COUNT_CAP`
  (a `COUNT(*)` over `LIMIT cap + 1`), so a broad filter costs at most a bounded index scan.
- `DayRangeFilter`: a from/to day range on a datetime column, both days included in Shanghai time, as
  plain `>=` / `<` comparisons an index on the column serves (no `date_trunc`, no per-day `DISTINCT` like
  `date_hierarchy` needs).
- `BigListMixin`: the settings every big list shares.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.core.validators import EMPTY_VALUES
from django.db import connections
from django.utils import timezone
from django.utils.functional import cached_property
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.utils import parse_date_str

COUNT_CAP = 10_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        qs = self.object_list
        connection = connections[qs.db]
        if not qs.query.where and connection.vendor == "postgresql":
            # One query whatever the size: the estimate when the table is big, else a bounded count.
            table = qs.model._meta.db_table
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT CASE WHEN c.reltuples > %s THEN c.reltuples::bigint "
                    f"ELSE (SELECT COUNT(*) FROM (SELECT 1 FROM {connection.ops.quote_name(table)} LIMIT %s) s) END "
                    "FROM pg_class c WHERE c.oid = %s::regclass", [COUNT_CAP, COUNT_CAP + 1, table])
                row = cur.fetchone()
            if row is not None:
                return int(row[0])
        return qs.order_by()[: COUNT_CAP + 1].count()


class DayRangeFilter(RangeDateFilter):
    """From day … to day (both included, local time) on a DateTimeField."""

    def queryset(self, request, queryset):
        filters = {}
        for suffix, lookup, shift in (("_from", "gte", 0), ("_to", "lt", 1)):
            value = self.used_parameters.get(f"{self.parameter_name}{suffix}")
            if value in EMPTY_VALUES or not isinstance(value, str):
                continue
            day = parse_date_str(value)
            if day is None:
                return queryset.none()
            filters[f"{self.parameter_name}__{lookup}"] = timezone.make_aware(
                datetime.combine(day + timedelta(days=shift), time.min))
        return queryset.filter(**filters)


class BigListMixin:
    """A list over a table that grows without bound."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    list_filter_submit = True  # unfold: filters apply together with one button (the date range needs it)


def _cache_unfold_headers() -> None:
    """unfold (0.91) recomputes every column header for every cell's `data-label` (`items_for_result` calls
    `result_headers(cl)` once per row): at 50 rows that is 50 header passes, a third of a list's render
    time. The headers depend only on the ChangeList, so they are computed once per ChangeList (a
    per-request object; nothing is kept on the ModelAdmin)."""
    from unfold.templatetags import unfold_list

    original = unfold_list.result_headers
    if getattr(original, "cached_per_changelist", False):
        return

    def result_headers(cl):
        headers = getattr(cl, "_unfold_result_headers", None)
        if headers is None:
            headers = cl._unfold_result_headers = list(original(cl))
        return iter(headers)

    result_headers.cached_per_changelist = True
    unfold_list.result_headers = result_headers


_cache_unfold_headers()


class ViewOnlyFormMixin:
    """An admin whose fields are all read-only but whose staff may act (actions need the change
    permission): the object's page is a view — titled so, without save buttons."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        from django.utils.translation import gettext

        extra = {"show_save": False, "show_save_and_continue": False, "show_save_and_add_another": False}
        if object_id:
            extra["title"] = gettext("View %s") % self.opts.verbose_name
        return super().changeform_view(request, object_id, form_url, {**extra, **(extra_context or {})})
