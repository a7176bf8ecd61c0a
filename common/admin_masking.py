"""Personal data and credentials in the admin (DESIGN.md §6): the one masking mechanism every admin page
uses, through `PIIMaskMixin` (model admins and inlines).

Personal data and what gives the goods away (`pii_fields`: phones, addresses, card codes, delivery content
and links, raw message bodies) is masked (`common.fields.mask`) for staff without `accounts.view_pii` and
shown in clear to staff with it; credentials (`secret_fields`) are never shown to anyone, and the form
offers a write-only "new value" field to replace them.

Admin instances are shared by every request and thread, so nothing per-request is ever stored on them:
each masked column is a small callable built for one request (`SensitiveField`), which decides from that
request, passed down explicitly, whether its values are shown in clear.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .fields import mask, mask_secret

PII_PERMISSION = "accounts.view_pii"
BRIEF_CHARS = 120

# Labels for the keys of address-like JSON documents (order receivers).
JSON_KEY_LABELS = {
    "name": _("receiver"), "phone": _("phone"), "mobile": _("mobile"), "prov": _("province"), "province": _("province"),
    "city": _("city"), "area": _("district"), "district": _("district"), "town": _("street"), "address": _("address"),
    "detail": _("detailed address"), "zip": _("postcode"), "email": _("e-mail"),
}


def can_view_pii(request) -> bool:
    return bool(request is not None and request.user.has_perm(PII_PERMISSION))


def shown(request, value: str | None) -> str:
    """A personal value as this staff member may see it."""
    return (value or "") if can_view_pii(request) else mask(value)


def masked_leaves(value: Any) -> Any:
    """A JSON document with its structure kept and every value masked (keys stay readable)."""
    if isinstance(value, dict):
        return {k: masked_leaves(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked_leaves(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return mask(value)


def render_sensitive(value: Any, *, clear: bool):
    """Text or a JSON document (dict/list), masked value by value unless `clear`."""
    if isinstance(value, dict):
        if not value:
            return ""
        order = list(JSON_KEY_LABELS)
        keys = sorted(value, key=lambda k: (order.index(k) if k in order else len(order), str(k)))
        return format_html_join(
            "", "<div>{}：{}</div>",
            ((JSON_KEY_LABELS.get(k, k), render_sensitive(value[k], clear=clear)) for k in keys),
        )
    if isinstance(value, list | tuple):
        return "，".join(str(render_sensitive(v, clear=clear)) for v in value)
    text = "" if value is None else str(value)
    return text if clear else mask(text)


class SensitiveField:
    """A read-only display of one model field or attribute, built for one request. Usable wherever the
    admin accepts a callable (list_display, fields, readonly_fields); equal to any other display of the same
    name, so the copies built by `get_fields` and `get_readonly_fields` match each other."""

    def __init__(self, name: str, label, render: Callable[[Any], Any]):
        self.name = name
        self.__name__ = name  # the admin uses it for CSS classes (field-<name>) and help texts
        self.short_description = label
        self._render = render

    def __call__(self, obj):
        return self._render(obj)

    def __eq__(self, other):
        if isinstance(other, SensitiveField):
            return other.name == self.name
        return NotImplemented

    def __hash__(self):
        return hash((SensitiveField, self.name))

    def __repr__(self):
        return f"<SensitiveField {self.name}>"


class PIIMaskMixin:
    """Mask personal fields by permission and keep credentials write-only (model admins and inlines).

    Declare `pii_fields = ("phone", "email")` and/or `secret_fields = ("app_secret",)`, then list those
    names as usual in `list_display`, `fields`/`fieldsets` or `readonly_fields`: the mixin swaps each for a
    masked, read-only display built for the request. A `pii_fields` name may also be a property (label it
    in `sensitive_labels`). Override `render_clear` to show a clear value otherwise than as text (a link, a
    pretty JSON document), `is_sensitive` to show some rows' values in clear to everyone. In a form, a
    secret is followed by a write-only field `new_<name>` ("<label> 新值（留空不修改）"): blank keeps the
    stored value. Sensitive fields are never form fields themselves, so their stored value never reaches
    the page.
    """

    pii_fields: tuple[str, ...] = ()
    secret_fields: tuple[str, ...] = ()
    sensitive_labels: dict[str, Any] = {}
    pretty_fields: tuple[str, ...] = ()  # pii_fields shown as indented JSON documents (raw messages, params)
    secret_new_label = _("(new value, blank keeps it)")
    secret_new_prefix = "new_"

    # --- how one value is shown (override per admin) -----------------------------------------------

    def is_sensitive(self, obj, name: str) -> bool:
        """Whether this object's `name` is personal data (default: always)."""
        return True

    def render_clear(self, name: str, value: Any, *, obj, brief: bool):
        """A value for staff who may see it (`brief`: a list column)."""
        if name in self.pretty_fields:
            return brief_json(value) if brief else pretty_json(value)
        return render_sensitive(value, clear=True)

    def render_masked(self, name: str, value: Any, *, obj, brief: bool):
        """A value for staff who may not see it: masked, structure kept."""
        if name in self.pretty_fields:
            doc = masked_leaves(as_document(value))
            return brief_json(doc) if brief else pretty_json(doc)
        return render_sensitive(value, clear=False)

    # --- the per-request displays ---------------------------------------------------------------

    def _sensitive_names(self) -> tuple[str, ...]:
        return (*self.pii_fields, *self.secret_fields)

    def _label(self, name: str):
        if name in self.sensitive_labels:
            return self.sensitive_labels[name]
        try:
            return self.model._meta.get_field(name).verbose_name
        except Exception:
            return name

    def sensitive_display(self, request, name: str, *, brief: bool = False) -> SensitiveField:
        """The display of `name` for this request's user (the only place the permission is read)."""
        if name in self.secret_fields:
            return SensitiveField(name, self._label(name), lambda obj: mask_secret(getattr(obj, name, None)))
        clear = can_view_pii(request)

        def render(obj):
            value = getattr(obj, name, None)
            if value in (None, "", {}, []):
                return "-"
            if clear or not self.is_sensitive(obj, name):
                return self.render_clear(name, value, obj=obj, brief=brief)
            return self.render_masked(name, value, obj=obj, brief=brief)

        return SensitiveField(name, self._label(name), render)

    def _swap(self, request, names: Iterable, *, brief: bool = False) -> list:
        sensitive = self._sensitive_names()
        return [self.sensitive_display(request, n, brief=brief) if isinstance(n, str) and n in sensitive else n
                for n in names]

    def _new_name(self, name: str) -> str:
        return f"{self.secret_new_prefix}{name}"

    def _can_write_secrets(self, request, obj) -> bool:
        return self.has_add_permission(request) if obj is None else self.has_change_permission(request, obj)

    def _arrange(self, request, obj, names: Iterable) -> list:
        """Swap sensitive names for displays; after each secret, its write-only field (add form: only it)."""
        new_names = {self._new_name(s) for s in self.secret_fields}
        writable = bool(self.secret_fields) and self._can_write_secrets(request, obj)
        out: list = []
        for item in names:
            if isinstance(item, list | tuple):  # a row of fields
                out.append(tuple(self._arrange(request, obj, item)))
                continue
            if isinstance(item, str) and item in new_names:
                continue  # placed after its display below
            name = item.name if isinstance(item, SensitiveField) else item
            if isinstance(name, str) and name in self.secret_fields:
                if obj is not None:
                    out.append(self.sensitive_display(request, name))
                if writable:
                    out.append(self._new_name(name))
                continue
            out.extend(self._swap(request, [item]))
        return out

    # --- ModelAdmin / InlineModelAdmin hooks ------------------------------------------------------

    def get_list_display(self, request):
        return self._swap(request, super().get_list_display(request), brief=True)

    def get_readonly_fields(self, request, obj=None):
        names = list(super().get_readonly_fields(request, obj))
        names += [n for n in self._sensitive_names() if n not in names]
        return self._swap(request, names)

    def get_exclude(self, request, obj=None):
        return [*(super().get_exclude(request, obj) or ()), *self._sensitive_names()]

    def get_fields(self, request, obj=None):
        return self._arrange(request, obj, super().get_fields(request, obj))

    def get_fieldsets(self, request, obj=None):
        return [(title, {**opts, "fields": self._arrange(request, obj, opts["fields"])})
                for title, opts in super().get_fieldsets(request, obj)]

    def _secret_form(self, base, obj):
        attrs = {}
        for name in self.secret_fields:
            model_field = self.model._meta.get_field(name)
            label = (model_field.verbose_name if obj is None
                     else format_lazy("{} {}", model_field.verbose_name, self.secret_new_label))
            attrs[self._new_name(name)] = forms.CharField(
                label=label, required=obj is None and not model_field.blank, strip=True,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=_("Write-only: never shown in clear once saved."),
            )
        return type(f"{base.__name__}WithSecrets", (base,), attrs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self.secret_fields:
            kwargs["form"] = self._secret_form(kwargs.get("form", self.form), obj)
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        for name in self.secret_fields:
            value = form.cleaned_data.get(self._new_name(name)) if hasattr(form, "cleaned_data") else None
            if value:
                setattr(obj, name, value)
        super().save_model(request, obj, form, change)


def pretty_json(value: Any, limit: int = 20000):
    """A JSON document (or JSON text) indented in a <pre>; other text as is."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre style="white-space:pre-wrap;max-width:100ch">{}</pre>', value[:limit])
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return format_html('<pre style="white-space:pre-wrap;max-width:100ch">{}</pre>', text[:limit])


def brief_json(value: Any, limit: int = BRIEF_CHARS) -> str:
    """A JSON document (or text) on one line, cut to a list column's width."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "…"


def as_document(value: Any) -> Any:
    """A raw message as a document whose values can be masked one by one: JSON text parsed, a form body
    (a=1&b=2) split into its parameters; other text stays one value."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        pass
    if "=" in value and not any(c.isspace() for c in value):
        return dict(parse_qsl(value, keep_blank_values=True))
    return value
