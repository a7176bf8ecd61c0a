from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders and products")
    periodic_tasks = {"orders: sweep order inbox": ("orders.tasks.sweep_inbox", timedelta(minutes=1))}

    def ready(self):
        from common.inbox import register_inbox

        from .models import OrderInboxEvent
        from .services import order_event_handle

        register_inbox(OrderInboxEvent, order_event_handle)

        from django.db.models.signals import post_delete, post_save

        from accounts.models import Shop

        from .webhooks import shop_cache_clear

        post_save.connect(shop_cache_clear, sender=Shop, dispatch_uid="orders.shop_cache_clear")
        post_delete.connect(shop_cache_clear, sender=Shop, dispatch_uid="orders.shop_cache_clear_del")

        from notifications.services import SUMMARY_PROVIDERS

        from .services import summary_figures

        if summary_figures not in SUMMARY_PROVIDERS:
            SUMMARY_PROVIDERS.append(summary_figures)
