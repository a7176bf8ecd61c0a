"""The baseline for the ingest benchmark: a bare Django view that does the least a webhook must do.

It checks an HMAC-SHA256 of the raw body (header `X-Signature`, lowercase hex, a fixed bench secret) in
constant time and inserts one row into `bench_bare_event` with a raw cursor (the table is created by
`bench/ingest/run.py`). Mounted at `/bench/bare/` only when BENCH_BARE_ENDPOINT=1 (config/urls.py)."""

from __future__ import annotations

import hashlib
import hmac

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

BENCH_SECRET = b"xianyu-ops-bench-bare-secret"
TABLE = "bench_bare_event"
CREATE_TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "id bigserial PRIMARY KEY, key text UNIQUE, body text, created_at timestamptz DEFAULT now())"
)
_INSERT_SQL = f"INSERT INTO {TABLE} (key, body) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING"


def sign(body: bytes) -> str:
    """The signature a caller sends in `X-Signature`."""
    return hmac.new(BENCH_SECRET, body, hashlib.sha256).hexdigest()


@csrf_exempt
def bare_view(request):
    if request.method != "POST":
        return JsonResponse({"error": "method not allowed"}, status=405)
    body = request.body
    if not hmac.compare_digest(sign(body), request.headers.get("X-Signature", "")):
        return JsonResponse({"error": "bad signature"}, status=401)
    with connection.cursor() as cur:
        cur.execute(_INSERT_SQL, [hashlib.sha256(body).hexdigest(), body.decode("utf-8", "replace")])
    return JsonResponse({"result": "success"})
