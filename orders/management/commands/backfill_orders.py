import time
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from common.http import PlatformError
from orders.services import order_backfill

from ._common import shop_by_ref


def _when(value: str, *, end: bool = False) -> datetime:
    dt = parse_datetime(value)
    if dt is None:
        d = parse_date(value)
        if d is None:
            raise CommandError(f"not a date or datetime: {value!r} (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)")
        dt = datetime.combine(d, datetime.max.time() if end else datetime.min.time())
    return timezone.make_aware(dt) if timezone.is_naive(dt) else dt


class Command(BaseCommand):
    help = ("Backfill a shop's orders: 闲管家 by its order list (time range split under the 10,000 paging cap); "
            "the open platform by re-querying the shop's non-final orders. Safe to run twice.")

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="shop id, app key or name")
        parser.add_argument("--since", help="start (YYYY-MM-DD[ HH:MM:SS]); default 30 days ago")
        parser.add_argument("--until", help="end; default now")

    def handle(self, *args, shop, since, until, **options):
        shop = shop_by_ref(shop)
        end = _when(until, end=True) if until else timezone.now()
        start = _when(since) if since else end - timedelta(days=30)
        if start >= end:
            raise CommandError("--since must be before --until")
        t0 = time.monotonic()
        try:
            report = order_backfill(shop=shop, since=start, until=end,
                                    log_fn=lambda m: self.stdout.write(f"  {m}"))
        except PlatformError as exc:
            raise CommandError(f"platform error: {exc}") from exc
        secs = time.monotonic() - t0
        rate = report.seen / secs if secs else 0
        self.stdout.write(self.style.SUCCESS(
            f"{shop}: {report.seen} orders seen, {report.created} new, {report.changed} changed, "
            f"{report.anomalies} anomalies, {report.errors} errors, {report.slices} slices "
            f"in {secs:.1f}s ({rate:.0f}/s)"))
        if report.errors:
            raise CommandError(f"{report.errors} orders failed (see above)")
