"""Hostile input at the boundary (DESIGN.md §6): characters no database column can hold, and the cleaning
of what we store about a request we refuse.

PostgreSQL refuses NUL (0x00) in text and cannot encode a lone UTF-16 surrogate; other C0 control characters
(except tab, newline, carriage return) have no business in an address, a query or an identifier. A request
carrying them is answered 4xx with a plain reason (`common.middleware.HostileInputMiddleware`, webhooks in
`common.inbox.receive`); what we keep of it for staff is cleaned with `clean_text`/`clean_doc` first.
"""

from __future__ import annotations

import re
from typing import Any

# NUL and the other C0 controls except \t \n \r, DEL, and lone surrogates.
_HOSTILE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def is_hostile(text: str) -> bool:
    """True when `text` holds a character we never accept in an address, a query or an identifier."""
    return bool(_HOSTILE.search(text))


def clean_text(value: Any, limit: int | None = None) -> str:
    """`value` as text that any database can store: hostile characters replaced by U+FFFD, cut to `limit`."""
    text = "" if value is None else str(value)
    if limit is not None:
        text = text[:limit]
    return _HOSTILE.sub(REPLACEMENT, text)


def clean_doc(value: Any, limit: int = 512) -> Any:
    """A JSON document (headers…) with every key and string cleaned and cut to `limit` characters."""
    if isinstance(value, dict):
        return {clean_text(k, 128): clean_doc(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_doc(v, limit) for v in value]
    if isinstance(value, str):
        return clean_text(value, limit)
    return value


def decode_body(body: bytes) -> str | None:
    """The body as text, or None when it is not clean UTF-8 (invalid bytes, NUL, other controls)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if is_hostile(text) else text


_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")


def is_plain_id(value: Any, max_length: int = 64) -> bool:
    """A platform identifier as we accept it: a non-empty string of letters, digits and `_ . : -`."""
    return isinstance(value, str) and len(value) <= max_length and bool(_ID.fullmatch(value))
