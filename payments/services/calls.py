"""One place where the services call Alipay: the call, its classification, and an AlipayCall row with what
was asked (never tokens or pictures) and what Alipay answered (authorisation tokens masked) — the log staff
read on each application, trade and refund. Never called inside a transaction (DESIGN.md §4)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from common.http import ConfigurationError, PlatformError

from ..client import AlipayClient, Answer, get_client, node_of
from ..models import AlipayCall, CallOutcome

log = logging.getLogger(__name__)


SECRET_KEYS = ("app_auth_token", "app_refresh_token")
# What a logged answer or stored notice holds in place of a token (fixed text, whatever the language).
REDACTED = "[redacted]"


def redacted(node: dict) -> dict:
    """An answer as it is logged: authorisation tokens masked (they live encrypted on the merchant only)."""
    out = {}
    for key, value in node.items():
        if key in SECRET_KEYS and value:
            out[key] = REDACTED
        elif isinstance(value, dict):
            out[key] = redacted(value)
        else:
            out[key] = value
    return out


def outcome_of(exc: PlatformError | None) -> str:
    if exc is None:
        return CallOutcome.OK
    if isinstance(exc, ConfigurationError):
        return CallOutcome.CONFIG
    if exc.outcome_unknown:
        return CallOutcome.UNKNOWN
    return CallOutcome.RETRYABLE if exc.retryable else CallOutcome.REFUSED


def client() -> AlipayClient:
    return get_client()


def call(method: str, fn: Callable[[AlipayClient], Answer], *, request: dict, merchant=None, application=None,
         trade=None, refund=None) -> Answer:
    """Run `fn(client)` and log the answer on the given rows. Raises PlatformError (ConfigurationError when
    the settings are incomplete or wrong); a crash of the client counts as an outcome-unknown failure."""
    started = time.monotonic()
    answer, error = None, None
    try:
        answer = fn(client())
    except PlatformError as exc:
        error = exc
    except Exception as exc:  # an unexpected library error: the request may have gone out
        log.exception("alipay %s: unexpected error", method)
        error = PlatformError(f"alipay {method}: {exc.__class__.__name__}: {exc}", retryable=True,
                              outcome_unknown=True)
    node = answer.node if answer is not None else node_of(error)
    AlipayCall.objects.create(
        method=method, outcome=outcome_of(error), code=str(node.get("code") or getattr(error, "status", "") or "")[:16],
        sub_code=str(node.get("sub_code") or "")[:64],
        message=(str(error) if error is not None else str(node.get("msg") or ""))[:255],
        request=request, answer=redacted(node), duration_ms=int((time.monotonic() - started) * 1000),
        merchant=merchant, application=application, trade=trade, refund=refund)
    if error is not None:
        raise error
    return answer
