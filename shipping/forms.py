from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import Product

MAX_IMPORT_BYTES = 5 * 1024 * 1024


class ManualShipForm(forms.Form):
    logistics_company = forms.CharField(label=_("Courier"), max_length=64, required=False)
    express_code = forms.CharField(label=_("Courier code"), max_length=32, required=False,
                                   help_text=_("The platform's courier code, e.g. shunfeng; may be left empty for "
                                               "virtual goods"))
    waybill_no = forms.CharField(label=_("Waybill no."), max_length=64, required=False,
                                 help_text=_("Required for physical goods: a real waybill number"))
    content = forms.CharField(label=_("Delivery content"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
                              help_text=_("Virtual goods: leave empty to use the product's delivery template"))
    handed_over = forms.BooleanField(
        label=_("I handed the content to the buyer myself"), required=False,
        help_text=_("Virtual goods: tick when you gave the buyer the content yourself (e.g. in the Xianyu chat); "
                    "only the platform shipment is then sent. Otherwise the content goes to the buyer the "
                    "product's way first."))


class BulkShipForm(forms.Form):
    logistics_company = forms.CharField(label=_("Courier"), max_length=64, required=False)
    express_code = forms.CharField(label=_("Courier code"), max_length=32, required=False)
    waybills = forms.CharField(
        label=_("Waybill no."), required=False, widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("One per line: a waybill number per line in the order of the orders above, or “order no. "
                    "waybill no.” on each line. May be left empty for virtual goods"))

    def __init__(self, *args, order_nos: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.order_nos = order_nos

    def clean_waybills(self) -> dict[str, str]:
        lines = [ln.split() for ln in self.cleaned_data.get("waybills", "").splitlines() if ln.strip()]
        if not lines:
            return {}
        if all(len(parts) == 2 for parts in lines):
            pairs = {a: b for a, b in lines}
            unknown = sorted(set(pairs) - set(self.order_nos))
            if unknown:
                raise forms.ValidationError(_("These order numbers are not among the selected orders: %(nos)s")
                                            % {"nos": "、".join(unknown)})
            return pairs
        if any(len(parts) != 1 for parts in lines):
            raise forms.ValidationError(_("Mixed formats: write only a waybill number on every line, or “order no. "
                                          "waybill no.” on every line"))
        if len(lines) != len(self.order_nos):
            raise forms.ValidationError(_("There are %(n)d waybill lines but %(m)d selected orders")
                                        % {"n": len(lines), "m": len(self.order_nos)})
        return dict(zip(self.order_nos, (parts[0] for parts in lines), strict=True))


class CardCodeImportForm(forms.Form):
    product = forms.ModelChoiceField(label=_("Product"), queryset=Product.objects.filter(kind=Product.Kind.VIRTUAL))
    text = forms.CharField(label=_("Paste card codes"), required=False, widget=forms.Textarea(attrs={"rows": 12}),
                           help_text=_("One code per line; empty lines and duplicates are skipped and counted"))
    file = forms.FileField(label=_("Or upload a text file"), required=False,
                           help_text=_("UTF-8 text, one code per line"))

    def clean(self):
        data = super().clean()
        lines: list[str] = (data.get("text") or "").splitlines()
        upload = data.get("file")
        if upload:
            if upload.size > MAX_IMPORT_BYTES:
                raise forms.ValidationError(_("The file is too large (at most 5 MB)"))
            try:
                lines += upload.read().decode("utf-8-sig").splitlines()
            except UnicodeDecodeError as exc:
                raise forms.ValidationError(_("The file is not UTF-8 text")) from exc
        if not lines:
            raise forms.ValidationError(_("Paste card codes or upload a file"))
        data["lines"] = lines
        return data
