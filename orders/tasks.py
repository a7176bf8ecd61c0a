"""Thin tasks: load, call a service."""

from celery import shared_task

from common.inbox import due_events, nudge, process

from .models import OrderInboxEvent


@shared_task(name="orders.tasks.process_order_event", acks_late=True)
def process_order_event(event_id: int) -> str:
    from .services import order_event_handle

    return process(OrderInboxEvent, event_id, order_event_handle)


@shared_task(name="orders.tasks.sweep_inbox")
def sweep_inbox() -> int:
    """Every minute (beat): re-dispatch order events whose nudge was lost, whose retry is due, or whose
    worker died mid-processing."""
    ids = list(due_events(OrderInboxEvent))
    for pk in ids:
        nudge(process_order_event, pk)
    return len(ids)
