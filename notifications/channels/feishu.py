"""Feishu (飞书) custom bot with signature check: POST /open-apis/bot/v2/hook/{token}
body {"timestamp": "<seconds>", "sign": S, "msg_type": "text", "content": {"text": …}},
S = base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")) — key and message the other way round
from DingTalk. Body ≤ 20 KB. Answers: code 0 ok (older bots: StatusCode 0); 11232 rate limited (100/min,
5/s); 19021 bad sign / timestamp; 19001 bad token, 19022 IP not allowed, 19024 keyword missing (second-hand)
are configuration errors.

config: token (or url = the whole hook URL), keyword (prefixed when the bot uses keywords)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from django.utils import timezone

from common.http import ConfigurationError, PlatformError, RateLimited

from .base import BaseChannel, Message, truncate_bytes

BODY_LIMIT = 20 * 1024
RATE_LIMITED = {11232}
BAD_CONFIG = {19021, 19001, 19022, 19024}


def feishu_sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuChannel(BaseChannel):
    kind = "feishu"
    default_base_url = "https://open.feishu.cn"
    default_rate_limit = 100

    def _url(self) -> str:
        if self.config.get("url"):
            return self.config["url"]
        return f"{self.base_url()}/open-apis/bot/v2/hook/{self.config.get('token', '')}"

    def validate(self) -> None:
        if not (self.config.get("url") or self.config.get("token")):
            raise ConfigurationError("feishu: 缺少配置项 token（或完整的 url）")
        self.require_secret("签名校验密钥")

    def body(self, message: Message) -> bytes:
        ts = int(timezone.now().timestamp())
        text = message.full_text()
        keyword = self.config.get("keyword")
        if keyword and keyword not in text:
            text = f"{keyword} {text}"
        doc = {"timestamp": str(ts), "sign": feishu_sign(self.secret, ts), "msg_type": "text",
               "content": {"text": ""}}
        room = BODY_LIMIT - len(json.dumps(doc, ensure_ascii=False).encode()) - 64  # JSON escaping margin
        doc["content"]["text"] = truncate_bytes(text, room)
        data = json.dumps(doc, ensure_ascii=False).encode()
        while len(data) > BODY_LIMIT:  # escapes (quotes, newlines) made it longer: cut further
            room -= len(data) - BODY_LIMIT + 16
            doc["content"]["text"] = truncate_bytes(text, room)
            data = json.dumps(doc, ensure_ascii=False).encode()
        return data

    def send(self, message: Message) -> str:
        client = self.client()
        resp = client.send("POST", self._url(), data=self.body(message),
                           headers={"Content-Type": "application/json; charset=utf-8"})
        data = client.json_of(resp, self.kind)
        code = data.get("code", data.get("StatusCode"))
        if code == 0:
            return ""
        msg = f"feishu: {data.get('msg') or data.get('StatusMessage') or ''}".strip()
        if code in RATE_LIMITED:
            raise RateLimited(msg, code=code)
        if code in BAD_CONFIG:
            raise ConfigurationError(msg, code=code)
        raise PlatformError(msg, code=code)
