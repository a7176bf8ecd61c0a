"""A small, known set of rows for the dashboard and the failures page (and the dashboard's screenshot)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import BuyerIdentity
from accounts.services import shop_upsert
from common.models import Heartbeat
from kyc.models import KycApplicant, Verification
from notifications.models import Channel, Delivery, Notification
from orders.models import Order, OrderEvent, OrderInboxEvent, Product
from payments.models import FacetofaceApplication, Merchant
from shipping.models import Shipment


def seed_dashboard(*, orders_today: int = 3, orders_before: int = 2, channel: bool = False) -> dict:
    """`orders_today` orders of 19.90 created today, `orders_before` created three days ago; two shipments
    waiting for staff and one failed, one shipped automatically; KYC verifications in each funnel state; an
    application needing attention; a failed notification; a failed inbox event; a fresh worker heartbeat."""
    shop, _ = shop_upsert(platform="sandbox", name="看板测试店", app_key="dash-key", app_secret="dash-secret")
    product = Product.objects.create(shop=shop, item_id="dash-item", title="会员月卡", stock=-1)
    buyer = BuyerIdentity.objects.create(platform="sandbox", platform_user_id="dash-buyer", nick="看板买家")
    made = []
    for i in range(orders_today + orders_before):
        made.append(Order.objects.create(shop=shop, platform_order_id=f"D{i:05d}", buyer=buyer, product=product,
                                         amount=Decimal("19.90"), status="paid", paid_at=timezone.now()))
    before = [o.pk for o in made[orders_today:]]
    Order.objects.filter(pk__in=before).update(created_at=timezone.now() - timedelta(days=3))
    today = made[:orders_today]
    now = timezone.now()
    shipments = {}
    for order, status, method in zip(today, ["awaiting_staff", "failed", "shipped"], ["", "", "auto"], strict=False):
        shipments[status] = Shipment.objects.create(order=order, due_at=now, status=status, method=method,
                                                    last_error="卡密库存不足" if status == "failed" else "")
    if len(today) > 3:
        Shipment.objects.create(order=today[3], due_at=now, status="awaiting_staff", manual_reason="需要人工")
    anomaly = today[-1]
    Order.objects.filter(pk=anomaly.pk).update(has_anomaly=True)
    OrderEvent.objects.create(order=anomaly, kind=OrderEvent.Kind.ANOMALY, actor=OrderEvent.Actor.PLATFORM,
                              message="Platform reported refunded before paid")

    applicant = KycApplicant.objects.create(buyer=buyer, external_user_id="dash-applicant")
    for i, status in enumerate(["link_sent", "link_sent", "pending", "approved", "approved", "rejected"]):
        Verification.objects.create(order=made[i % len(made)] if i == 0 else _extra_order(shop, product, i),
                                    applicant=applicant, level_name="basic-kyc-level", status=status,
                                    expires_at=now + timedelta(hours=72))
    merchant = Merchant.objects.create(name="看板商户")
    FacetofaceApplication.objects.create(merchant=merchant, merchant_name="看板商户", shop_name="一号店",
                                         status="held", needs_attention=True)
    ch = Channel.objects.create(name="值班邮箱", kind="email", enabled=channel,
                                config={"recipients": ["ops@example.com"]})
    note = Notification.objects.create(event="system.test", shop=shop, context={})
    Delivery.objects.create(notification=note, channel=ch, status="failed", last_error="SMTP 550 mailbox unavailable")
    inbox = OrderInboxEvent.objects.create(source="sandbox", key="dash-failed", topic="order", shop=shop,
                                           body="{}", status="failed", last_error="unknown order status 'weird'")
    Heartbeat.objects.update_or_create(name="worker", defaults={"seen_at": now})
    return {"shop": shop, "today": today, "before": before, "shipments": shipments, "anomaly": anomaly,
            "inbox": inbox, "channel": ch}


def _extra_order(shop, product, i):
    """An order of ten days ago (outside today's figures) for one more verification."""
    order = Order.objects.create(shop=shop, platform_order_id=f"K{i:05d}", product=product, amount=Decimal("5.00"),
                                 status="awaiting_kyc")
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=10))
    return order
