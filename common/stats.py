"""Daily figures for the dashboard, without reading a month of orders on every view (DailyOrderStats).

A day that has ended (with a margin for transactions still committing at midnight) is summed once and kept;
today is summed live over indexed columns (orders' `created_at`, shipments' `due_at`). The auto-ship outcome of
recent days can still move (a retry succeeds, staff take over), so the periodic task `refresh_daily_stats`
sums the last `REFRESH_DAYS` closed days again every few minutes. The number of queries is the same whatever the
number of orders: one read of the kept days, the sums of the days still missing (and one insert) when there
are any, the sums of the open days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

CLOSE_MARGIN = timedelta(minutes=10)
REFRESH_DAYS = 8


@dataclass
class Day:
    day: date
    orders: int = 0
    amount: Decimal = Decimal("0")
    auto_shipped: int = 0
    ship_failed: int = 0


def _local_midnight(day: date):
    return timezone.make_aware(timezone.datetime(day.year, day.month, day.day))


def _sum_days(first: date, last: date) -> dict[date, Day]:
    """Every figure per local day from `first` to `last` included: two grouped queries."""
    from orders.models import Order
    from shipping.models import Shipment, ShipmentStatus

    start, end = _local_midnight(first), _local_midnight(last + timedelta(days=1))
    days = {first + timedelta(days=i): Day(first + timedelta(days=i)) for i in range((last - first).days + 1)}
    for r in (Order.objects.filter(created_at__gte=start, created_at__lt=end)
              .annotate(day=TruncDate("created_at")).values("day")
              .annotate(n=Count("id"), amount=Sum("amount")).order_by()):
        days[r["day"]].orders, days[r["day"]].amount = r["n"], r["amount"] or Decimal("0")
    for r in (Shipment.objects.filter(due_at__gte=start, due_at__lt=end)
              .annotate(day=TruncDate("due_at")).values("day")
              .annotate(ok=Count("id", filter=Q(status=ShipmentStatus.SHIPPED, method=Shipment.Method.AUTO)),
                        failed=Count("id", filter=Q(status__in=[ShipmentStatus.FAILED,
                                                                ShipmentStatus.AWAITING_STAFF])))
              .order_by()):
        days[r["day"]].auto_shipped, days[r["day"]].ship_failed = r["ok"], r["failed"]
    return days


def _open_from() -> date:
    """The first day that may still gain orders: counted live."""
    return (timezone.localtime() - CLOSE_MARGIN).date()


def _keep(days: dict[date, Day], *, replace: bool) -> None:
    from .models import DailyOrderStats

    rows = [DailyOrderStats(day=d.day, orders=d.orders, amount=d.amount, auto_shipped=d.auto_shipped,
                            ship_failed=d.ship_failed) for d in days.values()]
    if replace:
        DailyOrderStats.objects.bulk_create(rows, update_conflicts=True, unique_fields=["day"],
                                            update_fields=["orders", "amount", "auto_shipped", "ship_failed",
                                                           "computed_at"])
    else:
        DailyOrderStats.objects.bulk_create(rows, ignore_conflicts=True)


def daily_stats(days: int) -> list[Day]:
    """The last `days` local days, oldest first, today included."""
    from .models import DailyOrderStats

    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    open_from = max(_open_from(), first)
    kept = {row.day: Day(row.day, row.orders, row.amount, row.auto_shipped, row.ship_failed)
            for row in DailyOrderStats.objects.filter(day__gte=first, day__lt=open_from)}
    missing = [first + timedelta(days=i) for i in range((open_from - first).days)
               if first + timedelta(days=i) not in kept]
    if missing:
        fresh = {d: day for d, day in _sum_days(missing[0], missing[-1]).items() if d in missing}
        _keep(fresh, replace=False)
        kept.update(fresh)
    kept.update(_sum_days(open_from, today))
    return [kept.get(first + timedelta(days=i)) or Day(first + timedelta(days=i)) for i in range(days)]


def refresh_daily_stats(days: int = REFRESH_DAYS, window: int = 30) -> int:
    """Sum the last `days` closed days again (their shipments' outcomes may have moved), and any day of the last
    `window` not kept yet (so that no dashboard view pays for them); returns the days summed."""
    daily_stats(window)
    open_from = _open_from()
    fresh = _sum_days(open_from - timedelta(days=days), open_from - timedelta(days=1))
    _keep(fresh, replace=True)
    return len(fresh)


def rebuild_daily_stats() -> int:
    """Forget every kept day (after orders were loaded with past dates: a backfill, a benchmark's data); the next
    dashboard view sums them again."""
    from .models import DailyOrderStats

    n, _ = DailyOrderStats.objects.all().delete()
    return n
