"""Order webhooks (DESIGN.md §3, §4.1): verify, store in the inbox, answer at once; a worker processes."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.models import Platform, Shop
from common.inbox import Verdict, receive

from .adapters import get_adapter
from .models import OrderInboxEvent
from .tasks import process_order_event

_SHOP_CACHE: dict[tuple[str, str], tuple[float, Shop | None]] = {}
_SHOP_TTL = 30.0


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
    shop = _shop(platform, app_key)
    if shop is None:
        return Verdict.reject(f"unknown {app_key_param}", status=401)
    adapter = get_adapter(shop)
    if not adapter.verify_push(query=params, body=body, headers={}):
        return Verdict.reject("bad signature", status=401)
    try:
        msg = adapter.parse_push(query=params, body=body)
    except (ValueError, KeyError, TypeError) as exc:
        return Verdict.reject(f"malformed message: {exc.__class__.__name__}", status=400)
    if not msg.platform_order_id:
        return Verdict.reject("message names no order", status=400)
    return Verdict(ok=True, key=msg.key, topic=msg.topic,
                   fields={"shop": shop, "platform_order_id": msg.platform_order_id})


def _success():
    return JsonResponse({"result": "success"})


@csrf_exempt
def xianguanjia(request):
    """闲管家 order push: `appid`, `timestamp`, `sign` in the query, JSON body."""
    return receive(
        request, model=OrderInboxEvent, source=Platform.XIANGUANJIA, task=process_order_event, success=_success,
        verify=lambda req, body: _verify(Platform.XIANGUANJIA, "appid", req.GET.dict(), body),
        headers=("QUERY_STRING",),
    )


@csrf_exempt
def goofish(request):
    """Open-platform (TOP) messages relayed over HTTP, TOP-signed; parameters in the form and/or query."""

    def verify(req, body):
        # Parsed from the raw bytes (application/x-www-form-urlencoded), exactly as the worker will.
        params = {**req.GET.dict(), **dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))}
        return _verify(Platform.GOOFISH, "app_key", params, body)

    return receive(request, model=OrderInboxEvent, source=Platform.GOOFISH, task=process_order_event,
                   success=_success, verify=verify, headers=("QUERY_STRING",))
