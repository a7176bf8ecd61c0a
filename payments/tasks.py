"""Thin tasks: load, call a service. The sweepers run every minute (beat, PaymentsConfig.periodic_tasks) and
nudge the rows that are due (common.due); the rows are the truth, the broker only nudges."""

from celery import shared_task

from common.inbox import due_events, nudge, process


@shared_task(name="payments.tasks.advance_application", acks_late=True)
def advance_application(application_id: int) -> str:
    from .services.onboarding import application_advance

    return application_advance(application_id=application_id)


@shared_task(name="payments.tasks.sweep_onboarding")
def sweep_onboarding() -> int:
    """Due submission steps and status queries; applications overdue in review are flagged."""
    from .services.onboarding import applications_due, applications_flag_overdue

    ids = applications_due()
    for pk in ids:
        nudge(advance_application, pk)
    applications_flag_overdue()
    return len(ids)


@shared_task(name="payments.tasks.check_trade", acks_late=True)
def check_trade(trade_id: int) -> str:
    from .services.trades import trade_check

    return trade_check(trade_id=trade_id)


@shared_task(name="payments.tasks.send_refund", acks_late=True)
def send_refund(refund_id: int) -> str:
    from .services.refunds import refund_send

    return refund_send(refund_id=refund_id)


@shared_task(name="payments.tasks.sweep_trades")
def sweep_trades() -> int:
    """Trades to precreate again or to query (no notification yet); refunds to send or reconcile."""
    from .services.refunds import refunds_due
    from .services.trades import trades_due

    trades, refunds = trades_due(), refunds_due()
    for pk in trades:
        nudge(check_trade, pk)
    for pk in refunds:
        nudge(send_refund, pk)
    return len(trades) + len(refunds)


@shared_task(name="payments.tasks.refresh_merchant_token", acks_late=True)
def refresh_merchant_token(merchant_id: int) -> str:
    from .services.merchants import merchant_refresh_token

    return merchant_refresh_token(merchant_id=merchant_id)


@shared_task(name="payments.tasks.sweep_tokens")
def sweep_tokens() -> int:
    from .services.merchants import merchants_due

    ids = merchants_due()
    for pk in ids:
        nudge(refresh_merchant_token, pk)
    return len(ids)


@shared_task(name="payments.tasks.process_alipay_event", acks_late=True)
def process_alipay_event(event_id: int) -> str:
    from .models import AlipayInboxEvent
    from .services.trades import alipay_event_handle

    return process(AlipayInboxEvent, event_id, alipay_event_handle)


@shared_task(name="payments.tasks.sweep_inbox")
def sweep_inbox() -> int:
    from .models import AlipayInboxEvent

    ids = list(due_events(AlipayInboxEvent))
    for pk in ids:
        nudge(process_alipay_event, pk)
    return len(ids)
