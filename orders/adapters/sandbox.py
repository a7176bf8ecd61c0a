"""Sandbox: a local stand-in for a platform, for trying product rules without one. The platform's side of
each order lives in `SandboxOrder`; every call is recorded in `SandboxCall` (both marked 沙箱 in the admin).
Orders enter with `manage.py sandbox_order` (or `orders.services.sandbox_order_simulate`)."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from common.http import PlatformError

from .base import Adapter, OrderPage, OrderSnapshot, ShipRequest, ShipResult


class SandboxAdapter(Adapter):
    platform = "sandbox"
    list_cap = 10000

    def _record(self, method: str, params: dict, response: dict) -> None:
        from orders.models import SandboxCall

        SandboxCall.objects.create(shop=self.shop, method=method, params=params, response=response)

    def _get(self, order_no: str):
        from orders.models import SandboxOrder

        order = SandboxOrder.objects.filter(shop=self.shop, order_no=order_no).first()
        if order is None:
            self._record("fetch_order", {"order_no": order_no}, {"error": "not found"})
            raise PlatformError(f"sandbox: order {order_no} not found")
        return order

    def verify_push(self, *, query, body, headers) -> bool:
        return False  # the sandbox delivers its messages in-process, never over HTTP

    def fetch_order(self, platform_order_id: str) -> OrderSnapshot:
        o = self._get(platform_order_id)
        self._record("fetch_order", {"order_no": platform_order_id}, {"status": o.status})
        return self.snapshot(o)

    def list_orders(self, *, start, end, page_no, page_size) -> OrderPage:
        from orders.models import SandboxOrder

        qs = SandboxOrder.objects.filter(shop=self.shop, modified_at__range=(start, end)).order_by("modified_at", "pk")
        total = qs.count()
        rows = list(qs[(page_no - 1) * page_size: page_no * page_size])
        self._record("list_orders", {"page_no": page_no, "page_size": page_size}, {"count": total})
        return OrderPage([self.snapshot(o) for o in rows], total, page_no, page_size)

    def ship(self, req: ShipRequest) -> ShipResult:
        from orders.models import SandboxOrder

        params = {"order_no": req.platform_order_id, "waybill_no": req.waybill_no, "express_name": req.express_name,
                  "content": req.content[:500]}
        with transaction.atomic():
            o = SandboxOrder.objects.select_for_update().filter(shop=self.shop, order_no=req.platform_order_id).first()
            refused = o is None or o.status != "paid"
            if not refused:
                o.status, o.waybill_no, o.express_name = "shipped", req.waybill_no, req.express_name
                o.modified_at = timezone.now()
                o.save()
            answer = ({"error": "order status does not allow shipping", "status": o.status if o else None}
                      if refused else {"ok": True})
            self._record("ship", params, answer)
        if refused:
            raise PlatformError(f"sandbox: cannot ship {req.platform_order_id}: {answer['status']}")
        return ShipResult(ok=True, message="sandbox shipped", raw=params)

    def close(self, platform_order_id: str, reason: str) -> None:
        o = self._get(platform_order_id)
        o.status, o.modified_at = "closed", timezone.now()
        o.save(update_fields=["status", "modified_at"])
        self._record("close", {"order_no": platform_order_id, "reason": reason}, {"ok": True})

    @staticmethod
    def snapshot(o) -> OrderSnapshot:
        return OrderSnapshot(
            platform_order_id=o.order_no, raw_status=o.status, target_status=o.status, updated_at=o.modified_at,
            buyer_id=o.buyer_id, buyer_nick=o.buyer_nick, item_id=o.item_id, item_title=o.title,
            quantity=o.quantity, amount=(Decimal(o.amount_fen) / 100).quantize(Decimal("0.01")),
            waybill_no=o.waybill_no, express_name=o.express_name,
        )
