from celery import shared_task
from django.utils import timezone

from .models import Heartbeat


@shared_task(name="common.tasks.heartbeat")
def heartbeat():
    """Scheduled by beat every minute; running it proves a worker is alive (beat's own freshness is the
    PeriodicTask's last_run_at)."""
    Heartbeat.objects.update_or_create(name="worker", defaults={"seen_at": timezone.now()})


@shared_task(name="common.tasks.report_rejected_webhooks")
def report_rejected_webhooks(source: str | None = None):
    """Nudged when a new kind of refused webhook call is recorded, and run by beat every minute: sends the
    security alert signal for refusals not reported yet (common.rejects)."""
    from .rejects import rejections_report

    return rejections_report(source=source)


@shared_task(name="common.tasks.refresh_daily_stats")
def refresh_daily_stats():
    """The dashboard's kept days: the recent ones summed again (common.stats)."""
    from .stats import refresh_daily_stats as refresh

    return refresh()
