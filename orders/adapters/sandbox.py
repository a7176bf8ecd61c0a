"""Sandbox: a local stand-in for a platform, for trying product rules without one. The platform's side of
each order lives in `SandboxOrder` (its `status` holds OrderStatus values directly); every call is recorded
in `SandboxCall` (both marked 沙箱 in the admin). Orders enter with `manage.py sandbox_order` (or
`orders.services.sandbox_order_simulate`), whose inbox events carry `{"order_no", "status", "modified_at"}`.

Like a real platform it refuses to ship an order that is not awaiting shipment (paid), a physical shipment
without a waybill, and closing one that has shipped; a refusal is recorded and raises a non-retryable
PlatformError. `message_buyer` records the exact text the buyer would read (`SandboxMessage`, shown on the
sandbox order's admin page); `ship_virtual` is the status-only virtual shipment. It has no webhook:
`verify_push` always answers False."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from common.http import ConfigurationError, PlatformError

from .base import Adapter, OrderPage, OrderSnapshot, PushMessage, ShipRequest, ShipResult

SHIPPABLE = ("paid",)
CLOSABLE = ("pending_payment", "paid")
MESSAGEABLE = ("paid", "shipped", "completed")


class SandboxAdapter(Adapter):
    platform = "sandbox"
    list_cap = 10000
    list_window = timedelta(days=180)  # like 闲管家
    can_message_buyer = True
    can_ship_virtual = True

    def _record(self, method: str, params: dict, response: dict) -> None:
        from orders.models import SandboxCall

        SandboxCall.objects.create(shop=self.shop, method=method, params=params, response=response)

    def _locked(self, method: str, order_no: str, params: dict):
        """The order, row-locked (call inside a transaction); records and raises when it does not exist."""
        from orders.models import SandboxOrder

        order = SandboxOrder.objects.select_for_update().filter(shop=self.shop, order_no=order_no).first()
        if order is None:
            self._record(method, params, {"error": "order not found"})
        return order

    # inbound -------------------------------------------------------------------------------------
    def verify_push(self, *, query, body, headers) -> bool:
        return False  # the sandbox delivers its messages in-process, never over HTTP

    def parse_push(self, *, query: dict[str, str], body: bytes) -> PushMessage:
        """Read a sandbox inbox event body `{"order_no", "status", "modified_at"}` (ISO time)."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("sandbox message is not an object")
        status = str(data.get("status") or "")
        modified = data.get("modified_at")
        return PushMessage(
            key=f"sandbox:{data.get('order_no')}:{status}:{modified}", topic="order",
            platform_order_id=str(data.get("order_no") or ""),
            event_at=datetime.fromisoformat(modified) if modified else None,
            raw_status=status, target_status=status or None,
        )

    # outbound ------------------------------------------------------------------------------------
    def fetch_order(self, platform_order_id: str) -> OrderSnapshot:
        from orders.models import SandboxOrder

        params = {"order_no": platform_order_id}
        o = SandboxOrder.objects.filter(shop=self.shop, order_no=platform_order_id).first()
        if o is None:
            self._record("fetch_order", params, {"error": "order not found"})
            raise PlatformError(f"sandbox: order {platform_order_id} not found", code="not_found")
        self._record("fetch_order", params, {"status": o.status})
        return self.snapshot(o)

    def list_orders(self, *, start, end, page_no, page_size) -> OrderPage:
        from orders.models import SandboxOrder

        params = {"start": start.isoformat(), "end": end.isoformat(), "page_no": page_no, "page_size": page_size}
        if page_no < 1 or not 1 <= page_size <= self.list_page_size or page_no * page_size > self.list_cap:
            self._record("list_orders", params, {"error": "bad paging"})
            raise PlatformError(f"sandbox: bad paging page_no={page_no} page_size={page_size}", code="bad_paging")
        qs = SandboxOrder.objects.filter(shop=self.shop, modified_at__range=(start, end)).order_by("modified_at", "pk")
        total = qs.count()
        rows = list(qs[(page_no - 1) * page_size: page_no * page_size])
        self._record("list_orders", params, {"count": total, "returned": len(rows)})
        return OrderPage([self.snapshot(o) for o in rows], total, page_no, page_size)

    def _ship(self, method: str, order_no: str, params: dict, waybill_no: str, express_name: str) -> ShipResult:
        with transaction.atomic():
            o = self._locked(method, order_no, params)
            if o is None:
                answer = {"error": "order not found"}
            elif o.status not in SHIPPABLE:
                answer = {"error": "order status does not allow shipping", "status": o.status}
                self._record(method, params, answer)
            else:
                o.status, o.modified_at = "shipped", timezone.now()
                o.waybill_no, o.express_name = waybill_no, express_name
                o.save(update_fields=["status", "waybill_no", "express_name", "modified_at"])
                answer = {"ok": True}
                self._record(method, params, answer)
        if "error" in answer:
            raise PlatformError(f"sandbox: cannot ship {order_no}: {answer['error']}",
                                code=answer.get("status") or "not_found", payload=answer)
        return ShipResult(ok=True, message=f"sandbox {method}: ok", raw=answer)

    def ship(self, req: ShipRequest) -> ShipResult:
        params = {"order_no": req.platform_order_id, "waybill_no": req.waybill_no, "express_code": req.express_code,
                  "express_name": req.express_name}
        if not req.waybill_no.strip():
            self._record("ship", params, {"error": "waybill_no required"})
            raise ConfigurationError("sandbox: a physical shipment needs a real waybill (virtual goods: ship_virtual)")
        return self._ship("ship", req.platform_order_id, params, req.waybill_no.strip(), req.express_name)

    def ship_virtual(self, platform_order_id: str) -> ShipResult:
        return self._ship("ship_virtual", platform_order_id, {"order_no": platform_order_id}, "", "无需物流")

    def message_buyer(self, platform_order_id: str, text: str) -> ShipResult:
        """Record `text` as received by the sandbox buyer (SandboxMessage, shown with the sandbox order)."""
        from orders.models import SandboxMessage

        params = {"order_no": platform_order_id, "chars": len(text)}
        with transaction.atomic():
            o = self._locked("message_buyer", platform_order_id, params)
            if o is None:
                answer = {"error": "order not found"}
            elif not text:
                answer = {"error": "empty text"}
                self._record("message_buyer", params, answer)
            elif o.status not in MESSAGEABLE:
                answer = {"error": "order status does not allow messages", "status": o.status}
                self._record("message_buyer", params, answer)
            else:
                message = SandboxMessage.objects.create(order=o, text=text)
                answer = {"ok": True, "message_id": message.pk}
                self._record("message_buyer", params, answer)
        if "error" in answer:
            raise PlatformError(f"sandbox: cannot message the buyer of {platform_order_id}: {answer['error']}",
                                code=answer.get("status") or "refused", payload=answer)
        return ShipResult(ok=True, message=f"sandbox message_buyer: message #{answer['message_id']}", raw=answer)

    def close(self, platform_order_id: str, reason: str) -> None:
        params = {"order_no": platform_order_id, "reason": reason}
        with transaction.atomic():
            o = self._locked("close", platform_order_id, params)
            if o is None:
                answer = {"error": "order not found"}
            elif o.status == "closed":
                answer = {"ok": True, "already": True}
                self._record("close", params, answer)
            elif o.status not in CLOSABLE:
                answer = {"error": "order status does not allow closing", "status": o.status}
                self._record("close", params, answer)
            else:
                o.status, o.modified_at = "closed", timezone.now()
                o.save(update_fields=["status", "modified_at"])
                answer = {"ok": True}
                self._record("close", params, answer)
        if "error" in answer:
            raise PlatformError(f"sandbox: cannot close {platform_order_id}: {answer['error']}",
                                code=answer.get("status") or "not_found", payload=answer)

    @staticmethod
    def snapshot(o) -> OrderSnapshot:
        return OrderSnapshot(
            platform_order_id=o.order_no, raw_status=o.status, target_status=o.status, updated_at=o.modified_at,
            buyer_id=o.buyer_id, buyer_nick=o.buyer_nick, item_id=o.item_id, item_title=o.title,
            quantity=o.quantity, amount=(Decimal(o.amount_fen) / 100).quantize(Decimal("0.01")),
            shipped_at=o.modified_at if o.status == "shipped" else None,
            closed_at=o.modified_at if o.status == "closed" else None,
            waybill_no=o.waybill_no, express_name=o.express_name,
        )
