"""Thin tasks: load, call a service."""

from celery import shared_task


@shared_task(name="kyc.tasks.process_sumsub_event", acks_late=True)
def process_sumsub_event(event_id: int) -> str:
    from common.inbox import process

    from .models import SumsubInboxEvent
    from .webhooks import sumsub_event_handle

    return process(SumsubInboxEvent, event_id, sumsub_event_handle)


@shared_task(name="kyc.tasks.verification_tick", acks_late=True)
def verification_tick(verification_id: int) -> str:
    from .work import verification_tick as tick

    return tick(verification_id=verification_id)


@shared_task(name="kyc.tasks.send_buyer_message", acks_late=True)
def send_buyer_message(message_id: int) -> str:
    from .work import buyer_message_send

    return buyer_message_send(message_id=message_id)


@shared_task(name="kyc.tasks.sweep")
def sweep() -> dict:
    """Every minute (beat): stored webhooks, verifications and buyer messages that are due."""
    from .work import kyc_sweep

    return kyc_sweep()
