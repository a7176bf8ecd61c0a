"""Outgoing signed webhook (ours, to a customer's URL): POST the event as JSON with
X-Signature: sha256=<hex HMAC-SHA256(secret, body)>, X-Timestamp: <unix seconds> (also inside the signed
body, so a receiver can refuse replays), X-Delivery-Id (the same on every retry: receivers deduplicate).

config: url. 2xx = ok; timeouts, 5xx, 429 retry; 401/403 configuration error; other 4xx failed."""

from __future__ import annotations

import hashlib
import hmac
import json

from django.utils import timezone

from common.http import ConfigurationError

from .base import BaseChannel, Message


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookChannel(BaseChannel):
    kind = "webhook"
    default_rate_limit = 60

    def validate(self) -> None:
        url = self.config.get("url", "")
        if not url:
            raise ConfigurationError("webhook: 缺少配置项 url")
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError("webhook: url 必须以 http:// 或 https:// 开头")
        self.require_secret("签名密钥")

    def send(self, message: Message) -> str:
        ts = str(int(timezone.now().timestamp()))
        doc = {"event": message.event, "notification_id": message.notification_id,
               "delivery_id": message.delivery_id, "shop_id": message.shop_id, "created_at": message.created_at,
               "timestamp": ts, "subject": message.subject, "text": message.text, "context": message.context}
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Timestamp": ts,
                   "X-Signature": webhook_signature(self.secret, body),
                   "X-Delivery-Id": str(message.delivery_id or "")}
        self.client().send("POST", self.config["url"], data=body, headers=headers)
        return ""
