"""The buyer's KYC page `/verify/<token>/` and its small endpoints: `token/` (a WebSDK access token, also the
SDK's refresh callback), `status/` (the page state, for polling) and `sandbox/` (the local sandbox's review
buttons). No login and no cookies of ours: the token in the link is the credential, so the POST endpoints
need no CSRF token (there is no ambient authority to forge).

Every answer is hardened: a CSP that allows scripts, frames and connections only to Sumsub's origins (and
the page's own nonce'd inline code), no caching, no referrer, no framing (frame-ancestors 'none' and
X-Frame-Options DENY), no sniffing, no indexing. Chinese content, whatever language the visitor chose
(common.i18n.buyer_page)."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from common.http import PlatformError
from common.i18n import buyer_page

from .limits import allow
from .sandbox import ANSWERS, sandbox_review
from .services import KycError, buyer_reason, labels_text, local_time
from .sessions import USABLE, LinkUnusable, page_mode, page_state, session_start, verification_by_token

log = logging.getLogger(__name__)
SUMSUB_SDK = "https://static.sumsub.com/idensic/static/sns-websdk-builder.js"
SUMSUB_ORIGINS = ("https://static.sumsub.com", "https://api.sumsub.com", "https://*.sumsub.com")
TOKEN_LIMIT_PER_HOUR = 30
SANDBOX_LIMIT_PER_10_MIN = 10
STATE_MESSAGES = {
    "approved": "您已完成实名认证。", "rejected": "实名认证未通过。", "expired": "认证链接已过期。",
    "closed": "订单已关闭或已退款，无需认证。", "unavailable": "认证服务暂不可用，请稍后再试。",
}


def _sumsub_origins() -> list[str]:
    origins = list(SUMSUB_ORIGINS)
    parts = urlsplit(settings.SUMSUB_BASE_URL)
    if parts.scheme and parts.netloc:
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins


def csp(nonce: str) -> str:
    sumsub = " ".join(_sumsub_origins())
    return "; ".join([
        "default-src 'none'",
        f"script-src 'nonce-{nonce}' https://static.sumsub.com",
        f"style-src 'nonce-{nonce}' {sumsub}",
        "style-src-attr 'unsafe-inline'",  # style attributes the WebSDK may set on its iframe; never scripts
        f"img-src 'self' data: blob: {sumsub}",
        f"font-src {sumsub}",
        f"connect-src 'self' {sumsub} wss://*.sumsub.com",
        f"frame-src {sumsub}",
        f"media-src blob: {sumsub}",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ])


def harden(response: HttpResponse, nonce: str | None = None) -> HttpResponse:
    response["Content-Security-Policy"] = csp(nonce or secrets.token_urlsafe(16))
    response["Cache-Control"] = "no-store, max-age=0"
    response["Pragma"] = "no-cache"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Frame-Options"] = "DENY"
    response["X-Content-Type-Options"] = "nosniff"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Permissions-Policy"] = "geolocation=(), payment=(), usb=()"
    return response


def _json(data: dict, status: int = 200) -> JsonResponse:
    return harden(JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False}))


def _missing(request) -> HttpResponse:
    nonce = secrets.token_urlsafe(16)
    return harden(render(request, "kyc/verify.html", {"state": "missing", "nonce": nonce}, status=404), nonce)


@buyer_page
@require_GET
def verify_page(request, token: str):
    v = verification_by_token(token)
    if v is None:
        return _missing(request)
    nonce = secrets.token_urlsafe(16)
    state, mode = page_state(v), page_mode()
    sent = request.GET.get("sent", "")
    context = {
        "state": state, "mode": mode, "nonce": nonce, "order": v.order, "verification": v,
        "expires": local_time(v.expires_at), "reason": buyer_reason(v) if state in ("retry", "rejected") else "",
        "labels": labels_text(v.reject_labels) if state == "retry" else "",
        "comment": v.moderation_comment if state in ("retry", "rejected") else "",
        "sdk_url": SUMSUB_SDK, "token_url": reverse("kyc:token", args=[token]),
        "status_url": reverse("kyc:status", args=[token]), "sandbox_url": reverse("kyc:sandbox", args=[token]),
        "sent": sent if sent in ANSWERS else "", "error": request.GET.get("error", "")[:100] == "1",
        "poll": state == "pending" or (sent in ANSWERS and state in ("open", "retry")),
        "show_sdk": mode == "sumsub" and state in USABLE,
        "show_sandbox": mode == "sandbox" and state in ("open", "retry"),
    }
    return harden(render(request, "kyc/verify.html", context), nonce)


@buyer_page
@csrf_exempt
@require_POST
def verify_token(request, token: str):
    """A WebSDK access token (the page's first call and the SDK's refresh callback)."""
    v = verification_by_token(token)
    if v is None:
        return _json({"error": "not_found", "message": "链接无效"}, 404)
    if not allow(f"token:{v.pk}", limit=TOKEN_LIMIT_PER_HOUR, window=3600):
        return _json({"error": "rate_limited", "message": "操作过于频繁，请稍后再试"}, 429)
    try:
        access_token = session_start(v)
    except LinkUnusable as exc:
        return _json({"error": exc.state, "state": exc.state,
                      "message": STATE_MESSAGES.get(exc.state, "认证已结束")}, 410)
    except KycError:
        return _json({"error": "unavailable", "message": STATE_MESSAGES["unavailable"]}, 503)
    except PlatformError as exc:
        log.warning("verify %s: Sumsub session failed: %s", v.pk, exc)
        return _json({"error": "sumsub_unavailable", "message": "认证服务暂时无法连接，请稍后刷新重试"}, 502)
    return _json({"token": access_token})


@buyer_page
@require_GET
def verify_status(request, token: str):
    v = verification_by_token(token)
    if v is None:
        return _json({"error": "not_found"}, 404)
    return _json({"state": page_state(v), "checked_at": timezone.localtime().isoformat()})


@buyer_page
@csrf_exempt
@require_POST
def verify_sandbox(request, token: str):
    """The local sandbox's buttons: play Sumsub's review by sending signed webhooks to our own endpoint."""
    if page_mode() != "sandbox":
        return _missing(request)
    v = verification_by_token(token)
    if v is None:
        return _missing(request)
    answer = request.POST.get("answer", "")
    if answer not in ANSWERS:
        return harden(HttpResponse("未知的操作", status=400, content_type="text/plain; charset=utf-8"))
    if not allow(f"sandbox:{v.pk}", limit=SANDBOX_LIMIT_PER_10_MIN, window=600):
        return harden(HttpResponse("操作过于频繁，请稍后再试", status=429, content_type="text/plain; charset=utf-8"))
    url = settings.KYC_SANDBOX_WEBHOOK_URL or request.build_absolute_uri(reverse("webhook-sumsub"))
    page = reverse("kyc:verify", args=[token])
    try:
        sandbox_review(v, answer=answer, comment=request.POST.get("comment", ""), webhook_url=url)
    except LinkUnusable:
        return harden(redirect(page, permanent=False))
    except KycError as exc:
        log.warning("verify %s: sandbox review failed: %s", v.pk, exc)
        return harden(redirect(f"{page}?error=1", permanent=False))
    return harden(redirect(f"{page}?sent={answer}", permanent=False))
