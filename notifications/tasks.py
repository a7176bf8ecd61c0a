"""Thin tasks: load, call a service."""

from celery import shared_task


@shared_task(name="notifications.tasks.deliver", acks_late=True)
def deliver(delivery_id: int) -> str:
    from .services import delivery_send

    return delivery_send(delivery_id=delivery_id)


@shared_task(name="notifications.tasks.sweep_deliveries")
def sweep_deliveries() -> int:
    """Every minute (beat): due retries, throttled and lost deliveries, expired leases."""
    from .services import deliveries_sweep

    return deliveries_sweep()


@shared_task(name="notifications.tasks.health_alert")
def health_alert() -> bool:
    """Every 5 minutes (beat): health.alert when check_health() fails."""
    from .services import health_alert_check

    return health_alert_check() is not None


@shared_task(name="notifications.tasks.daily_summary")
def daily_summary() -> int:
    """Every 24 hours (beat): summary.daily for the last 24 hours."""
    from .services import summary_daily_send

    return summary_daily_send().pk
