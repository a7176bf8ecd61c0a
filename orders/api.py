"""Read-only REST API for orders and products (`/api/v1/…`, staff session auth, schema at /api/schema/)."""

from django.utils.translation import gettext as _
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.routers import DefaultRouter

from .models import Order, OrderEvent, OrderStatus, Product


class OrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ["kind", "from_status", "to_status", "actor", "message", "created_at"]


class OrderSerializer(serializers.ModelSerializer):
    shop = serializers.CharField(source="shop.name", read_only=True)
    events = OrderEventSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = ["id", "shop", "platform_order_id", "item_id", "item_title", "sku", "quantity", "amount",
                  "status", "platform_status", "has_anomaly", "paid_at", "shipped_at", "closed_at", "created_at",
                  "events"]


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "shop", "item_id", "title", "kind", "auto_ship", "ship_delay_min", "ship_delay_max",
                  "delivery_way", "staff_confirms_shipping", "needs_kyc", "stock", "low_stock_threshold", "is_active"]


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    """`?status=` filters by one of the order states; another value is a 400 that lists them."""

    serializer_class = OrderSerializer

    def get_queryset(self):
        qs = Order.objects.select_related("shop").prefetch_related("events").order_by("-created_at")
        status = self.request.query_params.get("status")
        if not status:
            return qs
        if status not in OrderStatus.values:
            raise ValidationError(
                {"status": _("Unknown status; one of: %(values)s") % {"values": ", ".join(OrderStatus.values)}})
        return qs.filter(status=status)


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.order_by("shop_id", "item_id")


router = DefaultRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("products", ProductViewSet, basename="product")
urlpatterns = router.urls
