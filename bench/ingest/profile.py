"""Profile the webhook view in-process (no HTTP server): where a push's time goes.

    DATABASE_URL=postgres://…/xianyu_bench REDIS_URL=redis://127.0.0.1:6379/14 \
        uv run python -m bench.ingest.profile [--calls 2000] [--top 25] [--no-profile]

Creates a 闲管家 shop, then calls `/webhooks/xianguanjia/` through Django's test client (full middleware
stack, real PostgreSQL and Redis broker, no worker), first unprofiled (ms per call) and then under cProfile
(top functions by cumulative time). The Redis db is flushed at the end: use a bench-only db.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("BENCH_BARE_ENDPOINT", "1")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-profile-" + "x" * 40)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--no-profile", action="store_true")
    args = p.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        print("set DATABASE_URL (PostgreSQL, a bench database) and REDIS_URL (a bench-only db)", file=sys.stderr)
        return 2

    import django
    from cryptography.fernet import Fernet

    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())

    django.setup()
    from django.test import Client

    from accounts.services import shop_upsert
    from tests.fakes.xianguanjia import signed_push

    app_key, secret = f"prof-{int(time.time())}", "prof-secret-0123456789"
    shop_upsert(platform="xianguanjia", name="profile shop", app_key=app_key, app_secret=secret)
    client = Client()
    prefix = f"P{int(time.time()) % 10**8:08d}"
    n = [0]

    def call():
        n[0] += 1
        qs, body = signed_push(app_key, secret, {"seller_id": 1, "order_no": f"{prefix}{n[0]:09d}", "order_type": 1,
                                                 "order_status": 12, "refund_status": 0,
                                                 "modify_time": int(time.time())})
        resp = client.post(f"/webhooks/xianguanjia/?{qs}", data=body, content_type="application/json")
        assert resp.status_code == 200, resp.content

    from django.db import connection

    from bench.ingest.bare import CREATE_TABLE_SQL, sign

    with connection.cursor() as cur:
        cur.execute(CREATE_TABLE_SQL)

    def bare():
        n[0] += 1
        body = f'{{"order_no":"{prefix}{n[0]:09d}","modify_time":{int(time.time())}}}'.encode()
        resp = client.post("/bench/bare/", data=body, content_type="application/json", HTTP_X_SIGNATURE=sign(body))
        assert resp.status_code == 200, resp.content

    def timed(fn) -> float:
        c0 = time.process_time()
        for _ in range(args.calls):
            fn()
        return (time.process_time() - c0) * 1000 / args.calls

    for _ in range(50):
        call()
        bare()
    # Interleaved rounds, CPU time of this process only (insensitive to other load): the in-process ratio.
    hook_ms, bare_ms = [], []
    for _ in range(3):
        hook_ms.append(timed(call))
        bare_ms.append(timed(bare))
    hook, bare_cpu = min(hook_ms), min(bare_ms)
    print(f"{args.calls} calls x 3: webhook {hook:.3f} ms CPU per call, bare {bare_cpu:.3f} ms CPU per call "
          f"(test client, incl. signing), ratio of throughputs if CPU-bound {bare_cpu / hook:.1%}")
    if not args.no_profile:
        prof = cProfile.Profile(time.process_time)  # CPU time: waiting on PostgreSQL or Redis is not cost here
        prof.enable()
        for _ in range(args.calls):
            call()
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative")).print_stats(args.top)
        print(out.getvalue())
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
