"""Profile the ship path in one process: queries and CPU per shipment, without Celery.

    BENCH_DATABASE_URL=postgres://…/xianyu_bench .venv/bin/python bench/ship/prof.py [--orders 300] [--batch 0]

Sets up like bench/ship/run.py (fake 闲管家 in-process, zero-delay card-pool product, paid orders through
order_sync, their ship messages suppressed), then dispatches every shipment under cProfile and a query
counter: one `shipment_dispatch` per shipment, or with `--batch N` `shipment_dispatch_due` claiming N at a time.
Prints queries per shipment, the most frequent statements, wall time per shipment and the top functions.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import os
import pstats
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from django.db.backends.base.base import BaseDatabaseWrapper

    BaseDatabaseWrapper.queries_limit = 10**6  # count every query of the run
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=300)
    ap.add_argument("--batch", type=int, default=0, help="0: one shipment_dispatch per shipment")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    from bench.ship.run import DB_URL, ensure_database
    from tests.fakes.xianguanjia import FakeXianguanjia

    run = time.strftime("%Y%m%d%H%M%S")
    app_key = f"bench-prof-{run}"
    fake = FakeXianguanjia().start()
    fake.accounts[app_key] = "bench-secret"
    os.environ.update({"DATABASE_URL": DB_URL, "XIANGUANJIA_BASE_URL": fake.url,
                       "DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_TASK_ALWAYS_EAGER": "false"})
    ensure_database()
    import subprocess

    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, check=True)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.services import shop_upsert
    from orders.adapters.base import OrderSnapshot
    from orders.models import Product
    from orders.services import order_sync
    from shipping import services, tasks
    from shipping.models import Shipment

    tasks.ship_shipment.delay_on_commit = lambda *a, **k: None  # this process dispatches by itself
    shop = shop_upsert(platform="xianguanjia", name=f"剖析店 {run}", app_key=app_key, app_secret="bench-secret")[0]
    product = Product.objects.create(shop=shop, item_id="bench-item", title="压测激活码", kind=Product.Kind.VIRTUAL,
                                     auto_ship=True, ship_delay_min=0, ship_delay_max=0, card_kind_id="9001",
                                     delivery_template="激活码：{{ codes }}")
    fake.add_kind(9001, item_id="bench-item")
    services.cardcode_import(product=product, lines=[f"PROF-{run}-{i:06d}" for i in range(args.orders)])
    for i in range(args.orders):
        no = f"{run}{i:06d}"
        fake.add_order(no, status=12, item_id="bench-item")
        order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id=no, raw_status="12", target_status="paid",
                                                     item_id="bench-item", quantity=1), source="bench")
    ids = list(Shipment.objects.filter(order__shop=shop).order_by("pk").values_list("pk", flat=True))
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    with CaptureQueriesContext(connection) as ctx:
        prof.enable()
        if args.batch:
            while Shipment.objects.filter(pk__in=ids, status="scheduled").exists():
                services.shipment_dispatch_due(limit=args.batch)
        else:
            for pk in ids:
                services.shipment_dispatch(shipment_id=pk)
        prof.disable()
    wall = time.perf_counter() - t0
    shipped = Shipment.objects.filter(pk__in=ids, status="shipped").count()
    n = len(ids)
    print(f"shipped {shipped}/{n} in {wall:.2f}s: {wall / n * 1000:.1f} ms and "
          f"{len(ctx.captured_queries) / n:.1f} queries per shipment (profiler on)")
    kinds = collections.Counter(re.sub(r"\s+", " ", q["sql"]).split(" WHERE")[0][:110] for q in ctx.captured_queries)
    for sql, k in kinds.most_common(15):
        print(f"{k / n:6.2f}  {sql}")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)
    fake.stop()
    return 0 if shipped == n else 1


if __name__ == "__main__":
    sys.exit(main())
