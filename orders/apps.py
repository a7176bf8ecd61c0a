from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "订单与商品"

    def ready(self):
        from common.inbox import register_inbox

        from .models import OrderInboxEvent

        register_inbox(OrderInboxEvent)
