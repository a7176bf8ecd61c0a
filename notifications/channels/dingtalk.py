"""DingTalk custom robot with "加签" security:
POST /robot/send?access_token=X&timestamp=T&sign=S, T in ms,
S = quote_plus(base64(HMAC-SHA256(key=secret, msg=f"{T}\\n{secret}"))).

config: access_token (or url with access_token=), at_mobiles, at_all, keyword (prefixed to the text when the
robot also uses the "custom keywords" setting). secret: the SEC… signing secret.
Answers: errcode 0 ok; 130101 and 410100 are throttling (20/min, then ~10 minutes throttled, so we pause 10
minutes); 310000 (sign / keyword / IP mismatch), 300001, 400101, 400102 (token invalid / robot stopped)
are configuration errors. The exact throttling codes are second-hand (not in our protocol page)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import timedelta
from urllib.parse import parse_qsl, quote_plus, urlsplit

from django.utils import timezone

from common.http import ConfigurationError, PlatformError, RateLimited

from .base import BaseChannel, Message, as_list, truncate_bytes

RATE_LIMITED = {130101, 410100}
BAD_CONFIG = {310000, 300001, 400101, 400102, 400013}
TEXT_LIMIT = 20000


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


class DingTalkChannel(BaseChannel):
    kind = "dingtalk"
    default_base_url = "https://oapi.dingtalk.com"
    default_rate_limit = 20
    rate_limited_pause = timedelta(minutes=10)

    def _token(self) -> str:
        token = self.config.get("access_token", "")
        if not token and self.config.get("url"):
            token = dict(parse_qsl(urlsplit(self.config["url"]).query)).get("access_token", "")
        return token

    def _endpoint(self) -> str:
        url = self.config.get("url")
        if url:
            parts = urlsplit(url)
            return f"{parts.scheme}://{parts.netloc}{parts.path}"
        return f"{self.base_url()}/robot/send"

    def validate(self) -> None:
        if not self._token():
            raise ConfigurationError("dingtalk: 缺少配置项 access_token（或 url 中的 access_token=）")
        self.require_secret("加签密钥 SEC…")

    def payload(self, message: Message) -> dict:
        text = message.full_text()
        keyword = self.config.get("keyword")
        if keyword and keyword not in text:
            text = f"{keyword} {text}"
        return {"msgtype": "text", "text": {"content": truncate_bytes(text, TEXT_LIMIT)},
                "at": {"atMobiles": as_list(self.config.get("at_mobiles")),
                       "isAtAll": bool(self.config.get("at_all", False))}}

    def send(self, message: Message) -> str:
        ts = int(timezone.now().timestamp() * 1000)
        # The signature is already URL-encoded (quote_plus); the query is assembled by hand so that it is not
        # encoded twice.
        url = (f"{self._endpoint()}?access_token={quote_plus(self._token())}&timestamp={ts}"
               f"&sign={dingtalk_sign(self.secret, ts)}")
        client = self.client()
        data = client.json_of(client.send("POST", url, json=self.payload(message)), self.kind)
        code = data.get("errcode")
        if code == 0:
            return ""
        msg = f"dingtalk: {data.get('errmsg', '')}".strip()
        if code in RATE_LIMITED:
            raise RateLimited(msg, code=code)
        if code in BAD_CONFIG:
            raise ConfigurationError(msg, code=code)
        raise PlatformError(msg, code=code, retryable=code in (-1,))
