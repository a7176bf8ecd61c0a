"""One small interface for every platform (DESIGN.md §2): verify an inbound push, normalise it, fetch an
order, hand delivery content to the buyer, ship, close, list a page of orders. Adapters speak the
platform's wire format and return these plain dataclasses; services never see a platform's field names.

Delivery (what each platform really offers, with sources: docs/platforms.md). Capability flags say which
calls a platform has; a call it lacks raises ConfigurationError (a PlatformError that is not retryable):
- `can_message_buyer` / `message_buyer(platform_order_id, text)`: put text in front of the order's buyer on
  the platform (TOP's virtual-delivery message; the sandbox records it). Used for delivery content and by
  KYC for its verification link.
- `can_card_pool` / `card_pool_add(kind_id=, codes=)`, `card_pool_send(order)`, `card_pool_delivered(order)`:
  the platform delivers codes from its own pool (闲管家 卡种 + its 卡密 message); `card_pool_send` also marks
  the order shipped; `card_pool_delivered` is the proof (the codes the platform says it delivered).
- `can_ship_virtual` / `ship_virtual(order)`: status-only shipment of a virtual order (no waybill).
- `ship(req)`: physical shipment with a real waybill; refused without one (never an invented waybill).
Every write returns a ShipResult whose `message` is a short, secret-free summary of the platform's answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar


@dataclass
class PushMessage:
    """A verified inbound message, normalised."""

    key: str                      # unique per platform message (id, or digest of the body)
    topic: str                    # e.g. "order", "refund"
    platform_order_id: str
    event_at: datetime | None     # when the platform says the change happened (for stale detection)
    raw_status: str = ""          # the status carried by the message, if any
    target_status: str | None = None  # OrderStatus it maps to, if the message carries enough to tell


@dataclass
class OrderSnapshot:
    """An order as the platform reports it, in our terms (amounts in yuan, times aware)."""

    platform_order_id: str
    raw_status: str                       # platform's own code, e.g. "12" or "2"
    target_status: str                    # an OrderStatus value
    updated_at: datetime | None = None    # the platform's modification time, if known
    buyer_id: str = ""
    buyer_nick: str = ""
    item_id: str = ""
    item_title: str = ""
    sku: str = ""
    quantity: int = 1
    amount: Decimal = Decimal("0.00")
    receiver: dict[str, str] = field(default_factory=dict)   # name, phone, address … (only while shippable)
    paid_at: datetime | None = None
    shipped_at: datetime | None = None
    closed_at: datetime | None = None
    waybill_no: str = ""
    express_name: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class OrderPage:
    items: list[OrderSnapshot]
    total: int
    page_no: int
    page_size: int


@dataclass
class ShipRequest:
    """A physical shipment: the waybill is the courier's real tracking number."""

    platform_order_id: str
    waybill_no: str = ""
    express_code: str = ""
    express_name: str = ""


@dataclass
class ShipResult:
    """A platform's answer to a write call. `message`: short and free of secrets (stored as proof)."""

    ok: bool
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class Adapter:
    """Base class. `shop` is an accounts.Shop (credentials decrypted on access)."""

    platform: ClassVar[str] = ""
    can_message_buyer: ClassVar[bool] = False
    can_card_pool: ClassVar[bool] = False
    can_ship_virtual: ClassVar[bool] = False
    # Most records one list query can reach by paging (闲管家: 10,000); None = no list API.
    list_cap: ClassVar[int | None] = None
    list_page_size: ClassVar[int] = 100
    # How far back the list reaches (闲管家: orders updated in the last 6 months); None = no limit known.
    list_window: ClassVar[timedelta | None] = None

    def __init__(self, shop, **client_kwargs):
        self.shop = shop
        self.client_kwargs = client_kwargs

    # inbound -------------------------------------------------------------------------------------
    def verify_push(self, *, query: dict[str, str], body: bytes, headers: dict[str, str]) -> bool:
        """Check the push's signature with this shop's secret, in constant time."""
        raise NotImplementedError

    def parse_push(self, *, query: dict[str, str], body: bytes) -> PushMessage:
        raise NotImplementedError

    # outbound ------------------------------------------------------------------------------------
    def fetch_order(self, platform_order_id: str) -> OrderSnapshot:
        raise NotImplementedError

    def ship(self, req: ShipRequest) -> ShipResult:
        """Physical shipment with a real waybill (refused without one). Raises PlatformError on failure."""
        raise NotImplementedError

    def ship_virtual(self, platform_order_id: str) -> ShipResult:
        """Mark a virtual order shipped, status only (carries no content). Raises PlatformError."""
        raise self._lacks("a status-only virtual shipment")

    def message_buyer(self, platform_order_id: str, text: str) -> ShipResult:
        """Put `text` in front of the order's buyer on the platform. Raises PlatformError (ConfigurationError
        where the platform has no such call: check `can_message_buyer`)."""
        raise self._lacks("a message to the buyer")

    def card_pool_add(self, *, kind_id: str, codes: list[str]) -> ShipResult:
        """Add codes to the platform's card pool `kind_id` (a retry must not add a code twice)."""
        raise self._lacks("a card pool")

    def card_pool_send(self, platform_order_id: str) -> ShipResult:
        """Have the platform deliver the order's codes from its pool and mark the order shipped."""
        raise self._lacks("a card pool")

    def card_pool_delivered(self, platform_order_id: str) -> list[str]:
        """The codes the platform says it delivered to this order (empty until it did)."""
        raise self._lacks("a card pool")

    def _lacks(self, what: str):
        from common.http import ConfigurationError

        return ConfigurationError(f"{self.platform}: the platform offers no API for {what} (docs/platforms.md)")

    def close(self, platform_order_id: str, reason: str) -> None:
        raise NotImplementedError

    def list_orders(self, *, start: datetime, end: datetime, page_no: int, page_size: int) -> OrderPage:
        """Orders updated in [start, end], one page. Only for platforms with a list API."""
        raise NotImplementedError(f"{self.platform} has no order list API")
