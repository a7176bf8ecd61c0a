"""Request checks every view gets before it runs (DESIGN.md §6: hostile input is a 4xx, never a 500)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from .sanitize import is_hostile

MAX_PATH = 2048
MAX_QUERY = 8192
# Date parts of admin date hierarchies and lookups (`created_at__year=`): Python dates end at year 9999,
# and a longer number overflows before Django can refuse it.
_DATE_PART = re.compile(r"__(year|iso_year|quarter|month|week|week_day|iso_week_day|day|hour|minute|second)$")
_SMALL_NUMBER = re.compile(r"\d{1,4}")


def _utf8(wsgi_text: str, *, percent_encoded: bool) -> bool:
    """Whether a WSGI string (bytes as latin-1) is UTF-8 once percent escapes are undone. Django replaces
    invalid sequences (a lone surrogate encoded as %ED%A0%80) silently; we refuse them."""
    try:
        raw = wsgi_text.encode("latin-1")
    except UnicodeEncodeError:
        # Not a WSGI byte string: text already decoded (Django's test client does this); valid unless it
        # holds a lone surrogate.
        try:
            raw = wsgi_text.encode("utf-8")
        except UnicodeEncodeError:
            return False
    try:
        (unquote_to_bytes(raw.replace(b"+", b" ")) if percent_encoded else raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def request_problem(request) -> tuple[int, str] | None:
    """(status, plain reason) when the request's address or query string cannot be served, else None."""
    query = request.META.get("QUERY_STRING", "")
    if len(request.path) > MAX_PATH or len(query) > MAX_QUERY:
        return 414, _("The address is too long.")
    if is_hostile(request.path) or not _utf8(request.META.get("PATH_INFO", ""), percent_encoded=False):
        return 400, _("The address contains characters that are not allowed.")
    if not _utf8(query, percent_encoded=True):
        return 400, _("The query string is not valid UTF-8.")
    for key, values in request.GET.lists():
        if is_hostile(key) or any(is_hostile(v) for v in values):
            return 400, _("The query string contains characters that are not allowed.")
        if _DATE_PART.search(key) and not all(_SMALL_NUMBER.fullmatch(v) for v in values):
            return 400, _("A date in the query string is out of range.")
    return None


def refusal(request, status: int, reason: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": reason}, status=status)
    return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")


class HostileInputMiddleware:
    """Answers 400 (414 when over-long), with a plain reason and before the view runs, a request whose
    address or query string holds NUL, lone surrogates or control characters, or an impossible date part.

    Views marked `handles_hostile_input = True` (webhooks, `common.inbox.webhook_view`) check the same
    themselves, so that the refused call is recorded with their source."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "handles_hostile_input", False):
            return None
        problem = request_problem(request)
        if problem is None:
            return None
        return refusal(request, *problem)
