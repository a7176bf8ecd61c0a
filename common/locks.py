"""Row locks, always in one order (DESIGN.md §4.3): order → verification → shipment → card codes → product
(and, in payments, trade → refund), several rows of one kind in primary-key order.

Every service takes its row locks through `lock_rows` / `lock_one`. Within one transaction the helper
remembers the highest rank locked so far and refuses (LockOrderError) a lock of a lower rank: two services
that lock the same rows in opposite orders deadlock under load, and this turns that into a test failure.
Models not in LOCK_ORDER (inbox events, deliveries, channels…) are locked through the helper too but are
not ranked: they are never held together with the ranked ones in a different order.

"One transaction" is the outermost atomic block that is not a test case's wrapper, so tests that call
several services in a row check each service's transaction on its own, as production runs them.
"""

from __future__ import annotations

from django.db import connections, router, transaction

LOCK_ORDER = ("orders.Order", "kyc.Verification", "shipping.Shipment", "shipping.CardCode", "orders.Product",
              # payments never holds these together with the order side: a trade before its refunds.
              "payments.Trade", "payments.Refund")
_RANK = {label: i for i, label in enumerate(LOCK_ORDER)}


class LockOrderError(RuntimeError):
    """A lock was requested against the project's lock order (a deadlock waiting to happen)."""


def _scope(conn):
    """(key, still_open) for the current transaction scope, or None when there is none to check."""
    blocks = conn.atomic_blocks
    outer = next((i for i, block in enumerate(blocks) if not block._from_testcase), None)
    if outer is None:
        return None  # a test body locking directly inside its own wrapper: nothing to scope by
    if outer > 0:
        sid = conn.savepoint_ids[outer - 1]
        return None if sid is None else sid
    return "txn"


def _state(model, using: str) -> dict | None:
    """This transaction's lock record, or None when the model is unranked or there is no scope to check."""
    if model._meta.label not in _RANK:
        return None
    conn = connections[using]
    if not conn.in_atomic_block:
        raise LockOrderError(f"lock of {model._meta.label} outside a transaction")
    key = _scope(conn)
    if key is None:
        return None
    state = getattr(conn, "_xo_lock_state", None)
    if state is not None and state["key"] == key and key == "txn":
        # A real transaction: its record lives while the on_commit marker it registered is pending.
        if not any(fn is state["marker"] for _sids, fn, _robust in conn.run_on_commit):
            state = None
    elif state is not None and state["key"] != key:
        state = None
    if state is None:
        state = {"key": key, "rank": -1, "label": "", "marker": None, "held": set()}
        if key == "txn":
            state["marker"] = _marker()
            transaction.on_commit(state["marker"], using=using)
        conn._xo_lock_state = state
    return state


def _check(state: dict | None, model, rows: list) -> None:
    """After locking: a lower rank than already held is an error unless every row was already held (locking
    a row again does not wait, so it cannot deadlock)."""
    if state is None:
        return
    label, rank = model._meta.label, _RANK[model._meta.label]
    keys = {(label, row.pk) for row in rows}
    if rank < state["rank"] and not keys <= state["held"]:
        raise LockOrderError(f"{label} locked after {state['label']}: the lock order is {' → '.join(LOCK_ORDER)}")
    state["held"] |= keys
    if rank >= state["rank"]:
        state["rank"], state["label"] = rank, label


def _marker():
    def lock_scope_ended():
        """on_commit marker: its presence in the pending callbacks says the transaction is still open."""

    return lock_scope_ended


def _using(queryset) -> str:
    return queryset._db or router.db_for_write(queryset.model)


def lock_rows(queryset, *, skip_locked: bool = False, nowait: bool = False, limit: int | None = None) -> list:
    """Lock the queryset's rows of its own model (not joined ones) in pk order and return them (the first
    `limit` of them, if given)."""
    state = _state(queryset.model, _using(queryset))
    qs = queryset.select_for_update(skip_locked=skip_locked, nowait=nowait, of=("self",)).order_by("pk")
    rows = list(qs[:limit] if limit is not None else qs)
    _check(state, queryset.model, rows)
    return rows


def lock_one(queryset, *, skip_locked: bool = False, **filters):
    """Lock one row of the queryset (filtered by `filters`); None when there is none, or when it is held
    by another transaction and `skip_locked` is set."""
    rows = lock_rows(queryset.filter(**filters), skip_locked=skip_locked, limit=1)
    return rows[0] if rows else None
