from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_fsm import RETURN_VALUE, ConcurrentTransitionMixin, FSMField, transition

from accounts.models import BuyerIdentity, Shop
from common.fields import EncryptedJSONField
from common.models import InboxEvent


def validate_delivery_template(value: str) -> None:
    from .delivery_content import template_error

    problem = template_error(value or "")
    if problem:
        raise ValidationError(problem)


def validate_card_kind_id(value: str) -> None:
    value = (value or "").strip()
    if value and not (value.isascii() and value.isdigit()):
        raise ValidationError(_("The 卡种 ID is a number (see 闲管家 › 卡密 › 卡种)."))


class Product(models.Model):
    """Per-item delivery rules and stock (seed 004 product_configs).

    How a virtual item's content reaches the buyer (`delivery_way`, docs/platforms.md):
    - `platform`: through the platform itself — the open platform's delivery message (TOP
      `alibaba.idle.order.msg.send`), 闲管家's own 卡密 message fed from the product's 卡种 (`card_kind_id`),
      the sandbox's recorded message;
    - `contact`: our own delivery — the delivery-page link by SMS or e-mail to the buyer's contact
      (`shipment.delivered`), then a status-only virtual ship on the platform.
    `staff_confirms_shipping` ("slow goods": top-ups, manual recharge): the content is delivered at once, the
    platform shipment waits for staff to confirm it in the manual queue."""

    class Kind(models.TextChoices):
        VIRTUAL = "virtual", _("Virtual goods")
        PHYSICAL = "physical", _("Physical goods")

    class DeliveryWay(models.TextChoices):
        PLATFORM = "platform", _("Through the platform (open-platform delivery message / 闲管家 card pool)")
        CONTACT = "contact", _("To the buyer's contact (delivery link by SMS or e-mail)")

    shop = models.ForeignKey(Shop, verbose_name=_("shop"), on_delete=models.PROTECT, related_name="products")
    item_id = models.CharField(_("item ID"), max_length=64)
    title = models.CharField(_("title"), max_length=255)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.VIRTUAL)
    auto_ship = models.BooleanField(_("auto-ship"), default=False)
    ship_delay_min = models.PositiveIntegerField(_("shortest shipping delay (minutes)"), default=0)
    ship_delay_max = models.PositiveIntegerField(_("longest shipping delay (minutes)"), default=0)
    logistics_company = models.CharField(_("courier"), max_length=64, blank=True)
    express_code = models.CharField(_("courier code"), max_length=32, blank=True)
    delivery_way = models.CharField(
        _("How the content reaches the buyer"), max_length=16, choices=DeliveryWay.choices,
        default=DeliveryWay.PLATFORM)
    card_kind_id = models.CharField(
        _("闲管家 card kind (卡种) ID"), max_length=20, blank=True, validators=[validate_card_kind_id],
        help_text=_("闲管家 only: the 卡种 this product's codes are uploaded to before 闲管家 sends them to the buyer. "
                    "Bind the item to this 卡种 in 闲管家 and let nothing else add codes to it."))
    staff_confirms_shipping = models.BooleanField(
        _("Slow goods: staff confirm the platform shipment"), default=False,
        help_text=_("Deliver the content at once, but mark the order shipped on the platform only when staff "
                    "confirm it in the manual queue (top-ups, manual recharge)."))
    delivery_template = models.TextField(
        _("delivery template"), blank=True, validators=[validate_delivery_template],
        help_text=_("Plain text in Django template syntax. Variables: code (the first code), codes (all codes, "
                    "one per line; {% for c in codes %} goes through them one by one), quantity, order_no, "
                    "item_title, delivery_url. Leave empty for the default text."))
    needs_kyc = models.BooleanField(_("needs KYC"), default=False)
    stock = models.IntegerField(_("stock"), default=-1, help_text=_("-1 means unlimited"))
    low_stock_threshold = models.PositiveIntegerField(_("low-stock alert threshold"), default=0)
    is_active = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    UNLIMITED = -1

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["shop", "item_id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "item_id"], name="product_unique_shop_item"),
            models.CheckConstraint(condition=models.Q(stock__gte=-1), name="product_stock_not_negative"),
            models.CheckConstraint(condition=models.Q(ship_delay_max__gte=models.F("ship_delay_min")),
                                   name="product_delay_window_ordered",
                                   violation_error_message=_("The longest shipping delay cannot be shorter than "
                                                             "the shortest.")),
        ]

    def __str__(self):
        return f"{self.title} [{self.item_id}]"

    @property
    def unlimited(self) -> bool:
        return self.stock == self.UNLIMITED

    def clean(self):
        """Delivery rules the platform cannot carry are refused when saved (admin form and `product_save`).
        Reported as form-wide errors: a form that shows only some fields (the list's inline edit) must not
        crash on an error keyed to a field it lacks."""
        xgj_pool = (self.shop_id is not None and self.shop.platform == "xianguanjia"
                    and self.kind == self.Kind.VIRTUAL and self.delivery_way == self.DeliveryWay.PLATFORM)
        errors = []
        if xgj_pool and self.auto_ship and not (self.card_kind_id or "").strip():
            errors.append(_("闲管家 has no API to message the buyer: give the 卡种 ID its card pool delivers "
                            "from, or deliver to the buyer's contact instead."))
        if xgj_pool and self.staff_confirms_shipping:
            errors.append(_("闲管家 sends card-pool codes and marks the order shipped in one call; for slow goods "
                            "deliver to the buyer's contact instead."))
        if errors:
            raise ValidationError(errors)


class StockMovement(models.Model):
    class Reason(models.TextChoices):
        SOLD = "sold", _("Sold")
        RESTOCK = "restock", _("Restock")
        ADJUST = "adjust", _("Adjustment")
        RELEASE = "release", _("Release")

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="movements")
    reason = models.CharField(_("kind"), max_length=16, choices=Reason.choices)
    change = models.IntegerField(_("change"))
    remaining = models.IntegerField(_("stock left"))
    order = models.ForeignKey("Order", verbose_name=_("order"), null=True, blank=True, on_delete=models.SET_NULL)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("done by"), null=True, blank=True,
                             on_delete=models.SET_NULL)
    note = models.CharField(_("note"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.product_id} {self.change:+d}"


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Pending payment")
    PAID = "paid", _("Paid")
    AWAITING_KYC = "awaiting_kyc", _("Awaiting KYC")
    READY_TO_SHIP = "ready_to_ship", _("Ready to ship")
    SHIPPED = "shipped", _("Shipped")
    COMPLETED = "completed", _("Completed")
    CLOSED = "closed", _("Closed")
    REFUNDING = "refunding", _("Refunding")
    REFUNDED = "refunded", _("Refunded")


S = OrderStatus


@dataclass(frozen=True)
class StateInfo:
    rank: int                 # progress along the main line: a platform report never moves an order back on it
    stamps: str = ""          # the time field set when the order first enters the state
    final: bool = False       # nothing follows (backfill does not re-query it)
    paid: bool = False        # money received and goods not yet shipped
    refundable: bool = False  # a refund may start from here


# The status pipeline as data (DESIGN.md §3): every state's facts live here, every transition is an FSM method
# on Order below; a transition a platform report may drive is marked `custom={"platform": True}`.
# orders.services derives the platform's path search, ranks and timestamps from these two, so a new state
# is one line here plus its transitions.
PIPELINE: dict[str, StateInfo] = {
    S.PENDING_PAYMENT: StateInfo(rank=0),
    S.PAID: StateInfo(rank=1, stamps="paid_at", paid=True, refundable=True),
    S.AWAITING_KYC: StateInfo(rank=1, paid=True, refundable=True),
    S.READY_TO_SHIP: StateInfo(rank=1, paid=True, refundable=True),
    S.SHIPPED: StateInfo(rank=2, stamps="shipped_at", refundable=True),
    S.COMPLETED: StateInfo(rank=3, refundable=True),
    S.REFUNDING: StateInfo(rank=4),
    S.CLOSED: StateInfo(rank=5, stamps="closed_at", final=True),
    S.REFUNDED: StateInfo(rank=5, stamps="closed_at", final=True),
}
assert set(PIPELINE) == set(OrderStatus.values), "every OrderStatus needs its PIPELINE entry"
PAID_STATES = [s for s, info in PIPELINE.items() if info.paid]
REFUNDABLE_STATES = [s for s, info in PIPELINE.items() if info.refundable]
FINAL_STATES = [s for s, info in PIPELINE.items() if info.final]
PLATFORM = {"platform": True}


class Order(ConcurrentTransitionMixin, models.Model):
    """A platform order and where it stands in our machine (DESIGN.md §3)."""

    shop = models.ForeignKey(Shop, verbose_name=_("shop"), on_delete=models.PROTECT, related_name="orders")
    platform_order_id = models.CharField(_("platform order no."), max_length=64)
    buyer = models.ForeignKey(BuyerIdentity, verbose_name=_("buyer"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="orders")
    product = models.ForeignKey(Product, verbose_name=_("product"), null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="orders")
    item_id = models.CharField(_("item ID"), max_length=64, blank=True)
    item_title = models.CharField(_("item title"), max_length=255, blank=True)
    sku = models.CharField(_("SKU"), max_length=255, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=12, decimal_places=2, default=0)
    receiver = EncryptedJSONField(_("receiver details"), blank=True, default=dict)
    status = FSMField(_("status"), max_length=20, choices=OrderStatus.choices, default=S.PENDING_PAYMENT,
                      protected=True, db_index=True)
    status_before_refund = models.CharField(_("status before the refund"), max_length=20, blank=True, editable=False)
    platform_status = models.CharField(_("platform status"), max_length=32, blank=True)
    platform_event_at = models.DateTimeField(_("last platform event at"), null=True, blank=True)
    has_anomaly = models.BooleanField(_("anomaly"), default=False, db_index=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    shipped_at = models.DateTimeField(_("shipped at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "platform_order_id"], name="order_unique_shop_platform_id"),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="order_status_created"),
            # The admin's exact searches (order number without its shop, item ID).
            models.Index(fields=["platform_order_id"], name="order_platform_order_id"),
            models.Index(fields=["item_id"], name="order_item_id"),
        ]

    def __str__(self):
        return self.platform_order_id

    # Transitions. They only move the state; services write the OrderEvent and do the side effects.
    @transition(field=status, source=S.PENDING_PAYMENT, target=S.PAID, custom=PLATFORM)
    def pay(self):
        pass

    @transition(field=status, source=S.PAID, target=S.AWAITING_KYC)
    def require_kyc(self):
        pass

    @transition(field=status, source=[S.PAID, S.AWAITING_KYC], target=S.READY_TO_SHIP)
    def release(self):
        pass

    @transition(field=status, source=PAID_STATES, target=S.SHIPPED, custom=PLATFORM)
    def ship(self):
        pass

    @transition(field=status, source=S.SHIPPED, target=S.COMPLETED, custom=PLATFORM)
    def complete(self):
        pass

    @transition(field=status, source=[S.PENDING_PAYMENT, *PAID_STATES], target=S.CLOSED, custom=PLATFORM)
    def close(self):
        pass

    @transition(field=status, source=REFUNDABLE_STATES, target=S.REFUNDING, custom=PLATFORM)
    def start_refund(self):
        self.status_before_refund = self.status

    @transition(field=status, source=S.REFUNDING, target=S.REFUNDED, custom=PLATFORM)
    def refund(self):
        pass

    @transition(field=status, source=S.REFUNDING, target=RETURN_VALUE(*REFUNDABLE_STATES), custom=PLATFORM)
    def end_refund(self):
        """Refund closed or refused: back where the order was."""
        return self.status_before_refund or S.PAID


class OrderEvent(models.Model):
    """Append-only log of what happened to an order and who or what caused it."""

    class Actor(models.TextChoices):
        PLATFORM = "platform", _("Platform")
        SYSTEM = "system", _("System")
        STAFF = "staff", _("Staff")

    class Kind(models.TextChoices):
        TRANSITION = "transition", _("Status change")
        CREATED = "created", _("Creation")
        ANOMALY = "anomaly", _("Anomaly")
        NOTE = "note", _("Note")

    # PROTECT: an order with a history cannot be deleted (the log is the record of what happened).
    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.TRANSITION)
    from_status = models.CharField(_("from"), max_length=20, blank=True)
    to_status = models.CharField(_("to"), max_length=20, blank=True)
    actor = models.CharField(_("actor"), max_length=16, choices=Actor.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
                             on_delete=models.SET_NULL)
    message = models.CharField(_("message"), max_length=500, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        ordering = ["created_at", "id"]

    def __str__(self):
        # Statuses by their labels ("1: 待付款 → 已付款"), never the raw values.
        def label(status: str) -> str:
            return str(OrderStatus(status).label) if status in OrderStatus.values else status

        if self.kind == self.Kind.TRANSITION:
            return f"{self.order_id}: {label(self.from_status)} → {label(self.to_status)}"
        return f"{self.order_id}: {self.get_kind_display()}"


class OrderInboxEvent(InboxEvent):
    """Order messages from Xianyu (闲管家 push, open-platform relay), stored before processing."""

    shop = models.ForeignKey(Shop, verbose_name=_("shop"), null=True, blank=True, on_delete=models.SET_NULL)
    platform_order_id = models.CharField(_("platform order no."), max_length=64, blank=True, db_index=True)

    class Meta(InboxEvent.Meta):
        verbose_name = _("order message")
        verbose_name_plural = _("order messages")
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="order_inbox_unique_key")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="order_inbox_due")]


class BackfillRun(models.Model):
    """One backfill of a shop's orders (orders.backfill): the window it covered, how far it got and how it
    ended. A run without --since continues from the end of the shop's last successful continuous run."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    shop = models.ForeignKey(Shop, verbose_name=_("shop"), on_delete=models.CASCADE, related_name="backfill_runs")
    since = models.DateTimeField(_("From"), null=True, blank=True,
                                 help_text=_("Empty: every order we know that is not final (no list API)."))
    until = models.DateTimeField(_("To"))
    continuous = models.BooleanField(
        _("Continuous"), default=False,
        help_text=_("Starts at or before the end of the previous successful continuous run, so its end is where "
                    "the next run may start."))
    status = models.CharField(_("Status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    seen = models.PositiveIntegerField(_("Orders seen"), default=0)
    created = models.PositiveIntegerField(_("New orders"), default=0)
    changed = models.PositiveIntegerField(_("Orders changed"), default=0)
    anomalies = models.PositiveIntegerField(_("Anomalies"), default=0)
    errors = models.PositiveIntegerField(_("Errors"), default=0)
    slices = models.PositiveIntegerField(_("Slices"), default=0)
    pages = models.PositiveIntegerField(_("Pages"), default=0)
    message = models.TextField(_("Message"), blank=True)
    started_at = models.DateTimeField(_("Started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("Backfill run")
        verbose_name_plural = _("Backfill runs")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["shop", "status", "-until"], name="backfill_run_checkpoint")]

    def __str__(self):
        since = f"{timezone.localtime(self.since):%Y-%m-%d %H:%M}" if self.since else "…"
        return f"{self.shop_id} {since} – {timezone.localtime(self.until):%Y-%m-%d %H:%M} [{self.get_status_display()}]"


class SandboxOrder(models.Model):
    """The sandbox platform's side of an order: what a real platform would hold."""

    shop = models.ForeignKey(Shop, verbose_name=_("shop"), on_delete=models.CASCADE, related_name="+")
    order_no = models.CharField(_("order no."), max_length=64)
    status = models.CharField(_("platform status"), max_length=16, default="paid")
    item_id = models.CharField(_("item ID"), max_length=64)
    title = models.CharField(_("title"), max_length=255, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    amount_fen = models.PositiveIntegerField(_("amount (fen)"), default=0)
    buyer_id = models.CharField(_("buyer ID"), max_length=64, default="sandbox-buyer")
    buyer_nick = models.CharField(_("buyer nickname"), max_length=64, default="沙箱买家")
    waybill_no = models.CharField(_("waybill no."), max_length=64, blank=True)
    express_name = models.CharField(_("courier"), max_length=64, blank=True)
    modified_at = models.DateTimeField(_("modified at"))

    class Meta:
        verbose_name = _("sandbox order (simulated platform)")
        verbose_name_plural = _("sandbox orders (simulated platform)")
        constraints = [models.UniqueConstraint(fields=["shop", "order_no"], name="sandbox_order_unique")]

    def __str__(self):
        return gettext("[sandbox] %(no)s") % {"no": self.order_no}


class SandboxMessage(models.Model):
    """What the sandbox buyer received: each delivery message exactly as the buyer would read it."""

    order = models.ForeignKey(SandboxOrder, verbose_name=_("Sandbox order"), on_delete=models.CASCADE,
                              related_name="messages")
    text = models.TextField(_("Text the buyer received"))
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("Sandbox buyer message")
        verbose_name_plural = _("Sandbox buyer messages")
        ordering = ["created_at", "pk"]

    def __str__(self):
        return gettext("[sandbox] %(no)s: %(text)s") % {"no": self.order.order_no, "text": self.text[:30]}


class SandboxCall(models.Model):
    """Every call the sandbox adapter received, as a real platform's log would show it."""

    shop = models.ForeignKey(Shop, verbose_name=_("shop"), on_delete=models.CASCADE, related_name="+")
    method = models.CharField(_("adapter method"), max_length=32)
    params = models.JSONField(_("parameters"), default=dict)
    response = models.JSONField(_("response"), default=dict)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    class Meta:
        verbose_name = _("sandbox call")
        verbose_name_plural = _("sandbox calls")
        ordering = ["-created_at"]

    def __str__(self):
        return gettext("[sandbox] %(method)s") % {"method": self.method}
