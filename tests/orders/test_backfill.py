"""Backfill from a fake 闲管家 order list: thousands of orders, twice, no duplicates, range split under the
paging cap."""

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.services import shop_upsert
from orders.models import Order, OrderEvent
from tests.fakes.xianguanjia import FakeXianguanjia

APP_KEY, SECRET = "xgj-bf", "xgj-bf-secret"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fake(settings):
    with FakeXianguanjia() as server:
        server.accounts[APP_KEY] = SECRET
        settings.XIANGUANJIA_BASE_URL = server.url
        yield server


def test_backfill_of_thousands_of_orders_twice_makes_no_duplicates(postgres, fake, monkeypatch):
    shop_upsert(platform="xianguanjia", name="回填店", app_key=APP_KEY, app_secret=SECRET)
    end = int(time.time()) - 60
    start = end - 7 * 86400
    fake.bulk_add(3000, start, end)
    # A small cap (as the platform's 10,000, scaled down) makes the range split into several slices.
    fake.paging_cap = 1000
    from orders.adapters.xianguanjia import XianguanjiaAdapter

    monkeypatch.setattr(XianguanjiaAdapter, "list_cap", 1000)

    since = timezone.datetime.fromtimestamp(start - 1, tz=timezone.get_current_timezone())
    until = timezone.datetime.fromtimestamp(end + 1, tz=timezone.get_current_timezone())
    args = ["--shop", APP_KEY, "--since", since.strftime("%Y-%m-%d %H:%M:%S"),
            "--until", until.strftime("%Y-%m-%d %H:%M:%S")]
    call_command("backfill_orders", *args)
    assert Order.objects.count() == 3000
    events = OrderEvent.objects.count()
    pages_first = fake.calls("list")

    call_command("backfill_orders", *args)
    assert Order.objects.count() == 3000
    assert OrderEvent.objects.count() == events  # nothing applied twice
    assert Order.objects.values("platform_order_id").distinct().count() == 3000
    assert fake.calls("list") > pages_first
    assert fake.cap_violations == 0


def test_backfill_refuses_a_reversed_range():
    from django.core.management.base import CommandError

    shop_upsert(platform="xianguanjia", name="回填店", app_key=APP_KEY, app_secret=SECRET)
    now = timezone.now()
    with pytest.raises(CommandError):
        call_command("backfill_orders", "--shop", APP_KEY, "--since", f"{now:%Y-%m-%d}",
                     "--until", f"{now - timedelta(days=2):%Y-%m-%d}")


def test_backfill_names_an_unknown_shop():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no shop"):
        call_command("backfill_orders", "--shop", "nope")
