"""Notification channels, subscriptions, template overrides, and the durable log of what was sent.

A `Notification` is written for every event (even with no subscriber); a `Delivery` is one message to one
channel, with a due time, a lease while being sent, and its outcome (DESIGN.md §4)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common.fields import EncryptedTextField

from .events import BUYER, EVENTS, event_choices


class ChannelKind(models.TextChoices):
    WECOM = "wecom", _("WeCom group robot")
    DINGTALK = "dingtalk", _("DingTalk robot (signed)")
    FEISHU = "feishu", _("Feishu robot (signature check)")
    EMAIL = "email", _("E-mail (SMTP)")
    SMS = "sms", _("Aliyun SMS")
    WEBHOOK = "webhook", _("Signed webhook")


# Kinds that post into a group chat: never used for buyer-addressed events.
CHAT_KINDS = {ChannelKind.WECOM, ChannelKind.DINGTALK, ChannelKind.FEISHU}


class Channel(models.Model):
    name = models.CharField(pgettext_lazy("channel", "name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=ChannelKind.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    config = models.JSONField(
        _("settings"), default=dict, blank=True,
        help_text=_("Settings that are not secret, e.g. url / base_url, members and phone numbers to @, "
                    "recipients, SMS signature and template codes."))
    secret = EncryptedTextField(_("secret"), blank=True, default="",
                                help_text=_("Robot key / signing secret / AccessKey Secret etc., stored encrypted."))
    rate_limit_per_minute = models.PositiveIntegerField(
        _("limit per minute"), null=True, blank=True,
        help_text=_("Empty: the kind's default (WeCom, DingTalk: 20 per minute)."))
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("shop"), null=True, blank=True,
                             on_delete=models.CASCADE, related_name="notification_channels",
                             help_text=_("When set, the channel receives only this shop's events and the system "
                                         "events that belong to no shop."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("notification channel")
        verbose_name_plural = _("notification channels")
        ordering = ["name"]

    def __str__(self):
        return f"{self.name}（{self.get_kind_display()}）"

    @property
    def rate_limit(self) -> int:
        if self.rate_limit_per_minute:
            return self.rate_limit_per_minute
        from .channels import get_channel_class

        return get_channel_class(self.kind).default_rate_limit

    def clean(self):
        if not isinstance(self.config, dict):
            raise ValidationError({"config": _("The settings must be a JSON object.")})


class Subscription(models.Model):
    event = models.CharField(_("event"), max_length=64, choices=event_choices)
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.CASCADE,
                                related_name="subscriptions")
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("shop"), null=True, blank=True,
                             on_delete=models.CASCADE, help_text=_("Empty: every shop."))
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["event", "channel"]
        constraints = [
            models.UniqueConstraint(fields=["event", "channel", "shop"], name="notif_sub_unique_shop"),
            models.UniqueConstraint(fields=["event", "channel"], condition=models.Q(shop__isnull=True),
                                    name="notif_sub_unique_all_shops"),
        ]

    def __str__(self):
        return f"{self.event} → {self.channel}"

    def clean(self):
        event = EVENTS.get(self.event)
        if event and event.audience == BUYER and self.channel_id and self.channel.kind in CHAT_KINDS:
            raise ValidationError(
                {"channel": _("Events for buyers go only by SMS, e-mail or webhook, never to a group robot.")})


class Template(models.Model):
    event = models.CharField(_("event"), max_length=64, choices=event_choices, unique=True)
    subject = models.CharField(_("subject line"), max_length=200, blank=True)
    body = models.TextField(_("body"))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["event"]

    def __str__(self):
        return self.event

    def clean(self):
        from .rendering import TemplateProblem, validate_template

        if self.event not in EVENTS:
            return  # the choices check reports it
        try:
            validate_template(self.event, self.subject, self.body)
        except TemplateProblem as exc:
            raise ValidationError({exc.field: exc.message}) from exc


class Notification(models.Model):
    event = models.CharField(_("event"), max_length=64, choices=event_choices, db_index=True)
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("shop"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    context = models.JSONField(_("context data"), default=dict, blank=True)
    recipient = EncryptedTextField(_("recipient (buyer)"), blank=True, default="")
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_event_display()} #{self.pk}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        RETRY_WAIT = "retry_wait", _("Waiting to retry")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Outcome unknown (staff to check)")

    notification = models.ForeignKey(Notification, verbose_name=_("notification"), on_delete=models.CASCADE,
                                      related_name="deliveries")
    channel = models.ForeignKey(Channel, verbose_name=_("channel"), on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True, db_index=True)
    lease_until = models.DateTimeField(_("sending lease until"), null=True, blank=True)
    attempted_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent successfully at"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    subject = models.CharField(_("subject line"), max_length=255, blank=True)
    text = models.TextField(_("text sent"), blank=True)
    external_id = models.CharField(_("platform receipt"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="notif_delivery_status_due"),
            models.Index(fields=["channel", "attempted_at"], name="notif_delivery_chan_attempt"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.channel_id} {self.get_status_display()}"


class AlertGate(models.Model):
    """Rate limit for repeated alerts (webhook rejections per source, health problems): at most one
    alert per interval, carrying how many occurrences were folded into it."""

    key = models.CharField(_("key"), max_length=191, unique=True)
    last_alert_at = models.DateTimeField(_("last alert at"), null=True, blank=True)
    pending_count = models.PositiveIntegerField(_("occurrences not yet alerted"), default=0)

    class Meta:
        verbose_name = _("alert limit")
        verbose_name_plural = _("alert limits")

    def __str__(self):
        return self.key
