from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    periodic_tasks = {
        "notifications: sweep deliveries": ("notifications.tasks.sweep_deliveries", timedelta(minutes=1)),
        "notifications: health alert": ("notifications.tasks.health_alert", timedelta(minutes=5)),
        "notifications: daily summary": ("notifications.tasks.daily_summary", timedelta(days=1)),
    }

    def ready(self):
        from common.inbox import inbox_failed, webhook_rejected

        from .services import on_inbox_failed, on_webhook_rejected

        webhook_rejected.connect(on_webhook_rejected, dispatch_uid="notifications.webhook_rejected")
        inbox_failed.connect(on_inbox_failed, dispatch_uid="notifications.inbox_failed")
