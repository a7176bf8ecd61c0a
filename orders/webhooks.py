"""Order webhooks (DESIGN.md §3, §4.1): verify, store in the inbox, answer at once; a worker processes.

A signed message is still checked before it is stored: its order number must be a plain identifier (a
string of letters, digits, `_ . : -`, at most 64 characters) and its event time a real time (from 2000
to one day ahead) — anything else is refused 400 with a plain reason (common.inbox records it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from django.http import JsonResponse
from django.utils import timezone

from accounts.models import Platform, Shop
from common.inbox import Verdict, receive, webhook_view
from common.sanitize import is_plain_id

from .adapters import get_adapter
from .models import OrderInboxEvent
from .tasks import process_order_event

_SHOP_CACHE: dict[tuple[str, str], tuple[float, Shop | None]] = {}
_SHOP_TTL = 30.0
EARLIEST_EVENT = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_AHEAD = timedelta(days=1)


def _shop(platform: str, app_key: str) -> Shop | None:
    """Active shop by platform and app key, cached briefly per process (webhooks are hot)."""
    now = time.monotonic()
    hit = _SHOP_CACHE.get((platform, app_key))
    if hit and now - hit[0] < _SHOP_TTL:
        return hit[1]
    shop = Shop.objects.filter(platform=platform, app_key=app_key, is_active=True).first()
    if len(_SHOP_CACHE) > 1000:
        _SHOP_CACHE.clear()
    _SHOP_CACHE[(platform, app_key)] = (now, shop)
    return shop


def shop_cache_clear(**kwargs) -> None:
    """Connected to Shop saves and deletes (orders.apps): a changed secret applies at once."""
    _SHOP_CACHE.clear()


def _verify(platform: str, app_key_param: str, params: dict[str, str], body: bytes) -> Verdict:
    app_key = params.get(app_key_param, "")
    if not app_key or not params.get("sign"):
        return Verdict.reject("missing app key or signature", status=401)
    if len(app_key) > 64:
        return Verdict.reject(f"unknown {app_key_param}", status=401)
    shop = _shop(platform, app_key)
    if shop is None:
        return Verdict.reject(f"unknown {app_key_param}", status=401)
    adapter = get_adapter(shop)
    if not adapter.verify_push(query=params, body=body, headers={}):
        return Verdict.reject("bad signature", status=401)
    try:
        msg = adapter.parse_push(query=params, body=body)
    except (ValueError, KeyError, TypeError, ArithmeticError, OSError):  # absurd times overflow
        return Verdict.reject("malformed message", status=400)
    if not msg.platform_order_id:
        return Verdict.reject("message names no order", status=400)
    if not is_plain_id(msg.platform_order_id):
        return Verdict.reject("order number is not a plain identifier", status=400)
    event_at = msg.event_at
    if event_at is not None and timezone.is_naive(event_at):
        event_at = timezone.make_aware(event_at)
    if event_at is not None and not EARLIEST_EVENT <= event_at <= timezone.now() + LATEST_EVENT_AHEAD:
        return Verdict.reject("event time out of range", status=400)
    return Verdict(ok=True, key=msg.key, topic=msg.topic,
                   fields={"shop": shop, "platform_order_id": msg.platform_order_id})


def _success():
    return JsonResponse({"result": "success"})


@webhook_view
def xianguanjia(request):
    """闲管家 order push: `appid`, `timestamp`, `sign` in the query, JSON body."""
    return receive(
        request, model=OrderInboxEvent, source=Platform.XIANGUANJIA, task=process_order_event, success=_success,
        verify=lambda req, body: _verify(Platform.XIANGUANJIA, "appid", req.GET.dict(), body),
        headers=("QUERY_STRING",),
    )


@webhook_view
def goofish(request):
    """Open-platform (TOP) messages relayed over HTTP, TOP-signed; parameters in the form and/or query."""

    def verify(req, body):
        # Parsed from the raw bytes (application/x-www-form-urlencoded), exactly as the worker will.
        params = {**req.GET.dict(), **dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))}
        return _verify(Platform.GOOFISH, "app_key", params, body)

    return receive(request, model=OrderInboxEvent, source=Platform.GOOFISH, task=process_order_event,
                   success=_success, verify=verify, headers=("QUERY_STRING",))
