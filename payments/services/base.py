"""Small helpers the payments services share: notifications, retry delays, hostile-text checks."""

from __future__ import annotations

from datetime import timedelta

from common.due import backoff

LEASE = timedelta(minutes=5)


class PaymentsError(Exception):
    """A request the current state or the input does not allow; the message is shown to staff as is."""


def notify_event(event: str, *, recipient: str = "", **context) -> None:
    """Send a notification in the caller's transaction."""
    from notifications.services import notify

    notify(event, recipient=recipient, **context)


def retry_in(failures: int, *, cap: timedelta = timedelta(hours=1)) -> timedelta:
    """1, 2, 4 … minutes after the 1st, 2nd, 3rd … failure in a row, at most `cap`."""
    return backoff(max(1, failures), cap=cap)


def clean_text(value, *, field: str, max_length: int, required: bool = True) -> str:
    """Plain text from staff or an API caller: stripped, bounded, no NUL or lone surrogates."""
    from django.utils.translation import gettext as _

    if value is None:
        value = ""
    if not isinstance(value, str):
        raise PaymentsError(_("%(field)s must be text.") % {"field": field})
    value = value.strip()
    if "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise PaymentsError(_("%(field)s contains characters that are not allowed.") % {"field": field})
    if required and not value:
        raise PaymentsError(_("%(field)s is required.") % {"field": field})
    if len(value) > max_length:
        raise PaymentsError(_("%(field)s is longer than %(n)s characters.") % {"field": field, "n": max_length})
    return value
