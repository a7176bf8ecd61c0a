"""Reads the payments pages and API share: application lists with their filters, an application's Alipay
answers, what is still refundable on a trade."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from .models import HOLDING, AlipayCall, FacetofaceApplication, Trade


def applications(*, status: str | None = None, attention: bool | None = None, merchant_id: int | None = None,
                 q: str = "") -> QuerySet[FacetofaceApplication]:
    """Newest first; `q` matches the merchant's or the shop's name."""
    qs = FacetofaceApplication.objects.order_by("-created_at", "-pk")
    if status:
        qs = qs.filter(status=status)
    if attention is not None:
        qs = qs.filter(needs_attention=attention)
    if merchant_id is not None:
        qs = qs.filter(merchant_id=merchant_id)
    if q:
        qs = qs.filter(Q(merchant_name__icontains=q) | Q(shop_name__icontains=q))
    return qs


def application_calls(application: FacetofaceApplication, *, limit: int = 100) -> QuerySet[AlipayCall]:
    return application.alipay_calls.order_by("-created_at", "-pk")[:limit]


def refundable(trade: Trade) -> Decimal:
    """What may still be refunded: the paid amount less every refund that is not failed."""
    held = trade.refunds.filter(status__in=HOLDING).aggregate(s=Sum("amount"))["s"] or Decimal("0")
    return trade.total_amount - held
