"""Notification channels, subscriptions, template overrides, and the durable log of what was sent.

A `Notification` is written for every event (even with no subscriber); a `Delivery` is one message to one
channel, with a due time, a lease while being sent, and its outcome (DESIGN.md §4)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.fields import EncryptedTextField

from .events import BUYER, EVENTS, event_choices


class ChannelKind(models.TextChoices):
    WECOM = "wecom", _("企业微信群机器人")
    DINGTALK = "dingtalk", _("钉钉机器人（加签）")
    FEISHU = "feishu", _("飞书机器人（签名校验）")
    EMAIL = "email", _("电子邮件")
    SMS = "sms", _("阿里云短信")
    WEBHOOK = "webhook", _("签名 Webhook")


# Kinds that post into a group chat: never used for buyer-addressed events.
CHAT_KINDS = {ChannelKind.WECOM, ChannelKind.DINGTALK, ChannelKind.FEISHU}


class Channel(models.Model):
    name = models.CharField(_("名称"), max_length=100)
    kind = models.CharField(_("类型"), max_length=16, choices=ChannelKind.choices)
    enabled = models.BooleanField(_("启用"), default=True)
    config = models.JSONField(
        _("配置"), default=dict, blank=True,
        help_text=_("非机密设置，如 url / base_url、@ 的成员与手机号、收件人、短信签名与模板编号。"))
    secret = EncryptedTextField(_("密钥"), blank=True, default="",
                                help_text=_("机器人 key / 加签密钥 / AccessKey Secret 等，加密保存。"))
    rate_limit_per_minute = models.PositiveIntegerField(
        _("每分钟上限"), null=True, blank=True, help_text=_("留空则使用该类型的默认值（企业微信、钉钉：20 条/分钟）。"))
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("店铺"), null=True, blank=True,
                             on_delete=models.CASCADE, related_name="notification_channels",
                             help_text=_("指定后，只接收该店铺的事件和不属于任何店铺的系统事件。"))
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("通知渠道")
        verbose_name_plural = _("通知渠道")
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
            raise ValidationError({"config": _("配置必须是 JSON 对象。")})


class Subscription(models.Model):
    event = models.CharField(_("事件"), max_length=64, choices=event_choices)
    channel = models.ForeignKey(Channel, verbose_name=_("渠道"), on_delete=models.CASCADE,
                                related_name="subscriptions")
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("店铺"), null=True, blank=True,
                             on_delete=models.CASCADE, help_text=_("留空表示所有店铺。"))
    enabled = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("订阅")
        verbose_name_plural = _("订阅")
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
            raise ValidationError({"channel": _("面向买家的事件只能通过短信、邮件或 Webhook 发送，不能发到群机器人。")})


class Template(models.Model):
    event = models.CharField(_("事件"), max_length=64, choices=event_choices, unique=True)
    subject = models.CharField(_("标题"), max_length=200, blank=True)
    body = models.TextField(_("正文"))
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("消息模板")
        verbose_name_plural = _("消息模板")
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
    event = models.CharField(_("事件"), max_length=64, choices=event_choices, db_index=True)
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("店铺"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    context = models.JSONField(_("内容数据"), default=dict, blank=True)
    recipient = EncryptedTextField(_("收件人（买家）"), blank=True, default="")
    created_at = models.DateTimeField(_("时间"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("通知")
        verbose_name_plural = _("通知")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.get_event_display()} #{self.pk}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENDING = "sending", _("发送中")
        SENT = "sent", _("已发送")
        RETRY_WAIT = "retry_wait", _("等待重试")
        FAILED = "failed", _("失败")
        UNKNOWN = "unknown", _("结果未知（待人工确认）")

    notification = models.ForeignKey(Notification, verbose_name=_("通知"), on_delete=models.CASCADE,
                                      related_name="deliveries")
    channel = models.ForeignKey(Channel, verbose_name=_("渠道"), on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("尝试次数"), default=0)
    due_at = models.DateTimeField(_("计划发送时间"), null=True, blank=True, db_index=True)
    lease_until = models.DateTimeField(_("发送租约到期"), null=True, blank=True)
    attempted_at = models.DateTimeField(_("最近尝试时间"), null=True, blank=True)
    sent_at = models.DateTimeField(_("发送成功时间"), null=True, blank=True)
    last_error = models.TextField(_("最近错误"), blank=True)
    subject = models.CharField(_("标题"), max_length=255, blank=True)
    text = models.TextField(_("发送内容"), blank=True)
    external_id = models.CharField(_("平台回执"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("投递记录")
        verbose_name_plural = _("投递记录")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="notif_delivery_status_due"),
            models.Index(fields=["channel", "attempted_at"], name="notif_delivery_chan_attempt"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.channel_id} {self.status}"


class AlertGate(models.Model):
    """Rate limit for repeated alerts (webhook rejections per source, health problems): at most one
    alert per interval, carrying how many occurrences were folded into it."""

    key = models.CharField(_("键"), max_length=191, unique=True)
    last_alert_at = models.DateTimeField(_("上次告警"), null=True, blank=True)
    pending_count = models.PositiveIntegerField(_("未告警次数"), default=0)

    class Meta:
        verbose_name = _("告警限流")
        verbose_name_plural = _("告警限流")

    def __str__(self):
        return self.key
