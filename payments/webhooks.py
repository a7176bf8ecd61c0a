"""`POST /webhooks/alipay/`: Alipay's asynchronous notifications (protocols/alipay.md), through the one
inbox (common.inbox.receive): verified, stored once by `notify_id`, answered with the plain text `success`
(anything else makes Alipay retry), processed by a worker on commit.

A call is refused (4xx, only a RejectedWebhook row, nothing changed) when its RSA2 signature does not
verify with Alipay's public key, when `app_id` is not ours, and — for a trade notification — when
`out_trade_no` is not one of our trades, `auth_app_id` is not the trade's merchant, or `total_amount` is
not the trade's amount."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from common.http import PlatformError
from common.inbox import Verdict, receive

from .client import get_client
from .models import AlipayInboxEvent, Trade
from .tasks import process_alipay_event

SOURCE = "alipay"
MAX_PARAMS = 80


def _params(body: bytes) -> dict[str, str] | None:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_PARAMS,
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or any("\x00" in k or "\x00" in v for k, v in pairs):
        return None
    return params


def verify(request, body: bytes) -> Verdict:
    params = _params(body)
    if params is None:
        return Verdict.reject("malformed form body", status=400)
    if not params.get("sign"):
        return Verdict.reject("missing signature", status=401)
    try:
        client = get_client()
    except PlatformError:
        return Verdict.reject("Alipay is not configured here", status=503)
    if not client.verify_notification(params):
        return Verdict.reject("bad signature", status=401)
    if params.get("app_id") != settings.ALIPAY_APP_ID:
        return Verdict.reject("app_id is not ours", status=401)
    notify_id, kind = params.get("notify_id", ""), params.get("notify_type", "")
    if not notify_id or len(notify_id) > 128:
        return Verdict.reject("missing notify_id", status=400)
    fields: dict = {}
    if kind == "trade_status_sync":
        trade = Trade.objects.select_related("merchant").filter(out_trade_no=params.get("out_trade_no", "")).first()
        if trade is None:
            return Verdict.reject("unknown out_trade_no", status=400)
        try:
            amount = Decimal(params.get("total_amount", ""))
        except InvalidOperation:
            amount = None
        if amount != trade.total_amount:
            return Verdict.reject("total_amount does not match the trade", status=400)
        auth_app_id = params.get("auth_app_id", "")
        if auth_app_id and trade.merchant.auth_app_id and auth_app_id != trade.merchant.auth_app_id:
            return Verdict.reject("auth_app_id is not the trade's merchant", status=401)
        fields = {"trade": trade, "out_trade_no": trade.out_trade_no}
    return Verdict(ok=True, key=notify_id, topic=kind[:64], fields=fields)


def _success() -> HttpResponse:
    return HttpResponse("success", content_type="text/plain; charset=utf-8")


@csrf_exempt
def alipay(request):
    return receive(request, model=AlipayInboxEvent, source=SOURCE, verify=verify, task=process_alipay_event,
                   success=_success)
