"""The mini-program API of the seed's "scheme A": `POST /api/v1/miniapp/orders/` with
`{"platform_order_id": "…", "access_token": "…"}` (optionally `"app_key"` to pick the shop when several open
platform shops exist). The buyer's mini-program sends its order id and its own access token; we trust the
pair only after the open platform answers `alibaba.idle.isv.order.query` for that order *with that token*
(the platform decides which orders a buyer's token may see). Then we sync the order (a paid order that
needs KYC gets its verification here if it had not yet), store the buyer's token encrypted on their
BuyerIdentity, and answer the verification link.

Refusals change nothing: malformed input 400, a token the platform refuses 401, an order the token may not
see 403, an unknown shop 404, too many calls 429 (per client address and per order), the platform
unreachable 503. No login and no cookies: CSRF does not apply."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import BuyerIdentity, Platform, Shop
from common.http import ConfigurationError, PlatformError
from common.inbox import client_ip
from orders.adapters.goofish import GoofishAdapter, TopClient
from orders.models import Order
from orders.services import order_sync

from .limits import allow
from .models import Verification
from .services import policy_for
from .sessions import page_state

log = logging.getLogger(__name__)
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOKEN = re.compile(r"^[\x21-\x7e]{1,512}$")  # printable ASCII, no spaces
SESSION_CODES = {"26", "27"}
PER_ORDER_PER_MINUTE = 10


class MiniappError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _shop_for(platform_order_id: str, app_key: str) -> Shop:
    shops = Shop.objects.filter(platform=Platform.GOOFISH, is_active=True)
    if app_key:
        shop = shops.filter(app_key=app_key).first()
        if shop is None:
            raise MiniappError(404, "unknown_app", "未知的应用")
        return shop
    known = Order.objects.filter(platform_order_id=platform_order_id, shop__in=shops).select_related("shop").first()
    if known is not None:
        return known.shop
    candidates = list(shops[:2])
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise MiniappError(404, "no_shop", "未配置闲鱼开放平台店铺")
    raise MiniappError(400, "app_key_required", "存在多个店铺，请提供 app_key")


def _query(shop: Shop, platform_order_id: str, access_token: str) -> dict:
    """The order as the platform shows it to this buyer token (the trust decision)."""
    client = TopClient(shop.app_key, shop.app_secret, session=access_token)
    try:
        answer = client.call("alibaba.idle.isv.order.query",
                             param_appraise_isv_order_query={"biz_order_id": platform_order_id})
    except ConfigurationError as exc:
        sub = str((exc.payload or {}).get("sub_code") or "") if isinstance(exc.payload, dict) else ""
        if str(exc.code) in SESSION_CODES or "session" in sub:
            raise MiniappError(401, "token_rejected", "登录已失效，请重新授权后再试") from exc
        log.error("miniapp: open platform refused our credentials for shop %s: %s", shop.pk, exc)
        raise MiniappError(503, "platform_unavailable", "服务暂时不可用，请稍后再试") from exc
    except PlatformError as exc:
        if exc.retryable:
            raise MiniappError(503, "platform_unavailable", "平台暂时无法访问，请稍后再试") from exc
        raise MiniappError(403, "order_not_visible", "无法用当前账号查询到该订单") from exc
    result = answer.get("result") or answer.get("alibaba_idle_isv_order_query_response", {}).get("result") or {}
    module = result.get("module") if isinstance(result, dict) else None
    if not isinstance(module, dict) or str(module.get("biz_order_id")) != platform_order_id:
        raise MiniappError(403, "order_not_visible", "无法用当前账号查询到该订单")
    return module


def miniapp_order_link(*, platform_order_id: str, access_token: str, app_key: str = "") -> dict:
    """Verify the buyer's token on the platform, sync the order, keep the token, answer the KYC link."""
    shop = _shop_for(platform_order_id, app_key)
    module = _query(shop, platform_order_id, access_token)
    snapshot = GoofishAdapter.snapshot(module)
    order = order_sync(shop=shop, snapshot=snapshot, source="miniapp").order
    if snapshot.buyer_id:
        with transaction.atomic():
            buyer = BuyerIdentity.objects.select_for_update().filter(
                platform=Platform.GOOFISH, platform_user_id=snapshot.buyer_id).first()
            if buyer is not None and buyer.access_token != access_token:
                buyer.access_token = access_token
                buyer.save(update_fields=["access_token", "updated_at"])
    order = Order.objects.select_related("product").get(pk=order.pk)
    body: dict = {"order": {"platform_order_id": order.platform_order_id, "status": order.status}}
    v = (Verification.objects.select_related("order").filter(order=order).order_by("-created_at", "-pk").first())
    if v is None:
        body["kyc"] = {"required": policy_for(order.product) is not None, "status": None}
    else:
        body["kyc"] = {"required": True, "status": v.status, "state": page_state(v), "url": v.url,
                       "expires_at": timezone.localtime(v.expires_at).isoformat()}
    return body


class MiniappOrderInput(serializers.Serializer):
    platform_order_id = serializers.CharField(max_length=64, trim_whitespace=True)
    access_token = serializers.CharField(max_length=512, trim_whitespace=True)
    app_key = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")

    def validate_platform_order_id(self, value):
        if not ORDER_ID.match(value):
            raise serializers.ValidationError("订单号格式不正确")
        return value

    def validate_access_token(self, value):
        if not TOKEN.match(value):
            raise serializers.ValidationError("令牌格式不正确")
        return value

    def validate_app_key(self, value):
        if value and not TOKEN.match(value):
            raise serializers.ValidationError("app_key 格式不正确")
        return value


class _OrderOut(serializers.Serializer):
    platform_order_id = serializers.CharField()
    status = serializers.CharField()


class _KycOut(serializers.Serializer):
    required = serializers.BooleanField()
    status = serializers.CharField(allow_null=True, help_text="the verification's status, null when none yet")
    state = serializers.CharField(required=False, help_text="what the verify page shows: open, retry, pending, "
                                                            "approved, rejected, expired, closed")
    url = serializers.URLField(required=False)
    expires_at = serializers.DateTimeField(required=False)


class MiniappOrderOutput(serializers.Serializer):
    order = _OrderOut()
    kyc = _KycOut()


class MiniappErrorOutput(serializers.Serializer):
    error = serializers.CharField()
    message = serializers.CharField(help_text="Chinese, for the buyer")


class MiniappOrderView(APIView):
    """POST /api/v1/miniapp/orders/ (anonymous; the platform's answer is the authentication)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    @extend_schema(request=MiniappOrderInput, responses={200: MiniappOrderOutput, **{
        status: MiniappErrorOutput for status in (400, 401, 403, 404, 429, 503)}})
    def post(self, request):
        if not allow(f"miniapp:ip:{client_ip(request)}", limit=settings.KYC_MINIAPP_RATE_PER_MINUTE):
            return _error(429, "rate_limited", "请求过于频繁，请稍后再试")
        if not isinstance(request.data, dict):
            return _error(400, "invalid", "请求体必须是 JSON 对象")
        form = MiniappOrderInput(data=request.data)
        if not form.is_valid():
            fields = ", ".join(sorted(form.errors))
            return _error(400, "invalid", f"参数不正确：{fields}")
        data = form.validated_data
        if not allow(f"miniapp:order:{data['platform_order_id']}", limit=PER_ORDER_PER_MINUTE):
            return _error(429, "rate_limited", "请求过于频繁，请稍后再试")
        try:
            body = miniapp_order_link(platform_order_id=data["platform_order_id"],
                                      access_token=data["access_token"], app_key=data["app_key"])
        except MiniappError as exc:
            return _error(exc.status, exc.code, exc.message)
        return Response(body)


def _error(status: int, code: str, message: str) -> Response:
    return Response({"error": code, "message": message}, status=status)
