from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KycConfig(AppConfig):
    name = "kyc"
    verbose_name = _("KYC (identity verification)")
    periodic_tasks = {"kyc: sweep webhooks, verifications and buyer messages": ("kyc.tasks.sweep",
                                                                                timedelta(minutes=1))}

    def ready(self):
        from common.inbox import register_inbox
        from orders import hooks

        from . import services
        from .models import SumsubInboxEvent
        from .webhooks import sumsub_event_handle

        register_inbox(SumsubInboxEvent, sumsub_event_handle)
        hooks.register_paid_gate(services.kyc_paid_gate)
        hooks.register_on_closed(services.kyc_order_closed)
