"""Platform adapters. `get_adapter(shop)` picks the one for the shop's platform."""

from __future__ import annotations

from .base import Adapter, OrderPage, OrderSnapshot, PushMessage, ShipRequest, ShipResult

__all__ = ["Adapter", "OrderPage", "OrderSnapshot", "PushMessage", "ShipRequest", "ShipResult", "get_adapter"]


def get_adapter(shop, **kwargs) -> Adapter:
    from .goofish import GoofishAdapter
    from .sandbox import SandboxAdapter
    from .xianguanjia import XianguanjiaAdapter

    registry = {"goofish": GoofishAdapter, "xianguanjia": XianguanjiaAdapter, "sandbox": SandboxAdapter}
    try:
        cls = registry[shop.platform]
    except KeyError:
        raise ValueError(f"no adapter for platform {shop.platform!r}") from None
    return cls(shop, **kwargs)
