"""Thin tasks: load, call a service."""

from celery import shared_task


@shared_task(name="shipping.tasks.ship_shipment", acks_late=True)
def ship_shipment(shipment_id: int) -> str:
    """Send this shipment if it is due, with other due ones in the same batch (SHIP_BATCH_SIZE); a message
    whose shipment an earlier batch already took costs one read."""
    from .services import shipment_dispatch_due, shipment_ready

    status = shipment_ready(shipment_id)
    if status != "due":
        return status
    return shipment_dispatch_due(first=shipment_id).get(shipment_id, "locked-or-missing")


@shared_task(name="shipping.tasks.sweep_shipments")
def sweep_shipments() -> int:
    """Every minute (beat): dispatch shipments that are due, and re-dispatch `sending` ones whose lease ran
    out (their worker died; the dispatch reconciles with the platform before any new call)."""
    from common.inbox import nudge

    from .services import due_shipments

    ids = due_shipments()
    for pk in ids:
        nudge(ship_shipment, pk)
    return len(ids)
