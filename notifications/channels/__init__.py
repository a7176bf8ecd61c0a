"""Registry of channel kinds. Adding a kind: one module with a BaseChannel subclass, one line here, one
choice in models.ChannelKind."""

from __future__ import annotations

from .base import BaseChannel, Message
from .dingtalk import DingTalkChannel
from .email import EmailChannel
from .feishu import FeishuChannel
from .sms import AliyunSmsChannel
from .webhook import WebhookChannel
from .wecom import WeComChannel

REGISTRY: dict[str, type[BaseChannel]] = {
    cls.kind: cls
    for cls in (WeComChannel, DingTalkChannel, FeishuChannel, EmailChannel, AliyunSmsChannel, WebhookChannel)
}


def get_channel_class(kind: str) -> type[BaseChannel]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise ValueError(f"unknown channel kind {kind!r}") from None


def channel_for(channel) -> BaseChannel:
    """The sender for a Channel row."""
    return get_channel_class(channel.kind).from_model(channel)


__all__ = ["REGISTRY", "BaseChannel", "Message", "channel_for", "get_channel_class"]
