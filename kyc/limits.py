"""Fixed-window rate limits in the Django cache for what anonymous callers can trigger (the mini-program API,
Sumsub sessions started from a verify page, sandbox reviews)."""

from __future__ import annotations

import logging
import time

from django.core.cache import cache

log = logging.getLogger(__name__)


def allow(key: str, *, limit: int, window: int = 60) -> bool:
    """Count one hit on `key`; False once more than `limit` hits fell in the current `window` seconds.
    A cache that cannot count refuses (a limit that silently stops limiting is no limit)."""
    bucket = int(time.time() // window)
    name = f"kyc:rl:{key}:{bucket}"
    try:
        if cache.add(name, 1, timeout=window + 5):
            count = 1
        else:
            try:
                count = cache.incr(name)
            except ValueError:  # the key expired between add() and incr()
                cache.set(name, 1, timeout=window + 5)
                count = 1
    except Exception:
        log.exception("rate limit %s: cache unavailable, refusing", key)
        return False
    return count <= limit
