from datetime import timedelta

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ShippingConfig(AppConfig):
    name = "shipping"
    verbose_name = _("Shipping")
    periodic_tasks = {"shipping: dispatch due shipments": ("shipping.tasks.sweep_shipments", timedelta(minutes=1))}

    def ready(self):
        from orders import hooks

        from . import services

        hooks.register_on_ready_to_ship(services.shipment_schedule)
        hooks.register_on_closed(services.shipment_cancel)
        hooks.register_on_shipped(services.shipment_platform_shipped)
