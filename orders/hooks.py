"""Where later apps plug into the order flow without editing it (apps depend downward only).

Handlers run inside the transaction that moved the order, after the OrderEvent was written; they may
write rows (a Verification, a Shipment) and must defer any outbound call with `transaction.on_commit`.

- `paid_gates`: called when an order becomes `paid`. A gate returns a reason string to hold the order
  (it then goes to `awaiting_kyc`, and the gate's app releases it later with
  `orders.services.order_release`), or None to let it through to `ready_to_ship`.
- `on_ready_to_ship`, `on_shipped`, `on_closed` (closed or refunding/refunded before shipping):
  listeners called with the order.
"""

from __future__ import annotations

from collections.abc import Callable

paid_gates: list[Callable] = []
on_ready_to_ship: list[Callable] = []
on_shipped: list[Callable] = []
on_closed: list[Callable] = []


def _register(registry: list[Callable], fn: Callable) -> Callable:
    if fn not in registry:
        registry.append(fn)
    return fn


def register_paid_gate(fn):
    return _register(paid_gates, fn)


def register_on_ready_to_ship(fn):
    return _register(on_ready_to_ship, fn)


def register_on_shipped(fn):
    return _register(on_shipped, fn)


def register_on_closed(fn):
    return _register(on_closed, fn)
