"""The channel form: a typed, validated field for every setting of each channel kind, instead of raw JSON.

Each kind's settings are declared once here (`KIND_SETTINGS`), with labels and help text; the form shows them
grouped by kind, checks the chosen kind's required ones, and builds `Channel.config` from them. Keys the form
does not know (set in code or by an older version) are kept. Last, the channel class's own `validate()` runs
on the result, so the form refuses exactly what sending would refuse (an e-mail channel without recipients).
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _
from unfold.widgets import (
    UnfoldAdminSelectWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldAdminURLInputWidget,
    UnfoldBooleanSwitchWidget,
)

from common.http import ConfigurationError

from .channels import get_channel_class
from .channels.base import as_list
from .models import Channel, ChannelKind


class ListField(forms.CharField):
    """Several values, one per line (or separated by commas); stored as a JSON list."""

    def __init__(self, *, item_validator=None, **kwargs):
        kwargs.setdefault("widget", UnfoldAdminTextareaWidget(attrs={"rows": 3}))
        super().__init__(**kwargs)
        self.item_validator = item_validator

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        items = [v for line in text.splitlines() for v in as_list(line)]
        if self.item_validator:
            for item in items:
                self.item_validator(item)
        return items


@dataclass(frozen=True)
class Setting:
    key: str
    field: forms.Field
    required: bool = False


def _text(label, help_text=""):
    return forms.CharField(label=label, help_text=help_text, required=False, widget=UnfoldAdminTextInputWidget)


def _url(label, help_text=""):
    return forms.URLField(label=label, help_text=help_text, required=False, assume_scheme="https",
                          widget=UnfoldAdminURLInputWidget)


def _list(label, help_text="", item_validator=None):
    return ListField(label=label, help_text=help_text, required=False, item_validator=item_validator)


def _bool(label, help_text=""):
    return forms.BooleanField(label=label, help_text=help_text, required=False, widget=UnfoldBooleanSwitchWidget)


def _base_url():
    return Setting("base_url", _url(_("Platform API address"),
                                    _("Empty: the platform's own address. Only to test against a local copy.")))


KIND_SETTINGS: dict[str, list[Setting]] = {
    ChannelKind.EMAIL: [
        Setting("to", _list(_("Recipients"), _("E-mail addresses, one per line. Required."),
                             item_validator=validate_email), required=True),
        Setting("subject_prefix", _text(_("Subject prefix"), _("Put before every subject, e.g. [Xianyu]."))),
        Setting("from_email", forms.EmailField(label=_("Sender address"), required=False,
                                               help_text=_("Empty: the server's DEFAULT_FROM_EMAIL."))),
    ],
    ChannelKind.WECOM: [
        Setting("url", _url(_("Robot webhook URL"),
                            _("The group robot's address, with key=…; or leave it empty and put the key in the "
                              "secret."))),
        Setting("msgtype", forms.ChoiceField(label=_("Message format"), required=False,
                                             choices=[("", _("Plain text")), ("markdown", _("Markdown"))],
                                             widget=UnfoldAdminSelectWidget)),
        Setting("mentioned_list", _list(_("Members to @ (user IDs)"), _("One per line; @all for everyone."))),
        Setting("mentioned_mobile_list", _list(_("Members to @ (mobile numbers)"), _("One per line."))),
        _base_url(),
    ],
    ChannelKind.DINGTALK: [
        Setting("url", _url(_("Robot webhook URL"), _("With access_token=…; or give the access token below."))),
        Setting("access_token", _text(_("Access token"), _("Needed when the URL is empty."))),
        Setting("keyword", _text(_("Keyword"), _("When the robot's security setting requires a keyword."))),
        Setting("at_mobiles", _list(_("Mobile numbers to @"), _("One per line."))),
        Setting("at_all", _bool(_("@ everyone"))),
        _base_url(),
    ],
    ChannelKind.FEISHU: [
        Setting("url", _url(_("Robot webhook URL"), _("Or give the token below."))),
        Setting("token", _text(_("Robot token"), _("The last part of the webhook URL; needed when the URL is "
                                                    "empty."))),
        Setting("keyword", _text(_("Keyword"), _("When the robot's security setting requires a keyword."))),
        _base_url(),
    ],
    ChannelKind.SMS: [
        Setting("access_key_id", _text(_("AccessKey ID"), _("Aliyun AccessKey ID; its secret goes in the secret "
                                                            "field.")), required=True),
        Setting("sign_name", _text(_("SMS signature"), _("The approved signature name.")), required=True),
        Setting("template_code", _text(_("Template code"), _("The approved template, e.g. SMS_2xxxxxxxx.")),
                required=True),
        Setting("phone_numbers", _list(_("Staff mobile numbers"),
                                       _("Receive staff events; buyer events go to the buyer's number."))),
        Setting("region_id", _text(_("Region"), _("Empty: cn-hangzhou."))),
        _base_url(),
    ],
    ChannelKind.WEBHOOK: [
        Setting("url", _url(_("Address"), _("Where the signed JSON is posted (http:// or https://).")),
                required=True),
    ],
}


def field_name(kind: str, key: str) -> str:
    return f"{kind}__{key}"


class ChannelForm(forms.ModelForm):
    """Channel settings as typed fields per kind (see the module's documentation)."""

    class Meta:
        model = Channel
        fields = ("name", "kind", "enabled", "shop", "rate_limit_per_minute")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.instance.config or {} if self.instance.pk else {}
        for kind, settings in KIND_SETTINGS.items():
            for s in settings:
                name = field_name(kind, s.key)
                if name in self.fields and self.instance.kind == kind and s.key in config:
                    self.fields[name].initial = config[s.key]

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if not kind:
            return cleaned
        config = {k: v for k, v in (self.instance.config or {}).items()
                  if self.instance.kind == kind and k not in {s.key for s in KIND_SETTINGS.get(kind, [])}}
        for s in KIND_SETTINGS.get(kind, []):
            name = field_name(kind, s.key)
            value = cleaned.get(name)
            if value in (None, "", [], False):
                if s.required and name not in self.errors:
                    self.add_error(name, _("Required for this kind of channel."))
                continue
            config[s.key] = value
        if self.errors:
            return cleaned
        secret = cleaned.get("new_secret") or self.instance.secret or ""
        try:
            get_channel_class(kind)(config=config, secret=secret, name=cleaned.get("name") or "").validate()
        except ConfigurationError as exc:
            raise forms.ValidationError(_("These settings cannot send: %(error)s") % {"error": exc}) from None
        self.instance.config = config
        return cleaned


def kind_field_names(kind: str) -> list[str]:
    return [field_name(kind, s.key) for s in KIND_SETTINGS.get(kind, [])]


# The typed fields, declared on the form class (the admin lists them in per-kind fieldsets).
for _kind, _settings in KIND_SETTINGS.items():
    for _s in _settings:
        ChannelForm.base_fields[field_name(_kind, _s.key)] = _s.field
        ChannelForm.declared_fields[field_name(_kind, _s.key)] = _s.field
