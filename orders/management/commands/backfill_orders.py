"""manage.py backfill_orders: bring a shop's orders in from its platform (orders.backfill)."""

import time
from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from common.cli import text_arg
from common.http import PlatformError
from orders.backfill import BackfillReport, backfill_window, order_backfill

from ._common import shop_by_ref

PROGRESS_EVERY = 5.0  # seconds between progress lines within a slice


def _shown(dt: datetime) -> str:
    """A time as the operator reads it: Shanghai time (TIME_ZONE), like the arguments."""
    return f"{timezone.localtime(dt):%Y-%m-%d %H:%M:%S}"


def _when(value: str, *, end: bool = False) -> datetime:
    try:
        dt = parse_datetime(value)
        if dt is None:
            d = parse_date(value)
            if d is None:
                raise ValueError("not a date")
            dt = datetime.combine(d, datetime.max.time() if end else datetime.min.time())
        return timezone.make_aware(dt) if timezone.is_naive(dt) else dt
    except (ValueError, OverflowError):
        raise CommandError(f"not a date or datetime: {value!r} (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)") from None


def _eta(report: BackfillReport) -> str:
    if report.total is None:
        return ""
    eta = report.eta
    return f" of {report.total}" + (f", ETA {eta}" if eta is not None else "")


class Command(BaseCommand):
    help = ("Backfill a shop's orders, recorded as a run. 闲管家 (and the sandbox): by its order list, the range split "
            "under the 10,000-record paging cap; without --since it continues from the shop's last successful "
            "backfill, or on the first run covers the whole window the list reaches (6 months). Open platform (no "
            "list API): every order we know that is not final is queried again. Safe to run twice.")

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, type=text_arg(100), help="shop id, app key or name")
        parser.add_argument("--since", type=text_arg(32),
                            help="start (YYYY-MM-DD[ HH:MM:SS]); default: the end of the last successful backfill, "
                                 "else the oldest time the platform's list reaches")
        parser.add_argument("--until", type=text_arg(32), help="end; default now")
        parser.add_argument("--full", action="store_true",
                            help="ignore the last backfill and cover the whole reachable window")

    def handle(self, *args, shop, since, until, full, **options):
        shop = shop_by_ref(shop)
        if full and since:
            raise CommandError("give either --since or --full, not both")
        try:
            window = backfill_window(shop=shop, since=_when(since) if since else None,
                                     until=_when(until, end=True) if until else None, full=full)
        except ValueError as exc:
            raise CommandError(f"{exc} (--since {since or 'default'}, --until {until or 'now'})") from exc
        start = _shown(window.since) if window.since else "every non-final order"
        self.stdout.write(f"{shop}: backfill {start} – {_shown(window.until)}")
        if window.note:
            self.stdout.write(f"  {window.note}")

        last = {"slice": None, "at": time.monotonic()}
        verbose = options.get("verbosity", 1) >= 2

        def progress(report: BackfillReport) -> None:
            now = time.monotonic()
            if report.slice is not None and report.slice != last["slice"]:
                last["slice"] = report.slice
                a, b = report.slice
                self.stdout.write(f"  slice {report.slices}: {_shown(a)} – {_shown(b)}, "
                                  f"{report.slice_total} orders")
            elif not verbose and now - last["at"] < PROGRESS_EVERY:
                return
            last["at"] = now
            self.stdout.write(f"  {report.pages} pages, {report.seen} orders{_eta(report)}, "
                              f"{report.rate:.0f} orders/s")

        try:
            run, report = order_backfill(shop=shop, window=window, progress=progress)
        except PlatformError as exc:
            raise CommandError(f"platform error, the run stopped (recorded as failed; the next run starts "
                               f"where the last successful one ended): {exc}") from exc
        for line in report.problems:
            self.stderr.write(f"  {line}")
        self.stdout.write(self.style.SUCCESS(
            f"{shop}: {report.seen} orders seen, {report.created} new, {report.changed} changed, "
            f"{report.anomalies} anomalies, {report.errors} errors, {report.slices} slices, {report.pages} pages "
            f"in {timedelta(seconds=round(report.elapsed))} ({report.rate:.0f} orders/s); run #{run.pk} {run.status}"))
        if report.errors:
            raise CommandError(f"{report.errors} orders failed (see above); the run is recorded as failed")
