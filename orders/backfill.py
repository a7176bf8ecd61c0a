"""Backfill: bring a shop's orders in from its platform, as one recorded run (BackfillRun).

Where a run starts (`backfill_window`):
- with a list API (闲管家, sandbox: `adapter.list_cap`), from the end of the shop's last successful continuous
  run (minus OVERLAP, for clocks that disagree), else — the first run — from the oldest time the list
  reaches (`adapter.list_window`: 闲管家 lists orders updated in the last 6 months). An explicit `since`
  older than that is moved up to it.
- without one (open platform), every order we know that is not final is queried again, whatever the last run
  did: a missed message is exactly what leaves an order behind, and only a query finds it. An explicit
  `since` narrows this to orders we updated since then.
A run is successful when it reached its end without a platform error, with every order synced; a run that
stops midway (platform error, Ctrl-C, a crash) or had failing orders is recorded as failed and does not move
the next run's start.

The list path splits [since, until] until each slice holds fewer orders than the paging cap, then pages
through each slice; `_sync_page` brings one page of orders in. Progress goes to `progress(report)` after
every page (and the report says which slice, how many pages, orders, orders/s and, when the total is known,
the ETA).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Max
from django.utils import timezone

from accounts.models import Shop

from .adapters import get_adapter
from .adapters.base import OrderSnapshot
from .models import FINAL_STATES, BackfillRun, Order
from .services import SyncResult, order_refresh, order_sync_page

# A run continuing from the last one starts this much before its end: the platform's clock and ours may
# disagree a little, and syncing an order twice changes nothing.
OVERLAP = timedelta(minutes=10)


@dataclass
class BackfillReport:
    seen: int = 0
    created: int = 0
    changed: int = 0
    anomalies: int = 0
    errors: int = 0
    slices: int = 0
    pages: int = 0
    total: int | None = None             # orders the run expects to see, once known
    slice: tuple[datetime, datetime] | None = None
    slice_total: int = 0
    problems: list[str] = field(default_factory=list)   # one line per failed order (first 100)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Orders per second so far."""
        return self.seen / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> timedelta | None:
        """Time left at the current rate, when the total is known."""
        if self.total is None or not self.rate:
            return None
        return timedelta(seconds=round(max(0, self.total - self.seen) / self.rate))

    def count(self, result: SyncResult) -> None:
        self.seen += 1
        self.created += result.created
        self.changed += bool(result.applied)
        self.anomalies += result.outcome == "anomaly"

    def fail(self, order_no: str, exc: Exception) -> None:
        self.errors += 1
        if len(self.problems) < 100:
            self.problems.append(f"{order_no}: {exc.__class__.__name__}: {exc}")


@dataclass(frozen=True)
class Window:
    since: datetime | None   # None: every non-final order we know (no list API)
    until: datetime
    continuous: bool
    note: str = ""


def backfill_checkpoint(shop: Shop) -> datetime | None:
    """The end of the shop's last successful continuous run (where the next run may start), or None."""
    return (BackfillRun.objects.filter(shop=shop, status=BackfillRun.Status.SUCCEEDED, continuous=True)
            .aggregate(end=Max("until"))["end"])


def backfill_window(*, shop: Shop, since: datetime | None = None, until: datetime | None = None,
                    full: bool = False, now: datetime | None = None) -> Window:
    """The range a run covers, by the rules in the module docstring. `full`: ignore the last run and cover
    the whole reachable window. Raises ValueError for an empty range."""
    now = now or timezone.now()
    until = until or now
    adapter = get_adapter(shop)
    if adapter.list_cap is None:
        if since is not None and since >= until:
            raise ValueError("the start must be before the end")
        return Window(since, until, continuous=False,
                      note="no order list on this platform: re-querying every order we know that is not final"
                           + (f", updated here since {since:%Y-%m-%d %H:%M:%S}" if since else ""))
    reach = now - adapter.list_window if adapter.list_window else None
    checkpoint = backfill_checkpoint(shop)
    notes = []
    if since is None:
        if checkpoint is not None and not full:
            since = checkpoint - OVERLAP
            notes.append(f"continuing from the last successful backfill (to {checkpoint:%Y-%m-%d %H:%M:%S})")
        elif reach is not None:
            since = reach
            notes.append(f"covering the platform's whole reachable window ({adapter.list_window.days} days)")
        else:
            raise ValueError("this platform's list has no oldest reachable time: give --since")
    if reach is not None and since < reach:
        notes.append(f"start moved up from {since:%Y-%m-%d %H:%M:%S} to {reach:%Y-%m-%d %H:%M:%S}: the platform "
                     f"lists orders updated in the last {adapter.list_window.days} days only")
        since = reach
    if since >= until:
        raise ValueError("the start must be before the end")
    # Its end becomes the next start only if it leaves no gap behind the last one (or behind the oldest
    # reachable time: nothing older can be fetched anyway).
    continuous = (reach is not None and since <= reach) or (checkpoint is not None and since <= checkpoint)
    return Window(since, until, continuous, "; ".join(notes))


def order_backfill(*, shop: Shop, since: datetime | None = None, until: datetime | None = None,
                   full: bool = False, progress: Callable[[BackfillReport], None] | None = None,
                   window: Window | None = None) -> tuple[BackfillRun, BackfillReport]:
    """Run one backfill of the shop's orders (safe to run again) and record it. Platform errors propagate
    after the run is recorded as failed."""
    window = window or backfill_window(shop=shop, since=since, until=until, full=full)
    run = BackfillRun.objects.create(shop=shop, since=window.since, until=window.until,
                                     continuous=window.continuous)
    report = BackfillReport()
    tick = progress or (lambda _report: None)
    try:
        if get_adapter(shop).list_cap is None:
            _requery_known(shop, window, report, tick)
        else:
            _walk_list(shop, window, report, tick)
    except BaseException as exc:
        _finish(run, report, BackfillRun.Status.FAILED,
                f"stopped: {exc.__class__.__name__}: {exc}" if str(exc) else f"stopped: {exc.__class__.__name__}")
        raise
    ok = report.errors == 0
    _finish(run, report, BackfillRun.Status.SUCCEEDED if ok else BackfillRun.Status.FAILED,
            "" if ok else f"{report.errors} orders failed:\n" + "\n".join(report.problems))
    return run, report


def _finish(run: BackfillRun, report: BackfillReport, status: str, message: str) -> None:
    for name in ("seen", "created", "changed", "anomalies", "errors", "slices", "pages"):
        setattr(run, name, getattr(report, name))
    run.status, run.message, run.finished_at = status, message[:10000], timezone.now()
    run.save()


def _requery_known(shop: Shop, window: Window, report: BackfillReport, tick) -> None:
    """No list API: query each non-final order we know again, one by one."""
    qs = Order.objects.filter(shop=shop).exclude(status__in=FINAL_STATES)
    if window.since is not None:
        qs = qs.filter(updated_at__gte=window.since)
    report.total = qs.count()
    for n, order in enumerate(qs.order_by("pk").iterator(), 1):
        try:
            report.count(order_refresh(order=order))
        except Exception as exc:  # one bad order must not stop the rest; the run is then not successful
            report.fail(order.platform_order_id, exc)
        if n % 100 == 0 or n == report.total:
            report.pages += 1
            tick(report)


def _walk_list(shop: Shop, window: Window, report: BackfillReport, tick) -> None:
    """Split [since, until] under the paging cap, then page through each slice, oldest first."""
    adapter = get_adapter(shop)
    size = adapter.list_page_size
    stack = [(window.since, window.until)]
    while stack:
        start, end = stack.pop()
        first = adapter.list_orders(start=start, end=end, page_no=1, page_size=size)
        if report.total is None:
            report.total = first.total  # the whole window's count: the first query is over all of it
        if first.total >= adapter.list_cap and (end - start).total_seconds() > 1:
            mid = start + (end - start) / 2
            stack.extend([(mid, end), (start, mid)])
            continue
        report.slices += 1
        report.slice, report.slice_total = (start, end), first.total
        page, page_no = first, 1
        while True:
            _sync_page(shop, page.items, report)
            report.pages += 1
            tick(report)
            if page_no * size >= page.total or not page.items:
                break
            page_no += 1
            page = adapter.list_orders(start=start, end=end, page_no=page_no, page_size=size)


def _sync_page(shop: Shop, items: list[OrderSnapshot], report: BackfillReport) -> None:
    """Bring one page of listed orders into our machine: in bulk, with `order_sync` for each order that needs
    more than rows (orders.services.order_sync_page). A failing order does not stop the rest."""
    for snap, result in order_sync_page(shop=shop, snapshots=items, source="backfill"):
        if isinstance(result, Exception):  # the run is then not successful
            report.fail(snap.platform_order_id, result)
        else:
            report.count(result)
