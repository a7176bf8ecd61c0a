"""Shipments (one per order, DESIGN.md §3) and card-code pools.

A `Shipment` is the row that holds the delivery work (§4.2: the database holds the work, the broker only
nudges): it is due at `due_at`, a beat sweeper dispatches it, and `shipping.services` moves it through

    scheduled ─► sending ─► shipped
        ▲           │ ├──► retry_wait ─► sending …   (platform error, SHIP_RETRY_DELAY_SECONDS apart)
        │           │ └──► failed                    (attempts used up, or our configuration is wrong)
     (reopen)       └────► awaiting_staff            (stock ran out at dispatch, staff attempt failed)
    cancelled ◄── scheduled / retry_wait / awaiting_staff / failed   (order closed or refunded)
    awaiting_staff ─► sending ─► shipped             (staff ship from the manual queue)

The manual queue is `awaiting_staff` plus `failed`.

A virtual shipment goes in steps, each recorded on the row when done so that a retry resumes at the right
one (shipping.services): the content reaches the buyer (`content_handed_at`, proven by a `Handover` row: how,
where, the platform's answer), then the platform order is marked shipped (`status_sent_at`; 闲管家's card pool
does both in one call). A shipment whose content did not reach the buyer is never `shipped`.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from common.fields import EncryptedTextField
from orders.models import Order, Product


def new_token() -> str:
    """A 256-bit URL-safe token for the buyer's delivery page."""
    return secrets.token_urlsafe(32)


class ShipmentStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Shipping in progress")
    RETRY_WAIT = "retry_wait", _("Waiting to retry")
    SHIPPED = "shipped", _("Shipped")
    FAILED = "failed", _("Shipping failed")
    CANCELLED = "cancelled", _("Cancelled")
    AWAITING_STAFF = "awaiting_staff", _("Awaiting staff")


St = ShipmentStatus
MANUAL_QUEUE = [St.AWAITING_STAFF, St.FAILED]
CANCELLABLE = [St.SCHEDULED, St.RETRY_WAIT, St.AWAITING_STAFF, St.FAILED]


class Shipment(ConcurrentTransitionMixin, models.Model):
    class Method(models.TextChoices):
        AUTO = "auto", _("Automatic")
        STAFF = "staff", _("By staff")
        PLATFORM = "platform", _("Shipped on the platform")

    class Way(models.TextChoices):
        """How this shipment's content goes to the buyer (chosen at its first attempt)."""

        PLATFORM_MESSAGE = "platform_message", _("Platform delivery message")
        CARD_POOL = "card_pool", _("闲管家 card pool")
        CONTACT = "contact", _("Link to the buyer's phone or e-mail")
        STAFF = "staff", _("Handed over by staff")

    # PROTECT: a shipment is a record (what was delivered, how); its order cannot be deleted from under it.
    order = models.OneToOneField(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="shipment")
    status = FSMField(_("status"), max_length=20, choices=ShipmentStatus.choices, default=St.SCHEDULED,
                      protected=True, db_index=True)
    due_at = models.DateTimeField(_("shipping due at"), db_index=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    needs_reconcile = models.BooleanField(
        _("needs reconciling"), default=False,
        help_text=_("The last attempt's outcome is unknown: ask the platform before shipping again"))
    cancel_requested = models.BooleanField(_("cancel requested"), default=False,
                                           help_text=_("The order was closed while it was being shipped: handled "
                                                       "once this attempt ends"))
    manual_reason = models.CharField(_("why staff are needed"), max_length=255, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    logistics_company = models.CharField(_("courier"), max_length=64, blank=True)
    express_code = models.CharField(_("courier code"), max_length=32, blank=True)
    waybill_no = models.CharField(_("waybill no."), max_length=64, blank=True)
    content = EncryptedTextField(_("delivery content"), blank=True, default="")
    token = models.CharField(_("delivery link token"), max_length=64, unique=True, default=new_token, editable=False)
    delivery_way = models.CharField(_("Delivery way"), max_length=20, choices=Way.choices, blank=True)
    pool_uploaded_at = models.DateTimeField(_("Codes added to the platform card pool"), null=True, blank=True)
    content_handed_at = models.DateTimeField(_("Content reached the buyer"), null=True, blank=True)
    status_sent_at = models.DateTimeField(_("Platform order marked shipped"), null=True, blank=True)
    stock_taken = models.PositiveIntegerField(
        _("stock taken"), default=0,
        help_text=_("Stock taken for this order; all of it is given back when the shipment is cancelled"))
    method = models.CharField(_("shipping method"), max_length=16, choices=Method.choices, blank=True)
    shipped_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("shipped by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("sending lease until"), null=True, blank=True,
                                       help_text=_("Lease of a shipment being sent: one that runs out unfinished is "
                                                   "taken as an interrupted process, reconciled, then retried"))
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("shipment")
        verbose_name_plural = _("shipments")
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="shipment_status_due"),
            models.Index(fields=["waybill_no"], name="shipment_waybill_no"),  # the admin's exact search
        ]

    def __str__(self):
        return f"{self.order} [{self.get_status_display()}]"

    # --- saving only what changed (the ship path saves a locked row several times per attempt) ----------
    @classmethod
    def from_db(cls, db, field_names, values):
        row = super().from_db(db, field_names, values)
        row._loaded = dict(zip(field_names, values, strict=True))
        return row

    def changed_fields(self) -> list[str] | None:
        """Concrete fields whose value differs from the one loaded (None: not loaded whole from the database)."""
        loaded = getattr(self, "_loaded", None)
        if loaded is None or self._state.adding:
            return None
        changed = []
        for f in self._meta.concrete_fields:
            if f.attname not in loaded:
                return None  # a deferred field: no baseline to compare with
            if getattr(self, f.attname) != loaded[f.attname]:
                changed.append(f.name)
        return changed

    def save_changed(self) -> None:
        """Save the fields that changed since the row was loaded (and `updated_at`); a full save when the row
        was not loaded whole. The caller holds the row's lock, so nothing else changed it meanwhile."""
        fields = self.changed_fields()
        if fields is None:
            self.save()
        elif fields:
            self.save(update_fields=sorted({*fields, "updated_at"}))
        else:
            return
        self._loaded = {f.attname: getattr(self, f.attname) for f in self._meta.concrete_fields}

    @property
    def in_manual_queue(self) -> bool:
        return self.status in MANUAL_QUEUE

    @property
    def delivery_path(self) -> str:
        from django.urls import reverse

        return reverse("shipping:delivery", args=[self.token])

    @property
    def delivery_url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL}{self.delivery_path}"

    # Transitions only move the state; shipping.services sets the fields and does the side effects.
    @transition(field=status, source=[St.SCHEDULED, St.RETRY_WAIT, St.AWAITING_STAFF, St.FAILED, St.SENDING],
                target=St.SENDING)
    def start_sending(self):
        """Also from `sending` itself: a lease that ran out is taken over (reconcile first)."""

    @transition(field=status, source=[St.SENDING, St.SCHEDULED, St.RETRY_WAIT, St.AWAITING_STAFF, St.FAILED],
                target=St.SHIPPED)
    def mark_shipped(self):
        pass

    @transition(field=status, source=St.SENDING, target=St.RETRY_WAIT)
    def wait_retry(self):
        pass

    @transition(field=status, source=[St.SENDING, St.SCHEDULED, St.RETRY_WAIT], target=St.FAILED)
    def fail(self):
        pass

    @transition(field=status, source=[St.SCHEDULED, St.RETRY_WAIT, St.SENDING, St.FAILED, St.AWAITING_STAFF],
                target=St.AWAITING_STAFF)
    def to_staff(self):
        pass

    @transition(field=status, source=[*CANCELLABLE, St.SENDING], target=St.CANCELLED)
    def cancel(self):
        """From `sending` only once the attempt ended and the platform said it did not ship."""

    @transition(field=status, source=St.CANCELLED, target=St.SCHEDULED)
    def reopen(self):
        """The order came back to ready_to_ship (a refund was withdrawn)."""


class Handover(models.Model):
    """Proof of delivery: one attempt to put a shipment's content in front of the buyer — how and where it
    went, whether it got there, and the platform's or channel's answer (short, free of secrets). The full
    destination (phone, e-mail) is encrypted; `destination_hint` is the masked form shown in lists."""

    class Channel(models.TextChoices):
        PLATFORM_MESSAGE = "platform_message", _("Platform delivery message")
        CARD_POOL = "card_pool", _("Platform card pool (闲管家 卡密)")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        SANDBOX = "sandbox", _("Sandbox (recorded)")
        STAFF = "staff", _("Handed over by staff")

    class Carried(models.TextChoices):
        CONTENT = "content", _("The content itself")
        LINK = "link", _("Link to the delivery page only")

    class Status(models.TextChoices):
        PENDING = "pending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        HELD = "held", _("Held by the platform")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown")

    shipment = models.ForeignKey(Shipment, verbose_name=_("shipment"), on_delete=models.CASCADE,
                                 related_name="handovers")
    attempt = models.PositiveSmallIntegerField(_("Attempt"), default=0)
    channel = models.CharField(_("Channel"), max_length=20, choices=Channel.choices)
    carried = models.CharField(_("Carried"), max_length=10, choices=Carried.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    destination = EncryptedTextField(_("Destination"), blank=True, default="")
    destination_hint = models.CharField(_("Destination (masked)"), max_length=64, blank=True)
    answer = models.CharField(_("Answer"), max_length=500, blank=True)
    notification = models.ForeignKey("notifications.Notification", verbose_name=_("Notification"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("Finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("Handover to the buyer")
        verbose_name_plural = _("Handovers to the buyer")
        ordering = ["shipment", "pk"]

    def __str__(self):
        return f"{self.shipment_id} {self.get_channel_display()} {self.get_status_display()}"


class DeliveryView(models.Model):
    """One opening of a delivery page by whoever holds its link."""

    shipment = models.ForeignKey(Shipment, verbose_name=_("shipment"), on_delete=models.CASCADE, related_name="views")
    ip = models.GenericIPAddressField(_("IP"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    viewed_at = models.DateTimeField(_("viewed at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("delivery page view")
        verbose_name_plural = _("delivery page views")
        ordering = ["-viewed_at"]

    def __str__(self):
        return f"{self.shipment_id} {timezone.localtime(self.viewed_at):%Y-%m-%d %H:%M:%S}"


class CardCode(models.Model):
    """One card code (卡密) in a product's pool. The code is encrypted at rest (randomised), so duplicates
    are found by `code_hash` (sha256 of the stripped code), unique per product.

    available ─► reserved (for one order, under lock) ─► delivered (never again)
                     └─► available (order closed before shipping)
    available ─► void (staff withdrew it)"""

    class Status(models.TextChoices):
        AVAILABLE = "available", _("Available")
        RESERVED = "reserved", _("Reserved")
        DELIVERED = "delivered", _("Sent out")
        VOID = "void", _("Void")

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="card_codes")
    code = EncryptedTextField(_("card code"))
    code_hash = models.CharField(_("code digest"), max_length=64, editable=False)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.AVAILABLE)
    order = models.ForeignKey(Order, verbose_name=_("order"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="card_codes")
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("imported by"), null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("imported at"), auto_now_add=True)
    reserved_at = models.DateTimeField(_("reserved at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("sent out at"), null=True, blank=True)

    class Meta:
        verbose_name = _("card code")
        verbose_name_plural = _("card codes")
        ordering = ["product", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["product", "code_hash"], name="cardcode_unique_product_hash"),
            # A reserved or delivered code belongs to exactly one order; an available one to none; a
            # delivered one has its delivery time (it never goes back: services only release `reserved`).
            models.CheckConstraint(
                condition=(models.Q(status="available", order__isnull=True)
                           | models.Q(status="reserved", order__isnull=False)
                           | models.Q(status="delivered", order__isnull=False, delivered_at__isnull=False)
                           | models.Q(status="void")),
                name="cardcode_status_order_consistent"),
        ]
        indexes = [models.Index(fields=["product", "status"], name="cardcode_product_status")]

    def __str__(self):
        return f"{self.product_id}#{self.pk} [{self.get_status_display()}]"


class ManualShipment(Shipment):
    """The staff's queue (awaiting_staff and failed shipments) as its own admin page."""

    class Meta:
        proxy = True
        verbose_name = _("shipment awaiting staff")
        verbose_name_plural = _("shipments awaiting staff")
