"""The one interface every channel kind implements.

A channel class is built from a `Channel` row (its non-secret `config` and decrypted `secret`), checks
its settings in `validate()` and sends one `Message` in `send()`. Failures are raised as
`common.http` errors, which say how the delivery proceeds:

* `ConfigurationError` (bad key, bad signature, missing settings, 401/403): stop, keep the reason;
* `RateLimited` / `PlatformError(retryable=True)` (timeouts, 5xx, rate-limit codes): retry with backoff;
* `outcome_unknown=True` on a non-idempotent channel (SMS): never resend blindly, staff decide;
* any other `PlatformError`: failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from common.http import ConfigurationError, SignedClient


@dataclass
class Message:
    event: str
    subject: str
    text: str
    context: dict = field(default_factory=dict)
    recipient: str = ""          # buyer events: a phone number or e-mail address
    notification_id: int | None = None
    delivery_id: int | None = None
    created_at: str = ""
    shop_id: int | None = None

    def full_text(self) -> str:
        return f"【{self.subject}】\n{self.text}" if self.subject else self.text


class BaseChannel:
    kind: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    default_rate_limit: ClassVar[int] = 60
    # False for kinds where a second send is a second message the recipient pays for / sees (SMS): an
    # attempt whose outcome is unknown is then never retried automatically.
    idempotent: ClassVar[bool] = True
    # How long to wait after the platform said "too fast".
    rate_limited_pause: ClassVar[timedelta] = timedelta(minutes=1)

    def __init__(self, *, config: dict | None = None, secret: str = "", name: str = ""):
        self.config = dict(config or {})
        self.secret = secret or ""
        self.name = name or self.kind

    @classmethod
    def from_model(cls, channel) -> BaseChannel:
        return cls(config=channel.config or {}, secret=channel.secret or "", name=channel.name)

    # -- settings ---------------------------------------------------------------------------------
    def base_url(self) -> str:
        return str(self.config.get("base_url") or self.default_base_url).rstrip("/")

    def require(self, *names: str) -> None:
        missing = [n for n in names if not self.config.get(n)]
        if missing:
            raise ConfigurationError(f"{self.kind}: 缺少配置项 {', '.join(missing)}")

    def require_secret(self, what: str = "secret") -> None:
        if not self.secret:
            raise ConfigurationError(f"{self.kind}: 未设置密钥（{what}）")

    def validate(self) -> None:
        """Raise ConfigurationError when a setting the channel needs is missing."""

    # -- sending ----------------------------------------------------------------------------------
    def client(self) -> SignedClient:
        c = SignedClient(base_url=self.base_url())
        c.platform = self.kind
        return c

    def send(self, message: Message) -> str:
        """Send one message; returns the platform's receipt id (or ""). Raises PlatformError."""
        raise NotImplementedError


def truncate_bytes(text: str, limit: int, suffix: str = "…") -> str:
    """Cut `text` so that its UTF-8 encoding is at most `limit` bytes, on a character boundary."""
    data = text.encode()
    if len(data) <= limit:
        return text
    room = limit - len(suffix.encode())
    return data[:room].decode("utf-8", "ignore") + suffix


def as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
    return [str(v) for v in value]
