"""Backfill benchmark (DESIGN.md §7): `manage.py backfill_orders` against a fake 闲管家 order list.

    DATABASE_URL=postgres://…/xianyu_bench REDIS_URL=redis://127.0.0.1:6379/14 \
        uv run python -m bench.backfill.run [--orders 100000] [--paid-share 0.005]

1. creates the database if missing and migrates it, creates a new 闲管家 shop (`shop_add`) with one product;
2. starts the fake 闲管家 (tests/fakes/xianguanjia.py: signatures, 100-order pages, the 10,000-record paging
   cap and the 6-month reach all checked; a sorted index so that a page costs it little) in this process,
   with N orders spread over the last 150 days: mostly completed, some shipped, closed, refunded, refunding,
   awaiting payment, and `--paid-share` newly paid (default 0.5 %: paid and not yet shipped when the backfill
   runs; they get the post-payment automation, one by one, ~25 ms of CPU each);
3. runs `manage.py backfill_orders --full` for the shop in a subprocess (its own progress lines: orders/s and
   ETA), timing it and sampling its RSS; then runs it a second time (a re-run must change nothing);
4. checks: every order arrived exactly once, one `created` event each, the newly paid ones are released to
   shipping with a shipment, the re-run created and changed nothing (same orders, same events), both runs
   succeeded, the fake saw no paging-cap or reach violation;
5. prints the figures and writes them to var/bench/backfill-<time>.json. No worker runs (the shipments'
   messages just queue in the Redis db, which is flushed at the start and end).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.ingest.run import manage, pg_connect, prepare_database, prepare_redis, server_env  # noqa: E402
from tests.fakes.xianguanjia import FakeXianguanjia  # noqa: E402

APP_KEY = f"bench-backfill-{int(time.time())}"
APP_SECRET = "bench-backfill-secret-0123456789"
DAY = 86400
# (xianguanjia order_status, refund_status, share) of the listed orders besides the newly paid ones
MIX = [(22, 0, 0.80), (21, 0, 0.08), (11, 0, 0.04), (23, 0, 0.04), (22, 2, 0.02), (21, 1, 0.02)]


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"[bench] FAILED: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def fill(fake: FakeXianguanjia, n: int, paid_share: float) -> dict[str, int]:
    """N orders, newest last, status mix as MIX plus `paid_share` newly paid; returns the count per kind."""
    now = int(time.time())
    start, end = now - 150 * DAY, now - 120
    kinds = [(12, 0, paid_share)] + [(s, r, share * (1 - paid_share)) for s, r, share in MIX]
    counts: dict[str, int] = {}
    prefix = f"{now % 10**6:06d}"
    i = 0
    for status, refund, share in kinds:
        k = round(n * share) if (status, refund) != kinds[-1][:2] else n - i
        counts[f"{status}/{refund}"] = k
        for _ in range(k):
            fake.add_order(f"{prefix}{i:013d}", status=status, refund_status=refund,
                           update_time=start + (i * 7919 % n) * (end - start) // n,
                           item_id="bench-item" if i % 3 else f"other-{i % 5}", amount_fen=100 + i % 900)
            i += 1
    return counts


def run_backfill(env: dict[str, str], label: str) -> dict:
    cmd = [sys.executable, "manage.py", "backfill_orders", "--shop", APP_KEY, "--full"]
    if os.environ.get("BENCH_PROFILE") and label == "first run":  # cProfile of the first run, to this file
        cmd[1:1] = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]]
    log(f"{label}: {' '.join(cmd[1:])}")
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0.0]

    def sample():
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        peak[0] = max(peak[0], int(line.split()[1]) / 1024)
            except OSError:
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        print(f"    {line.rstrip()}", flush=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - t0
    cpu = usage.ru_utime + usage.ru_stime  # the command's own CPU: what is left of the wall time is waiting
    sampler.join(1)
    # The command's own figure (its run only, without Python and Django starting): "... (N orders/s); run #"
    own = next((float(m.group(1)) for ln in reversed(lines) if (m := re.search(r"\((\d+) orders/s\); run #", ln))),
               None)
    return {"label": label, "returncode": proc.returncode, "seconds": round(seconds, 2), "command_orders_per_s": own,
            "peak_rss_mb": round(peak[0], 1), "cpu_seconds": round(cpu, 2),
            "output_tail": lines[-5:]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=100_000)
    p.add_argument("--paid-share", type=float, default=0.005,
                   help="share of newly paid orders, which get the post-payment automation one by one (default 0.5 %%)")
    p.add_argument("--fresh", action="store_true", help="drop and re-create the bench database first")
    args = p.parse_args()
    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xianyu_bench")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    if not database_url.startswith(("postgres://", "postgresql://")):
        die("DATABASE_URL must point at PostgreSQL")
    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y%m%d-%H%M%S")

    redis_client = prepare_redis(redis_url)
    prepare_database(database_url, fresh=args.fresh)
    env = server_env(database_url, redis_url)
    env.pop("BENCH_BARE_ENDPOINT", None)
    log("migrate")
    manage(env, "migrate", "--noinput")
    log(manage(env, "shop_add", "--platform", "xianguanjia", "--name", "bench backfill shop", "--app-key", APP_KEY,
               "--app-secret", APP_SECRET).strip())
    with pg_connect(database_url) as conn:
        shop_id = conn.execute("SELECT id FROM accounts_shop WHERE app_key = %s", [APP_KEY]).fetchone()[0]
        conn.execute("INSERT INTO orders_product (shop_id, item_id, title, kind, auto_ship, ship_delay_min, "
                     "ship_delay_max, logistics_company, express_code, delivery_way, card_kind_id, "
                     "staff_confirms_shipping, delivery_template, needs_kyc, stock, low_stock_threshold, is_active, "
                     "created_at, updated_at) VALUES (%s, 'bench-item', 'bench item', 'virtual', false, 0, 0, '', "
                     "'', 'platform', '', false, '', false, -1, 0, true, now(), now())", [shop_id])

    with FakeXianguanjia() as fake:
        fake.accounts[APP_KEY] = APP_SECRET
        t0 = time.monotonic()
        counts = fill(fake, args.orders, args.paid_share)
        log(f"fake 闲管家 at {fake.url}: {args.orders} orders in {time.monotonic() - t0:.1f}s ({counts})")
        env["XIANGUANJIA_BASE_URL"] = fake.url
        first = run_backfill(env, "first run")
        with pg_connect(database_url) as conn:
            def q(sql, *params):
                return conn.execute(sql, params).fetchone()[0]

            orders1 = q("SELECT count(*) FROM orders_order WHERE shop_id = %s", shop_id)
            distinct1 = q("SELECT count(DISTINCT platform_order_id) FROM orders_order WHERE shop_id = %s", shop_id)
            events1 = q("SELECT count(*) FROM orders_orderevent e JOIN orders_order o ON o.id = e.order_id "
                        "WHERE o.shop_id = %s", shop_id)
            created_events = q("SELECT count(*) FROM orders_orderevent e JOIN orders_order o ON o.id = e.order_id "
                               "WHERE o.shop_id = %s AND e.kind = 'created'", shop_id)
            released = q("SELECT count(*) FROM orders_order WHERE shop_id = %s AND status IN "
                         "('ready_to_ship', 'awaiting_kyc', 'shipped')", shop_id)
            shipments = q("SELECT count(*) FROM shipping_shipment s JOIN orders_order o ON o.id = s.order_id "
                          "WHERE o.shop_id = %s", shop_id)
            stamp1 = q("SELECT max(updated_at) FROM orders_order WHERE shop_id = %s", shop_id)
            second = run_backfill(env, "re-run")
            orders2 = q("SELECT count(*) FROM orders_order WHERE shop_id = %s", shop_id)
            events2 = q("SELECT count(*) FROM orders_orderevent e JOIN orders_order o ON o.id = e.order_id "
                        "WHERE o.shop_id = %s", shop_id)
            stamp2 = q("SELECT max(updated_at) FROM orders_order WHERE shop_id = %s", shop_id)
            runs = conn.execute("SELECT status, seen, created, changed, errors FROM orders_backfillrun "
                                "WHERE shop_id = %s ORDER BY id", [shop_id]).fetchall()
        cap_violations, reach_violations = fake.cap_violations, fake.reach_violations
        list_calls = sum(1 for r in fake.requests if r.path.endswith("/order/list"))
    redis_client.flushdb()

    paid = counts["12/0"]
    shipped_before = counts.get("21/0", 0)  # listed as shipped: counted in `released` too
    rate1 = first["command_orders_per_s"] or args.orders / first["seconds"]
    rate2 = second["command_orders_per_s"] or args.orders / second["seconds"]
    checks = {
        "both runs exit 0": first["returncode"] == 0 and second["returncode"] == 0,
        "both runs recorded as succeeded": [r[0] for r in runs] == ["succeeded", "succeeded"],
        f"{args.orders} orders, each once": orders1 == distinct1 == args.orders,
        "one created event per order": created_events == args.orders,
        "newly paid orders released to shipping with a shipment": released == paid + shipped_before
                                                                 and shipments == paid,
        # An order updated exactly at a slice boundary is listed in both slices: seen twice, changed by neither.
        "re-run: 0 new, 0 changed": len(runs) > 1 and runs[1][1] >= args.orders and tuple(runs[1][2:4]) == (0, 0),
        "re-run: same orders, same events, no order touched": orders2 == orders1 and events2 == events1
                                                               and stamp2 == stamp1,
        "no paging-cap or reach violation": cap_violations == 0 and reach_violations == 0,
    }
    targets = {"backfill >= 2,000 orders/s": rate1 >= 2000,
               "backfill process RSS < 250 MB": max(first["peak_rss_mb"], second["peak_rss_mb"]) < 250}
    print()
    print(f"backfill benchmark — {args.orders} orders ({paid} newly paid), fake 闲管家 in the bench process, "
          f"PostgreSQL on loopback, {os.cpu_count()} cores")
    print(f"{'run':<10}{'seconds':>9}{'orders/s':>10}{'CPU s':>8}{'CPU ms/order':>14}{'peak RSS MB':>13}")
    for r, rate in ((first, rate1), (second, rate2)):
        print(f"{r['label']:<10}{r['seconds']:>9.1f}{rate:>10.0f}{r['cpu_seconds']:>8.1f}"
              f"{r['cpu_seconds'] * 1000 / args.orders:>14.2f}{r['peak_rss_mb']:>13.1f}")
    print("(orders/s: the command's own figure, without process start-up; seconds and CPU: the whole command "
          "process, start-up included; the rest of the wall time is waiting for PostgreSQL and the fake)")
    print(f"rows: {orders1} orders, {events1} events ({created_events} created), {shipments} shipments; "
          f"re-run: {orders2} orders, {events2} events; list calls {list_calls}")
    failures = [name for name, ok in checks.items() if not ok]
    for name, ok in checks.items():
        print(f"check {name}: {'ok' if ok else 'FAILED'}")
    for name, ok in targets.items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")
    out = workdir / f"backfill-{started}.json"
    out.write_text(json.dumps({
        "args": vars(args), "cores": os.cpu_count(), "counts": counts, "first": first, "rerun": second,
        "orders_per_s": {"first": round(rate1, 1), "rerun": round(rate2, 1)},
        "rows": {"orders": orders1, "events": events1, "created_events": created_events, "shipments": shipments,
                 "released": released, "orders_rerun": orders2, "events_rerun": events2},
        "runs": [list(r) for r in runs], "checks": checks, "targets": targets, "failures": failures,
    }, indent=2, default=str))
    print(f"figures written to {out.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
