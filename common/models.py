from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class InboxEvent(models.Model):
    """Base of every webhook inbox (DESIGN.md §4.1): the raw message, stored before anything else, with a
    unique key per platform message, and the state of its processing."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待处理")
        PROCESSING = "processing", _("处理中")
        PROCESSED = "processed", _("已处理")
        IGNORED = "ignored", _("已忽略")
        FAILED = "failed", _("失败")

    source = models.CharField(_("来源"), max_length=32)
    key = models.CharField(_("消息键"), max_length=191, help_text=_("平台消息 ID 或消息体摘要"))
    topic = models.CharField(_("类型"), max_length=64, blank=True)
    headers = models.JSONField(_("请求头"), default=dict, blank=True)
    body = models.TextField(_("原始消息体"))
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("处理次数"), default=0)
    result = models.CharField(_("处理结果"), max_length=255, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    traceback = models.TextField(_("错误堆栈"), blank=True)
    received_at = models.DateTimeField(_("接收时间"), auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(_("处理时间"), null=True, blank=True)
    # Due time of a pending or failed event, lease end of a processing one (common.due); None: nothing due.
    next_attempt_at = models.DateTimeField(_("下次处理时间"), null=True, blank=True, default=timezone.now)

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

    bucket = models.CharField(max_length=64, unique=True, null=True, editable=False,
                              help_text="sha256 of source, reason, remote address and window start")
    source = models.CharField(_("来源"), max_length=32, db_index=True)
    reason = models.CharField(_("原因"), max_length=255)
    remote_addr = models.CharField(_("来源地址"), max_length=64, blank=True)
    path = models.CharField(_("路径"), max_length=512, blank=True)
    headers = models.JSONField(_("请求头"), default=dict, blank=True)
    body_excerpt = models.TextField(_("消息体片段"), blank=True)
    body_size = models.PositiveIntegerField(_("消息体大小"), default=0)
    received_at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)
    count = models.PositiveIntegerField(_("Calls"), default=1)
    last_seen_at = models.DateTimeField(_("Last call"), default=timezone.now, db_index=True)
    reported_count = models.PositiveIntegerField(
        _("Reported"), default=0, help_text=_("Calls already counted in a security alert."))

    class Meta:
        verbose_name = _("被拒绝的回调")
        verbose_name_plural = _("被拒绝的回调")
        ordering = ["-last_seen_at"]

    def __str__(self):
        return f"{self.source}: {self.reason}"


class Heartbeat(models.Model):
    """Last time a process kind (worker, beat) proved it was alive; read by /healthz/."""

    name = models.CharField(max_length=32, primary_key=True)
    seen_at = models.DateTimeField()

    class Meta:
        verbose_name = _("心跳")
        verbose_name_plural = _("心跳")

    def __str__(self):
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
