"""The buyer's delivery page: `/delivery/<token>/`, no login, the 256-bit token is the credential. Chinese
content, whatever language the visitor chose (common.i18n.buyer_page)."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from common.i18n import buyer_page
from common.inbox import client_ip

from .models import Shipment, ShipmentStatus
from .services import delivery_view_log


@buyer_page
@never_cache
@require_GET
def delivery(request, token: str):
    if len(token) > 64:
        raise Http404
    shipment = Shipment.objects.select_related("order", "order__product").filter(token=token).first()
    if shipment is None:
        raise Http404
    delivery_view_log(shipment=shipment, ip=client_ip(request), user_agent=request.META.get("HTTP_USER_AGENT", ""))
    # The content shows once it has been (or is being) handed over — the link may be what was handed over —
    # and never for a cancelled order. Stored as plain text; the template escapes it once.
    visible = bool(shipment.content) and shipment.status != ShipmentStatus.CANCELLED and (
        shipment.status in (ShipmentStatus.SENDING, ShipmentStatus.SHIPPED) or bool(shipment.delivery_way))
    response = render(request, "shipping/delivery.html", {
        "shipment": shipment, "order": shipment.order, "content": shipment.content if visible else "",
        "cancelled": shipment.status == ShipmentStatus.CANCELLED,
    })
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response
