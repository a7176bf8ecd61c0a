"""Daily order figures for the dashboard's chart, without reading a month of orders on every view.

A day that has ended (with a margin for transactions still committing at midnight) is summed once and kept in
`DailyOrderStats`; later views read its row. Today is summed live over the `created_at` index. The number of
queries is the same whatever the number of orders: one read of the kept days, one grouped sum over the days
still missing (plus one insert) when there are any, one sum for the open days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

CLOSE_MARGIN = timedelta(minutes=10)


@dataclass
class Day:
    day: date
    orders: int
    amount: Decimal


def _local_midnight(day: date):
    return timezone.make_aware(timezone.datetime(day.year, day.month, day.day))


def _sum_days(first: date, last: date) -> dict[date, tuple[int, Decimal]]:
    """Orders and amount per local day from `first` to `last` included: one grouped query."""
    from orders.models import Order

    rows = (Order.objects.filter(created_at__gte=_local_midnight(first),
                                 created_at__lt=_local_midnight(last + timedelta(days=1)))
            .annotate(day=TruncDate("created_at")).values("day")
            .annotate(n=Count("id"), amount=Sum("amount")).order_by())
    return {r["day"]: (r["n"], r["amount"] or Decimal("0")) for r in rows}


def daily_order_stats(days: int) -> list[Day]:
    """The last `days` local days, oldest first, today included."""
    from .models import DailyOrderStats

    now = timezone.localtime()
    today = now.date()
    first = today - timedelta(days=days - 1)
    open_from = (now - CLOSE_MARGIN).date()  # days from here on may still change: counted live
    kept = {row.day: (row.orders, row.amount)
            for row in DailyOrderStats.objects.filter(day__gte=first, day__lt=open_from)}
    missing = [first + timedelta(days=i) for i in range((open_from - first).days)
               if first + timedelta(days=i) not in kept]
    if missing:
        summed = _sum_days(missing[0], missing[-1])
        fresh = {d: summed.get(d, (0, Decimal("0"))) for d in missing}
        DailyOrderStats.objects.bulk_create(
            [DailyOrderStats(day=d, orders=n, amount=a) for d, (n, a) in fresh.items()], ignore_conflicts=True)
        kept.update(fresh)
    kept.update(_sum_days(open_from, today))
    return [Day(first + timedelta(days=i), *kept.get(first + timedelta(days=i), (0, Decimal("0"))))
            for i in range(days)]


def rebuild_daily_order_stats() -> int:
    """Forget the kept days (after orders were loaded with past dates, e.g. a backfill or a benchmark's data):
    the next dashboard view sums them again."""
    from .models import DailyOrderStats

    n, _ = DailyOrderStats.objects.all().delete()
    return n
