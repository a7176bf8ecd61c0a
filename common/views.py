"""`/healthz/`: status for anyone (load balancers, uptime checks), details for staff or a monitoring token."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from .health import check_health

TOKEN_HEADER = "HTTP_X_HEALTHZ_TOKEN"  # X-Healthz-Token


def may_see_details(request) -> bool:
    """A staff session, or the `HEALTHZ_TOKEN` in the X-Healthz-Token header (compared in constant time)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return True
    token, sent = settings.HEALTHZ_TOKEN, request.META.get(TOKEN_HEADER, "")
    return bool(token) and hmac.compare_digest(token.encode(), sent.encode("utf-8", "replace"))


@never_cache
def healthz(request):
    """200 {"ok": true} or 503 {"ok": false}; the checks (database, broker, worker, beat, inbox backlog)
    only for staff or the token: they name our components and their errors."""
    report = check_health()
    status = 200 if report["ok"] else 503
    if not may_see_details(request):
        return JsonResponse({"ok": report["ok"]}, status=status)
    return JsonResponse(report, status=status, encoder=DjangoJSONEncoder)
