"""Benchmark: the admin's big pages at N orders — median and p95 time, and the query count per page.

    .venv/bin/python -m bench.admin.run --orders 1000000            # generate 1M orders, then measure
    .venv/bin/python -m bench.admin.run --orders 1000 --orders 1000000   # two sizes: the query count is constant
    .venv/bin/python -m bench.admin.run --orders 1000000 --reuse    # measure what is loaded (no generation)

Database `xianyu_bench_admin` (DATABASE_URL overrides; created and migrated if missing, its order tables
emptied at each generation: it belongs to this bench), Redis db 7 (REDIS_URL). DEBUG off. Requests go
through Django's test Client in this process, logged in as a superuser (sessions in the database), so the
time is Django + PostgreSQL for the whole page render, without a network hop. Each page is requested
`--warmup` times, then `--requests` times timed; the query count is taken on the last request
(CaptureQueriesContext). Pages: the order list, the order list filtered by status and a date range, an order
search by its number, one order's page, the shipment list, the manual queue and the dashboard `/admin/`.
Writes var/bench/admin-<time>.json. Exit status 0 only when every page's p95 is under `--target-ms` and the
query counts are equal across sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DB_NAME = "xianyu_bench_admin"
BENCH_FERNET_KEY = "YmVuY2gtYWRtaW4ta2V5LW5vdC1hLXNlY3JldC0wMDA="  # bench-only data, fixed so --reuse can read it


def setup_django() -> None:
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DB_NAME}")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/7")
    os.environ.update({"DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "bench-admin-" + "x" * 40,
                       "FIELD_ENCRYPTION_KEYS": BENCH_FERNET_KEY, "DJANGO_ALLOWED_HOSTS": "testserver",
                       "DJANGO_SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "config.settings"})
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def pages(orders: int) -> dict[str, str]:
    from django.urls import reverse
    from django.utils import timezone

    from orders.models import Order

    order = Order.objects.order_by("-pk").only("pk", "platform_order_id").first()
    middle = Order.objects.filter(pk=max(1, orders // 2)).only("pk", "platform_order_id").first() or order
    today = timezone.localdate()
    since = (today - timezone.timedelta(days=30)).isoformat()
    orders_url = reverse("admin:orders_order_changelist")
    return {
        "order list": orders_url,
        "order list, status + 30-day range": f"{orders_url}?status__exact=paid&created_at_from={since}"
                                             f"&created_at_to={today.isoformat()}",
        "order search by number": f"{orders_url}?q={middle.platform_order_id}",
        "order page": reverse("admin:orders_order_change", args=[middle.pk]),
        "shipment list": reverse("admin:shipping_shipment_changelist"),
        "manual queue": reverse("admin:shipping_manualshipment_changelist"),
        "dashboard": reverse("admin:index"),
    }


def measure(client, url: str, *, warmup: int, requests: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
    times, cpu = [], []
    for _ in range(requests - 1):
        t, c = time.perf_counter(), time.process_time()
        resp = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        assert resp.status_code == 200, (url, resp.status_code)
    with CaptureQueriesContext(connection) as ctx:
        t = time.perf_counter()
        resp = client.get(url)
        times.append((time.perf_counter() - t) * 1000)
    db_ms = sum(float(q["time"]) for q in ctx.captured_queries) * 1000
    slowest = sorted(ctx.captured_queries, key=lambda q: -float(q["time"]))[:1]
    times.sort()
    return {"url": url, "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[min(len(times) - 1, int(round(0.95 * len(times))) - 1)], 1),
            "queries": len(ctx.captured_queries), "median_python_cpu_ms": round(statistics.median(cpu), 1),
            "db_ms_last_request": round(db_ms, 1),
            "slowest_query": {"ms": round(float(slowest[0]["time"]) * 1000, 1), "sql": slowest[0]["sql"][:300]}
            if slowest else None}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, action="append", help="size(s) to measure, default 1,000,000")
    ap.add_argument("--reuse", action="store_true", help="measure the data already loaded (one size)")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--target-ms", type=float, default=300.0)
    args = ap.parse_args()
    sizes = args.orders or [1_000_000]
    setup_django()

    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.admin.generate import generate
    from orders.models import Order

    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.com", "bench-admin-password")
    results = []
    for n in sizes:
        gen = None
        if not args.reuse:
            print(f"generating {n} orders …", flush=True)
            gen = generate(n)
        else:  # what beat would have summed since the data was loaded (missing days only)
            from common.stats import refresh_daily_stats

            refresh_daily_stats()
        n_now = Order.objects.count()
        client = Client()
        client.force_login(user)
        rows = {}
        for name, url in pages(n_now).items():
            rows[name] = measure(client, url, warmup=args.warmup, requests=args.requests)
            r = rows[name]
            print(f"  {n_now:>9} orders  {name:<34} median {r['median_ms']:>6} ms  p95 {r['p95_ms']:>6} ms  "
                  f"{r['queries']:>3} queries  (Python CPU {r['median_python_cpu_ms']} ms, "
                  f"SQL {r['db_ms_last_request']} ms)", flush=True)
        results.append({"orders": n_now, "generation": gen, "pages": rows})
    ok = all(r["p95_ms"] < args.target_ms for res in results for r in res["pages"].values())
    counts = [{name: r["queries"] for name, r in res["pages"].items()} for res in results]
    constant = all(c == counts[0] for c in counts)
    out = ROOT / "var" / "bench" / f"admin-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    out.write_text(json.dumps({"requests": args.requests, "loadavg": load, "cpus": os.cpu_count(),
                               "target_ms": args.target_ms, "results": results,
                               "all_under_target": ok, "query_counts_constant": constant}, indent=2,
                              ensure_ascii=False))
    print(f"p95 under {args.target_ms:.0f} ms on every page: {ok}; query counts constant across sizes: {constant}")
    print(f"written to {out.relative_to(ROOT)}")
    return 0 if ok and constant else 1


if __name__ == "__main__":
    sys.exit(main())
