"""One small interface for every platform (DESIGN.md §2): verify an inbound push, normalise it, fetch an
order, ship, close, list a page of orders. Adapters speak the platform's wire format and return these
plain dataclasses; `orders.services` never sees a platform's field names."""

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
    platform_order_id: str
    waybill_no: str = ""
    express_code: str = ""
    express_name: str = ""
    content: str = ""          # delivery content for virtual goods, where the platform can carry it


@dataclass
class ShipResult:
    ok: bool
    message: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


class Adapter:
    """Base class. `shop` is an accounts.Shop (credentials decrypted on access)."""

    platform: ClassVar[str] = ""
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
        """Mark the order shipped on the platform. Raises PlatformError on failure."""
        raise NotImplementedError

    def close(self, platform_order_id: str, reason: str) -> None:
        raise NotImplementedError

    def list_orders(self, *, start: datetime, end: datetime, page_no: int, page_size: int) -> OrderPage:
        """Orders updated in [start, end], one page. Only for platforms with a list API."""
        raise NotImplementedError(f"{self.platform} has no order list API")
