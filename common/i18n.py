"""The language of a page and of the text we write for others.

- Staff pages (the admin, the staff API) are in settings.LANGUAGE_CODE (Simplified Chinese) unless the reader
  chose another of settings.LANGUAGES with the language switch (Django's `set_language` view at
  /i18n/setlang/, `templates/includes/language_switch.html`), which keeps the choice in the language cookie.
  The browser's Accept-Language is never consulted (`LanguageMiddleware`, in place of Django's
  LocaleMiddleware): an English browser used to get the admin's own words in English around the project's
  Chinese labels, with no way to choose.
- Buyer pages (/verify/, /delivery/, the mini-program API) are Chinese content, whatever the visitor's cookie
  says: `buyer_page`.
- Text written for someone other than the reader — a message to a buyer or a staff chat, a log row — is
  composed in LANGUAGE_CODE even when a staff action in another language triggers it: `content_language()`.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.core.signals import request_finished
from django.utils import translation
from django.utils.cache import patch_vary_headers

MAX_COOKIE_LENGTH = 32


def chosen_language(request) -> str:
    """The language the reader chose with the switch, if it is one we offer; else LANGUAGE_CODE."""
    code = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
    if code and len(code) <= MAX_COOKIE_LENGTH and code.isascii():
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            pass
    return settings.LANGUAGE_CODE


def _deactivate(**kwargs):
    # After the response is closed (a streamed one included), the thread goes back to LANGUAGE_CODE: whatever
    # runs next in it (another request, a test, an eager task) does not inherit this reader's language.
    translation.deactivate()


class LanguageMiddleware:
    """Activates the reader's chosen language (cookie) or LANGUAGE_CODE; never Accept-Language."""

    def __init__(self, get_response):
        self.get_response = get_response
        request_finished.connect(_deactivate, dispatch_uid="common.i18n.deactivate")

    def __call__(self, request):
        language = chosen_language(request)
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


def content_language():
    """Context manager: compose text for others (buyers, staff chats, records) in LANGUAGE_CODE."""
    return translation.override(settings.LANGUAGE_CODE)


def buyer_page(view):
    """A view whose pages and answers are for buyers: always in LANGUAGE_CODE (Chinese content)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with content_language():
            request.LANGUAGE_CODE = settings.LANGUAGE_CODE
            response = view(request, *args, **kwargs)
            if callable(getattr(response, "render", None)) and not getattr(response, "is_rendered", True):
                response.render()
        response.headers["Content-Language"] = settings.LANGUAGE_CODE
        return response

    return wrapped
