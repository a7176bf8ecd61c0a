"""WeCom (企业微信) group robot: POST /cgi-bin/webhook/send?key=KEY, the key is the credential.

config: url (full webhook URL, key included) or base_url + the key in `secret`; mentioned_list,
mentioned_mobile_list; msgtype "text" (default) or "markdown". Text is cut to 2048 bytes UTF-8.
Answer codes (second-hand, see protocols/notify-channels.md): 0 ok, 45009 rate limited, 93000 bad key;
-1 "system busy" is treated as retryable; 40008/44004/40058 (bad message) fail without retry."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from common.http import ConfigurationError, PlatformError, RateLimited

from .base import BaseChannel, Message, as_list, truncate_bytes

TEXT_LIMIT = 2048
MARKDOWN_LIMIT = 4096
RATE_LIMITED = {45009}
BAD_CONFIG = {93000, 40001, 40014, 93004}
RETRYABLE = {-1}


class WeComChannel(BaseChannel):
    kind = "wecom"
    default_base_url = "https://qyapi.weixin.qq.com"
    default_rate_limit = 20

    def _url(self) -> str:
        url = self.config.get("url")
        if url:
            parts = urlsplit(url)
            query = dict(parse_qsl(parts.query))
            if self.secret:
                query["key"] = self.secret
            return urlunsplit(parts._replace(query=urlencode(query)))
        return f"{self.base_url()}/cgi-bin/webhook/send?{urlencode({'key': self.secret})}"

    def validate(self) -> None:
        url = self.config.get("url", "")
        if not self.secret and "key=" not in url:
            raise ConfigurationError("wecom: 未设置机器人 key（密钥或 url 中的 key=）")

    def payload(self, message: Message) -> dict:
        if self.config.get("msgtype") == "markdown":
            return {"msgtype": "markdown",
                    "markdown": {"content": truncate_bytes(message.full_text(), MARKDOWN_LIMIT)}}
        text: dict = {"content": truncate_bytes(message.full_text(), TEXT_LIMIT)}
        if mentions := as_list(self.config.get("mentioned_list")):
            text["mentioned_list"] = mentions
        if mobiles := as_list(self.config.get("mentioned_mobile_list")):
            text["mentioned_mobile_list"] = mobiles
        return {"msgtype": "text", "text": text}

    def send(self, message: Message) -> str:
        client = self.client()
        resp = client.send("POST", self._url(), json=self.payload(message))
        data = client.json_of(resp, self.kind)
        code = data.get("errcode")
        if code == 0:
            return ""
        msg = f"wecom: {data.get('errmsg', '')}".strip()
        if code in RATE_LIMITED:
            raise RateLimited(msg, code=code)
        if code in BAD_CONFIG:
            raise ConfigurationError(msg, code=code)
        raise PlatformError(msg, code=code, retryable=code in RETRYABLE)

