"""Encrypted model fields (Fernet). `FIELD_ENCRYPTION_KEYS`: the first key encrypts, every key decrypts,
so keys rotate by prepending a new one and running `manage.py reencrypt_fields`."""

from __future__ import annotations

import json
import re
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.translation import gettext_lazy as _


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_str(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt_str(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # a key was removed before re-encrypting, or the row was tampered with
        raise ImproperlyConfigured("encrypted field cannot be decrypted with FIELD_ENCRYPTION_KEYS") from exc


HIDDEN = "********"
_PHONE_JUNK = re.compile(r"[\s()+-]")


def mask(value) -> str:
    """Personal data as staff without `accounts.view_pii` see it. A phone number keeps its last 4 digits
    (enough to match a buyer who calls); anything else — names, addresses, e-mails, card codes, delivery
    content and links — shows no character at all, and not its length either."""
    if value is None or value == "":
        return ""
    text = str(value)
    digits = _PHONE_JUNK.sub("", text)
    if digits.isascii() and digits.isdigit() and 7 <= len(digits) <= 15:
        return f"{'*' * (len(digits) - 4)}{digits[-4:]}"
    return HIDDEN


def mask_secret(value) -> str:
    """A credential (app secret, session, access token, channel key) as anyone sees it: whether it is set,
    never a character of it."""
    return str(_("set (hidden)")) if value else str(_("(not set)"))


class EncryptedTextField(models.TextField):
    """Stores text encrypted with Fernet. Empty strings stay empty (nothing to hide, and filterable).

    Not searchable or orderable: each encryption is randomised."""

    description = "Text encrypted at rest"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt_str(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_str(str(value))


class EncryptedJSONField(EncryptedTextField):
    """A JSON document stored encrypted (e.g. a receiver's address)."""

    def from_db_value(self, value, expression, connection):
        text = super().from_db_value(value, expression, connection)
        return json.loads(text) if text else {}

    def to_python(self, value):
        if isinstance(value, str) and value:
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value or {}

    def get_prep_value(self, value):
        if value in (None, "", {}):
            return ""
        return encrypt_str(json.dumps(value, ensure_ascii=False, sort_keys=True))

    def value_to_string(self, obj):
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)


def encrypted_fields(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]
