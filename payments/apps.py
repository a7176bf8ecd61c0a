from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = _("Alipay payments")
    default_auto_field = "django.db.models.BigAutoField"
    periodic_tasks = {
        "payments: onboarding steps and polls": ("payments.tasks.sweep_onboarding", timedelta(minutes=1)),
        "payments: trade checks and refunds": ("payments.tasks.sweep_trades", timedelta(minutes=1)),
        "payments: sweep alipay inbox": ("payments.tasks.sweep_inbox", timedelta(minutes=1)),
        "payments: refresh merchant tokens": ("payments.tasks.sweep_tokens", timedelta(hours=1)),
    }

    def ready(self):
        from common.inbox import register_inbox

        from .models import AlipayInboxEvent
        from .services.trades import alipay_event_handle

        register_inbox(AlipayInboxEvent, alipay_event_handle)
