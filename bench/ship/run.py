"""Benchmark: paid order → shipped on a fake 闲管家 server, zero-delay virtual product, real Celery worker.

    .venv/bin/python bench/ship/run.py [--orders 5000] [--concurrency 2] [--timeout 300]

What it does (loopback only, bounded in count and time):
1. Creates the PostgreSQL database `xianyu_bench` if missing and migrates it (each run uses its own shop).
2. Starts FakeXianguanjia (tests/fakes/xianguanjia.py) on 127.0.0.1 and a worker process
   `celery -A config worker -c N` against REDIS_URL (default redis://127.0.0.1:6379/0).
3. Creates a zero-delay, auto-ship virtual product with a card-code pool, then N paid orders through the real
   path (`orders.services.order_sync` → ready_to_ship hook → Shipment + code reservation → ship_shipment
   task on commit → worker: lock, mark sending, call the fake, record).
4. Creates the paid orders first (their ship messages wait in Redis), then starts the worker and times
   paid → shipped from the worker's start to the last order shipped; reports orders/second, duplicates (the
   fake's ship counter > 1 for an order) and losses (orders not shipped here or not shipped on the fake).
   Exit status 0 only when the target is met (≥ 100/s, 0, 0).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# BENCH_DATABASE_URL picks another database on the same server (helpers on a shared machine each use theirs).
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xianyu_bench")
DB_NAME = DB_URL.rsplit("/", 1)[1]


def ensure_database() -> None:
    """Create the bench database if missing. Never dropped: other benches may share it, so every run works
    in its own shop and order-number space instead."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def tree_rss_mb(root_pid: int) -> dict[str, float]:
    """RSS of a process and its descendants (the celery worker and its pool processes), in MB."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=,rss=", "-e"], capture_output=True, text=True).stdout
    rows = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    pids, rss = {root_pid}, {}
    for _ in range(3):  # parent → pool children (→ grandchildren)
        pids |= {pid for pid, ppid, _kb in rows if ppid in pids}
    for pid, _ppid, kb in rows:
        if pid in pids:
            rss[str(pid)] = round(kb / 1024, 1)
    return rss


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=2, help="worker processes (celery -c)")
    ap.add_argument("--producers", type=int, default=4, help="threads creating orders")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    n = min(max(1, args.orders), 20000)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

    from tests.fakes.xianguanjia import FakeXianguanjia

    run = time.strftime("%Y%m%d%H%M%S")
    app_key = f"bench-ship-{run}"
    fake = FakeXianguanjia().start()
    fake.accounts[app_key] = "bench-secret"
    env = {**os.environ, "DATABASE_URL": DB_URL, "REDIS_URL": redis_url,
           "XIANGUANJIA_BASE_URL": fake.url, "DJANGO_SETTINGS_MODULE": "config.settings",
           "CELERY_TASK_ALWAYS_EAGER": "false"}
    os.environ.update(env)
    ensure_database()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # no messages left over from an earlier run

    import django

    django.setup()
    from django.db import connection

    from accounts.services import shop_upsert
    from orders.adapters.base import OrderSnapshot
    from orders.models import Order, Product
    from orders.services import order_sync
    from shipping.models import CardCode, Shipment
    from shipping.services import cardcode_import

    shop = shop_upsert(platform="xianguanjia", name=f"压测店 {run}", app_key=app_key,
                       app_secret="bench-secret")[0]
    product = Product.objects.create(
        shop=shop, item_id="bench-item", title="压测激活码", kind=Product.Kind.VIRTUAL, auto_ship=True,
        ship_delay_min=0, ship_delay_max=0, card_kind_id="9001",  # 闲管家 card pool: upload, send, proof
        delivery_template="激活码：{{ codes }}")
    fake.add_kind(9001, item_id="bench-item")
    cardcode_import(product=product, lines=[f"BENCH-{i:06d}" for i in range(n + 100)])
    numbers = [f"{run}{i:06d}" for i in range(n)]  # 闲管家 order numbers are 19+ digits (kam/list checks)
    for no in numbers:
        fake.add_order(no, status=12, item_id="bench-item")

    errors: list[str] = []

    def produce(chunk: list[str]) -> None:
        try:
            for no in chunk:
                snap = OrderSnapshot(platform_order_id=no, raw_status="12", target_status="paid",
                                     item_id="bench-item", quantity=1)
                order_sync(shop=shop, snapshot=snap, source="bench")
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    # Phase 1 (not timed as shipping): N orders become paid → ready_to_ship; each commits its Shipment and
    # a ship_shipment message, which waits in Redis until the worker starts.
    chunks = [numbers[i::args.producers] for i in range(args.producers)]
    t0 = time.monotonic()
    threads = [threading.Thread(target=produce, args=(c,)) for c in chunks]
    [t.start() for t in threads]
    [t.join() for t in threads]
    created_in = time.monotonic() - t0

    # Phase 2 (timed): one worker ships the backlog of paid orders.
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "config", "worker", "-c", str(args.concurrency),
         "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "bench-ship@%h"],
        cwd=ROOT, env=env, start_new_session=True)
    try:
        start = time.monotonic()
        shipped = 0
        last_change, last_count = time.monotonic(), -1
        peak_rss: dict[str, float] = {}
        next_rss = 0.0
        while time.monotonic() - start < args.timeout:
            shipped = Shipment.objects.filter(order__shop=shop, status="shipped").count()
            if shipped >= n:
                break
            if shipped != last_count:
                last_change, last_count = time.monotonic(), shipped
            elif time.monotonic() - last_change > 60:
                break  # no progress for a minute
            if time.monotonic() >= next_rss:
                for pid, mb in tree_rss_mb(worker.pid).items():
                    peak_rss[pid] = max(mb, peak_rss.get(pid, 0.0))
                next_rss = time.monotonic() + 1.0
            time.sleep(0.2)
        elapsed = time.monotonic() - start
        connection.close()

        not_shipped_here = n - Order.objects.filter(shop=shop, status="shipped").count()
        not_shipped_there = sum(1 for no in numbers if fake.orders[no]["order_status"] != 21)
        duplicates = sum(1 for no in numbers if fake.ship_calls[no] > 1)
        double_codes = CardCode.objects.filter(product=product, status="delivered").count() - n
        rate = shipped / elapsed if elapsed else 0.0
        print(f"orders: {n}  paid and scheduled in {created_in:.1f}s "
              f"({n / created_in:.0f}/s, {args.producers} threads)")
        print(f"shipped: {shipped} in {elapsed:.1f}s from worker start (-c {args.concurrency}), worker boot included")
        print(f"throughput: {rate:.1f} orders/s (paid → shipped on the fake platform)")
        print(f"duplicates (platform ship calls > 1): {duplicates}")
        print(f"losses: not shipped here {not_shipped_here}, not shipped on the platform {not_shipped_there}")
        print(f"codes delivered beyond one per order: {max(0, double_codes)}  producer errors: {len(errors)}")
        for e in errors[:5]:
            print("  ", e)
        worst_rss = max(peak_rss.values(), default=0.0)
        print(f"worker RSS peak (MB, per process): {', '.join(f'{v}' for v in peak_rss.values())}")
        rows = {"shipments": Shipment.objects.filter(order__shop=shop).count(),
                "orders": Order.objects.filter(shop=shop).count(),
                "codes_delivered": CardCode.objects.filter(product=product, status="delivered").count(),
                "codes_reserved": CardCode.objects.filter(product=product, status="reserved").count()}
        print(f"row counts: {rows}")
        rows_ok = rows["shipments"] == n and rows["orders"] == n and rows["codes_delivered"] == n
        ok = (rows_ok and worst_rss < 250 and rate >= 100 and duplicates == 0 and not_shipped_here == 0
              and not_shipped_there == 0 and not errors)
        print("TARGET MET" if ok else "TARGET NOT MET")
        out_dir = ROOT / "var" / "bench"
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / f"ship-{run}.json"
        out.write_text(json.dumps({
            "bench": "ship", "started": run, "orders": n, "concurrency": args.concurrency,
            "batch": os.environ.get("SHIP_BATCH_SIZE", ""),
            "created_in_s": round(created_in, 2), "shipped": shipped, "elapsed_s": round(elapsed, 2),
            "orders_per_s": round(rate, 1), "duplicates": duplicates, "not_shipped_here": not_shipped_here,
            "not_shipped_on_platform": not_shipped_there, "codes_beyond_one": max(0, double_codes),
            "producer_errors": len(errors), "rows": rows, "worker_rss_peak_mb": peak_rss, "target_met": ok,
        }, indent=2))
        print(f"result: {out}")
        return 0 if ok else 1
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        fake.stop()


if __name__ == "__main__":
    sys.exit(main())
