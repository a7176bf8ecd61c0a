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

    for _ in range(50):
        call()
    t0 = time.perf_counter()
    for _ in range(args.calls):
        call()
    per_call = (time.perf_counter() - t0) * 1000 / args.calls
    print(f"{args.calls} calls: {per_call:.3f} ms per call (test client, unprofiled, incl. signing the push)")
    if not args.no_profile:
        prof = cProfile.Profile()
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
