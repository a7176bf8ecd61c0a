"""Base for outbound platform clients: one `requests` session, timeouts on every call, and errors that
say whether a retry is safe and whether the call may have taken effect (`outcome_unknown`)."""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings

log = logging.getLogger(__name__)


class PlatformError(Exception):
    """A call to a platform failed.

    retryable: trying again later may succeed (timeout, 5xx, rate limit).
    outcome_unknown: the request may have reached the platform and taken effect; reconcile before retrying.
    """

    def __init__(self, message: str, *, code: str | int | None = None, retryable: bool = False,
                 outcome_unknown: bool = False, status: int | None = None, payload: Any = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.outcome_unknown = outcome_unknown
        self.status = status
        self.payload = payload

    def __str__(self) -> str:
        parts = [self.message]
        if self.code not in (None, ""):
            parts.append(f"code={self.code}")
        if self.status:
            parts.append(f"http={self.status}")
        return " ".join(parts)


class ConfigurationError(PlatformError):
    """Our side is wrong (bad key, bad signature, missing setting): retrying will not help."""

    def __init__(self, message: str, **kwargs):
        kwargs.setdefault("retryable", False)
        super().__init__(message, **kwargs)


class RateLimited(PlatformError):
    def __init__(self, message: str = "rate limited", **kwargs):
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)


class SignedClient:
    """Subclasses build and sign requests and interpret the platform's answer envelope."""

    base_url: str = ""
    platform: str = "platform"

    def __init__(self, *, base_url: str | None = None, timeout: tuple[float, float] | None = None,
                 session: requests.Session | None = None):
        if base_url is not None:
            self.base_url = base_url.rstrip("/")
        self.timeout = timeout or tuple(settings.PLATFORM_HTTP_TIMEOUT)
        self.session = session or _shared_session()

    def send(self, method: str, url: str, **kwargs) -> requests.Response:
        """Send one request; transport failures and HTTP errors become PlatformError."""
        kwargs.setdefault("timeout", self.timeout)
        try:
            resp = self.session.request(method, url, **kwargs)
        except requests.ConnectTimeout as exc:
            raise PlatformError(f"{self.platform}: connect timeout", retryable=True) from exc
        except requests.ReadTimeout as exc:
            raise PlatformError(f"{self.platform}: read timeout", retryable=True, outcome_unknown=True) from exc
        except requests.ConnectionError as exc:
            # Refused connections never reached the platform; a reset after sending might have.
            unknown = "refused" not in str(exc).lower()
            raise PlatformError(f"{self.platform}: connection error: {exc.__class__.__name__}",
                                retryable=True, outcome_unknown=unknown) from exc
        if resp.status_code == 429:
            raise RateLimited(f"{self.platform}: HTTP 429", status=429)
        if resp.status_code >= 500:
            raise PlatformError(f"{self.platform}: HTTP {resp.status_code}", status=resp.status_code,
                                retryable=True, outcome_unknown=True)
        if resp.status_code in (401, 403):
            raise ConfigurationError(f"{self.platform}: HTTP {resp.status_code} (credentials refused)",
                                     status=resp.status_code, payload=_text(resp))
        if resp.status_code >= 400:
            raise PlatformError(f"{self.platform}: HTTP {resp.status_code}", status=resp.status_code,
                                payload=_text(resp))
        return resp

    @staticmethod
    def json_of(resp: requests.Response, platform: str = "platform") -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise PlatformError(f"{platform}: answer is not JSON", status=resp.status_code, retryable=True,
                                outcome_unknown=True, payload=_text(resp)) from exc


def _text(resp: requests.Response) -> str:
    return resp.text[:2000]


_session: requests.Session | None = None


def _shared_session() -> requests.Session:
    global _session
    if _session is None:
        s = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=16, max_retries=0)
        s.mount("http://", adapter)
        s.mount("https://", adapter)
        s.headers["User-Agent"] = "xianyu-ops/1.0"
        _session = s
    return _session
