from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class InboxEvent(models.Model):
    """Base of every webhook inbox (DESIGN.md §4.1): the raw message, stored before anything else, with a
    unique key per platform message, and the state of its processing."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be processed")
        PROCESSING = "processing", _("Processing")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    source = models.CharField(_("source"), max_length=32)
    key = models.CharField(_("message key"), max_length=191,
                           help_text=_("The platform's message ID, or a digest of the body"))
    topic = models.CharField(_("kind"), max_length=64, blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    body = models.TextField(_("raw body"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("processing attempts"), default=0)
    result = models.CharField(_("result"), max_length=255, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    traceback = models.TextField(_("traceback"), blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("processed at"), null=True, blank=True)
    # Due time of a pending or failed event, lease end of a processing one (common.due); None: nothing due.
    next_attempt_at = models.DateTimeField(_("next processing at"), null=True, blank=True, default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-received_at"]

    def __str__(self):
        return f"{self.source}:{self.key}"


class RejectedWebhook(models.Model):
    """Webhook calls refused before storage (bad or missing signature, unknown account, oversize, hostile
    bytes), aggregated: one row per source, reason and remote address within a window, `count` calls
    (common.rejects). Only a bounded, cleaned excerpt of the first call is kept: evidence for staff, never
    work to do."""

    EXCERPT_BYTES = 2048

    bucket = models.CharField(_("aggregation key"), max_length=64, unique=True, null=True, editable=False,
                              help_text=_("SHA-256 of the source, reason, remote address and window start"))
    source = models.CharField(_("source"), max_length=32, db_index=True)
    reason = models.CharField(_("reason"), max_length=255)
    remote_addr = models.CharField(_("remote address"), max_length=64, blank=True)
    path = models.CharField(_("path"), max_length=512, blank=True)
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    body_excerpt = models.TextField(_("body excerpt"), blank=True)
    body_size = models.PositiveIntegerField(_("body size"), default=0)
    received_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)
    count = models.PositiveIntegerField(_("Calls"), default=1)
    last_seen_at = models.DateTimeField(_("Last call"), default=timezone.now, db_index=True)
    reported_count = models.PositiveIntegerField(
        _("Reported"), default=0, help_text=_("Calls already counted in a security alert."))

    class Meta:
        verbose_name = _("refused webhook call")
        verbose_name_plural = _("refused webhook calls")
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"{self.source}: {self.reason}"


class Heartbeat(models.Model):
    """Last time a process kind (worker, beat) proved it was alive; read by /healthz/."""

    name = models.CharField(_("process"), max_length=32, primary_key=True)
    seen_at = models.DateTimeField(_("last seen at"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self):
        return f"{self.name} @ {timezone.localtime(self.seen_at):%Y-%m-%d %H:%M:%S}"


class DailyOrderStats(models.Model):
    """Per closed day (Asia/Shanghai), for the dashboard (common.stats): orders and their amount (by the day the
    order was stored: fixed once the day has ended) and the auto-ship outcome of the shipments due that day
    (which may still move for a few days: refreshed by a periodic task). Today is always counted live."""

    day = models.DateField(_("day"), unique=True)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    amount = models.DecimalField(_("amount (yuan)"), max_digits=16, decimal_places=2, default=0)
    auto_shipped = models.PositiveIntegerField(_("shipped automatically"), default=0)
    ship_failed = models.PositiveIntegerField(_("shipping failed or handed to staff"), default=0)
    computed_at = models.DateTimeField(_("computed at"), auto_now=True)

    class Meta:
        verbose_name = _("daily order figures")
        verbose_name_plural = _("daily order figures")
        ordering = ["-day"]

    def __str__(self):
        return f"{self.day}: {self.orders}"
