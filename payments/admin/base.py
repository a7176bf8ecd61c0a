"""Admin helpers shared by the payments pages: write-only personal fields, status badges, action reports."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from common.admin_mixins import PIIMaskMixin

COLORS = {
    "init": "#999999", "submitting": "#e67e22", "submitted": "#337ab7", "auditing": "#337ab7",
    "awaiting_confirmation": "#8e44ad", "success": "#27ae60", "closed": "#7f8c8d", "held": "#c0392b",
    "timed_out": "#a93226", "created": "#999999", "waiting": "#e67e22", "paid": "#27ae60", "finished": "#2c3e50",
    "failed": "#c0392b", "pending": "#999999", "sending": "#e67e22", "unknown": "#c0392b", "succeeded": "#27ae60",
}


def badge(obj):
    return format_html('<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px">{}</span>',
                       COLORS.get(obj.status, "#999999"), obj.get_status_display())


class _WriteOnlyClean:
    """Form part: copy the write-only values onto the instance before the model's own validation."""

    write_only_names: tuple[str, ...] = ()

    def clean(self):
        cleaned = super().clean()
        for name in self.write_only_names:
            value = cleaned.get(f"new_{name}")
            if value:
                setattr(self.instance, name, value)
        return cleaned


class WriteOnlyPIIMixin(PIIMaskMixin):
    """Personal fields staff must be able to enter (a contact's mobile, a licence holder's mobile) but see
    only masked without `accounts.view_pii`: shown as the masked display, followed by a write-only input
    (`new_<name>`; blank keeps the stored value). `write_only_pii = {"name": form_field_factory}`."""

    write_only_pii: dict = {}

    def get_form(self, request, obj=None, change=False, **kwargs):
        attrs = {}
        for name, make in self.write_only_pii.items():
            label = self.model._meta.get_field(name).verbose_name
            field = make()
            field.required = False
            field.label = label if obj is None else format_lazy("{} {}", label, _("(new value, blank keeps it)"))
            field.help_text = _("Write-only: the stored value is never shown in clear here.")
            attrs[f"new_{name}"] = field
        attrs["write_only_names"] = tuple(self.write_only_pii)
        base = kwargs.get("form", self.form)
        kwargs["form"] = type(f"{base.__name__}WithPII", (_WriteOnlyClean, base), attrs)
        return super().get_form(request, obj, change=change, **kwargs)

    def arranged(self, request, obj, fieldsets):
        """Per-object fieldsets with the sensitive names swapped for their masked displays (PIIMaskMixin)."""
        return [(title, {**opts, "fields": self._arrange(request, obj, opts["fields"])}) for title, opts in fieldsets]


def report(admin, request, done: int, errors: list[str], what) -> None:
    """One success line and one line per failure."""
    if done:
        admin.message_user(request, format_lazy(what, n=done), messages.SUCCESS)
    for error in errors:
        admin.message_user(request, error, messages.ERROR)


class ReasonForm(forms.Form):
    """Base of intermediate action forms."""

    def as_errors(self) -> list[str]:
        return [f"{self.fields[k].label if k in self.fields else ''}: {e}" for k, es in self.errors.items() for e in es]
