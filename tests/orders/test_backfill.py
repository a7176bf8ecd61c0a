"""Backfill (orders.backfill, manage.py backfill_orders): from a fake 闲管家 order list split under its paging cap
and within its 6-month reach, continuing from the last successful run; from the open platform by re-querying
the orders we know."""

import io
import json
import re
import time
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.services import shop_upsert
from orders.adapters.base import OrderSnapshot
from orders.backfill import OVERLAP, backfill_checkpoint, order_backfill
from orders.models import BackfillRun, Order, OrderEvent
from orders.services import order_sync
from tests.fakes.xianguanjia import FakeXianguanjia

APP_KEY, SECRET = "xgj-bf", "xgj-bf-secret"
pytestmark = pytest.mark.django_db(transaction=True)
DAY = 86400


@pytest.fixture
def fake(settings):
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        yield server


@pytest.fixture
def shop(fake):
    return shop_upsert(platform="xianguanjia", name="回填店", app_key=APP_KEY, app_secret=SECRET)[0]


@pytest.fixture
def small_cap(fake, monkeypatch):
    """The platform's 10,000-record paging cap and 100-record pages, scaled down to 200 and 50, so that a test
    with a few hundred orders splits its range and pages through each slice."""
    from orders.adapters.xianguanjia import XianguanjiaAdapter

    fake.paging_cap = 200
    monkeypatch.setattr(XianguanjiaAdapter, "list_cap", 200)
    monkeypatch.setattr(XianguanjiaAdapter, "list_page_size", 50)


def backfill(*args) -> str:
    out = io.StringIO()
    call_command("backfill_orders", "--shop", APP_KEY, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def list_ranges(fake) -> list[tuple[int, int]]:
    """The update_time range of every list request the platform received, in order."""
    return [tuple(json.loads(r.body)["update_time"]) for r in fake.requests if r.path.endswith("/order/list")]


def test_backfill_of_hundreds_of_orders_twice_makes_no_duplicates(fake, shop, small_cap):
    end = int(time.time()) - 60
    fake.bulk_add(600, end - 7 * DAY, end)
    since = timezone.localtime(timezone.now() - timedelta(days=8))
    args = ["--since", f"{since:%Y-%m-%d %H:%M:%S}"]

    first = backfill(*args)
    assert Order.objects.count() == 600
    events = OrderEvent.objects.count()
    assert "600 orders seen, 600 new" in first

    second = backfill(*args)
    assert "600 orders seen, 0 new, 0 changed" in second  # a second run finds everything in place
    assert Order.objects.count() == 600 and OrderEvent.objects.count() == events
    assert fake.cap_violations == 0
    runs = list(BackfillRun.objects.order_by("pk"))
    # 600 orders under a 200-record cap: at least four slices, each announced in the output
    assert [r.status for r in runs] == ["succeeded", "succeeded"] and runs[1].slices >= 4
    assert second.count("  slice ") == runs[1].slices and runs[1].seen == 600 and runs[1].created == 0


def test_first_run_covers_six_months_then_the_next_continues_from_it(fake, shop):
    now = int(time.time())
    fake.add_order("5001", status=22, update_time=now - 170 * DAY)  # reachable: updated 170 days ago
    fake.add_order("5002", status=12, update_time=now - 3600)

    out = backfill()
    assert "whole reachable window (180 days)" in out
    assert set(Order.objects.values_list("platform_order_id", flat=True)) == {"5001", "5002"}
    first_start = list_ranges(fake)[0][0]
    assert abs(first_start - (now - 180 * DAY)) < 120 and fake.reach_violations == 0
    checkpoint = backfill_checkpoint(shop)
    assert checkpoint is not None

    requests_before = len(list_ranges(fake))
    fake.add_order("5003", status=12, update_time=int(time.time()))
    out = backfill()
    assert "continuing from the last successful backfill" in out
    start, _ = list_ranges(fake)[requests_before]
    assert start == int((checkpoint - OVERLAP).timestamp())
    assert Order.objects.filter(platform_order_id="5003").exists()
    assert "1 orders seen, 1 new" in out  # only 5003: what the first run saw is not fetched again


def test_a_run_that_stops_midway_does_not_move_the_next_start(fake, shop, small_cap):
    now = int(time.time())
    fake.bulk_add(400, now - 5 * DAY, now - 60)

    fell = []

    def platform_falls_over(report):  # called after each page: the next request fails
        if report.seen >= 100 and not fell:
            fell.append(report.seen)
            fake.fail_next(1, status=500)

    from common.http import PlatformError

    with pytest.raises(PlatformError):
        order_backfill(shop=shop, progress=platform_falls_over)
    run = BackfillRun.objects.get()
    assert run.status == "failed" and "500" in run.message and 0 < run.seen < 400
    assert backfill_checkpoint(shop) is None

    requests_before = len(list_ranges(fake))
    out = backfill()  # starts from the whole window again, not from where the failed run stopped
    assert "whole reachable window" in out
    assert abs(list_ranges(fake)[requests_before][0] - (now - 180 * DAY)) < 120
    assert Order.objects.count() == 400
    assert BackfillRun.objects.order_by("-pk").first().status == "succeeded"


def test_a_list_error_on_page_n_fails_the_run_after_the_pages_before_it_and_a_rerun_loses_nothing(fake, shop):
    """A list request failing midway stops the run (recorded as failed, the error raised to the caller) with
    exactly the pages before it written; the re-run brings in the rest, each order once. (It holds any page
    prefetching to the same rule: see the backfill section of bench/README.md.)"""
    from common.http import PlatformError
    from tests.fakes.server import Response

    now = int(time.time())
    fake.bulk_add(350, now - 5 * DAY, now - 60)  # one slice, pages of 100: 4 pages
    pages_asked, listing = [], fake._list

    def page_three_fails(body):
        pages_asked.append(body["page_no"])
        if body["page_no"] == 3 and pages_asked.count(3) == 1:
            return Response(502, {"code": 502, "msg": "bad gateway"})
        return listing(body)

    fake._list = page_three_fails
    with pytest.raises(PlatformError, match="502"):
        order_backfill(shop=shop)
    run = BackfillRun.objects.get()
    assert run.status == "failed" and "502" in run.message
    assert (run.pages, run.seen, run.created) == (2, 200, 200)
    assert Order.objects.count() == 200 and pages_asked == [1, 2, 3]  # page 4 never asked for
    assert backfill_checkpoint(shop) is None

    out = backfill()
    assert "350 orders seen, 150 new," in out  # the 200 already written are not new again
    assert Order.objects.count() == 350 and OrderEvent.objects.filter(kind="created").count() == 350
    assert BackfillRun.objects.order_by("-pk").first().status == "succeeded"


def test_an_explicit_start_older_than_the_platform_reaches_is_moved_up(fake, shop):
    out = backfill("--since", "2001-01-01")
    assert "start moved up from 2001-01-01" in out and fake.reach_violations == 0


def test_progress_shows_slices_pages_rate_and_eta(fake, shop, small_cap):
    now = int(time.time())
    fake.bulk_add(300, now - 2 * DAY, now - 60)
    out = io.StringIO()
    call_command("backfill_orders", "--shop", APP_KEY, "--verbosity", "2", stdout=out)
    text = out.getvalue()
    assert "  slice 1: " in text and "  slice 2: " in text
    assert "pages, " in text and " of 300, ETA " in text and "orders/s" in text
    assert "300 orders seen, 300 new" in text


def test_the_command_shows_times_in_shanghai_time(fake, shop):
    since = f"{timezone.localtime() - timedelta(days=2):%Y-%m-%d %H:%M:%S}"
    out = backfill("--since", since)  # until: now, which the run holds as an aware time
    shown_until = re.search(rf": backfill {since} – (\S+ \S+)", out).group(1)
    until = timezone.make_aware(datetime.strptime(shown_until, "%Y-%m-%d %H:%M:%S"))  # read as Shanghai time
    assert abs(until - timezone.now()) < timedelta(minutes=1)  # (in UTC it would be 8 hours off)


def test_open_platform_requeries_every_known_order_that_is_not_final(settings):
    from tests.fakes.goofish import FakeGoofish

    with FakeGoofish() as top:
        top.apps["gk"] = "gs"
        top.sessions.add("seller-session")
        settings.GOOFISH_GATEWAY_URL = top.url + "/router/rest"
        shop = shop_upsert(platform="goofish", name="开放平台店", app_key="gk", app_secret="gs",
                           session_token="seller-session")[0]
        for oid, status in (("8001", "paid"), ("8002", "shipped"), ("8003", "closed")):
            order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id=oid, raw_status=status,
                                                         target_status=status, updated_at=timezone.now()))
        top.add_order("8001", status=4)   # completed on the platform while we missed the messages
        top.add_order("8002", status=4)
        top.add_order("8003", status=6)

        out = io.StringIO()
        call_command("backfill_orders", "--shop", "gk", stdout=out)

    assert "re-querying every order we know that is not final" in out.getvalue()
    assert top.method_calls["alibaba.idle.isv.order.query"] == 2  # the closed one is final: not asked
    assert dict(Order.objects.values_list("platform_order_id", "status")) == {
        "8001": "completed", "8002": "completed", "8003": "closed"}
    assert BackfillRun.objects.get().status == "succeeded"


def test_backfill_refuses_a_reversed_range(shop):
    now = timezone.now()
    with pytest.raises(CommandError, match="start must be before the end"):
        backfill("--since", f"{now:%Y-%m-%d}", "--until", f"{now - timedelta(days=2):%Y-%m-%d}")
    assert not BackfillRun.objects.exists()


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-02-30 10:00:00", "99999-01-01"])
def test_backfill_refuses_a_date_it_cannot_read(shop, value):
    with pytest.raises(CommandError, match="not a date or datetime"):
        backfill("--since", value)


def test_backfill_names_an_unknown_shop():
    with pytest.raises(CommandError, match="no shop"):
        call_command("backfill_orders", "--shop", "nope")


# --- a page at a time (issue 11 part 3): the same outcome as order_sync, in a handful of statements ------------


def _snapshots(fake, app_key: str):
    """Listed snapshots of every order on the fake, as the backfill gets them."""
    from orders.adapters import get_adapter
    from orders.models import Shop

    adapter = get_adapter(Shop.objects.get(app_key=app_key))
    now = timezone.now()
    return adapter.list_orders(start=now - timedelta(days=30), end=now, page_no=1, page_size=100).items


def _outcome(shop):
    rows = {}
    for o in Order.objects.filter(shop=shop).select_related("buyer", "product"):
        events = [(e.kind, e.from_status, e.to_status, e.actor, e.message)
                  for e in o.events.order_by("created_at", "id")]
        rows[o.platform_order_id] = (o.status, o.platform_status, o.platform_event_at, o.paid_at is not None,
                                     o.shipped_at is not None, o.closed_at is not None, o.buyer.platform_user_id,
                                     o.product.item_id if o.product else None, str(o.amount), o.quantity,
                                     o.receiver, events)
    return rows


def test_a_page_in_bulk_ends_exactly_as_order_sync_one_by_one(fake, shop, monkeypatch):
    import orders.services
    from orders.models import Product
    from orders.services import order_sync_page
    from shipping.models import Shipment

    other = shop_upsert(platform="xianguanjia", name="逐单店", app_key="xgj-bf-2", app_secret=SECRET)[0]
    fake.accounts["xgj-bf-2"] = SECRET
    for s in (shop, other):
        Product.objects.create(shop=s, item_id="item-1", title="激活码", auto_ship=False)
    now = int(time.time()) - 600
    for i, (status, refund) in enumerate([(11, 0), (12, 0), (21, 0), (22, 0), (23, 0), (12, 1), (22, 0), (12, 0)]):
        fake.add_order(f"77{i:03d}", status=status, refund_status=refund, update_time=now + i,
                       item_id="item-1" if i % 2 else "item-x")
    snaps = _snapshots(fake, APP_KEY)
    assert len(snaps) == 8
    one_by_one = [order_sync(shop=other, snapshot=s, source="backfill") for s in snaps]
    singles = []
    monkeypatch.setattr(orders.services, "order_sync",
                        lambda **kw: singles.append(kw["snapshot"].platform_order_id) or order_sync(**kw))
    in_bulk = order_sync_page(shop=shop, snapshots=snaps, source="backfill")
    assert sorted(singles) == ["77001", "77007"]  # only the newly paid ones, one by one; the rest in bulk

    assert not [r for _, r in in_bulk if isinstance(r, Exception)]
    assert _outcome(shop) == _outcome(other)
    assert sorted((r.order.platform_order_id, r.created, r.applied, r.outcome) for _, r in in_bulk) == \
        sorted((r.order.platform_order_id, r.created, r.applied, r.outcome) for r in one_by_one)
    # the newly paid orders got the post-payment automation: released to shipping, with a shipment
    paid = Order.objects.filter(shop=shop, status="ready_to_ship")
    assert paid.count() == 2 and Shipment.objects.filter(order__in=paid).count() == 2

    # a re-run writes nothing: no new rows or events, no order touched
    stamps = dict(Order.objects.filter(shop=shop).values_list("platform_order_id", "updated_at"))
    events = OrderEvent.objects.count()
    again = order_sync_page(shop=shop, snapshots=_snapshots(fake, APP_KEY), source="backfill")
    assert {r.outcome for _, r in again} == {"unchanged"} and not any(r.created for _, r in again)
    assert OrderEvent.objects.count() == events
    assert dict(Order.objects.filter(shop=shop).values_list("platform_order_id", "updated_at")) == stamps


def test_a_page_takes_an_order_changed_on_the_platform_through_order_sync(fake, shop):
    from orders.services import order_sync_page

    now = int(time.time()) - 600
    fake.add_order("78001", status=21, update_time=now)
    order_sync_page(shop=shop, snapshots=_snapshots(fake, APP_KEY), source="backfill")
    assert Order.objects.get(platform_order_id="78001").status == "shipped"
    fake.add_order("78001", status=22, update_time=now + 5)  # the buyer confirmed receipt
    [(_, result)] = order_sync_page(shop=shop, snapshots=_snapshots(fake, APP_KEY), source="backfill")
    assert result.applied == ["complete"] or result.order.status == "completed"
    assert Order.objects.get(platform_order_id="78001").status == "completed"
    assert list(OrderEvent.objects.filter(order__platform_order_id="78001", kind="transition")
                .values_list("to_status", flat=True).order_by("id")) == ["paid", "shipped", "completed"]
