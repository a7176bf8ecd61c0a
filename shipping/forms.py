from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.models import Product

MAX_IMPORT_BYTES = 5 * 1024 * 1024


class ManualShipForm(forms.Form):
    logistics_company = forms.CharField(label=_("物流公司"), max_length=64, required=False)
    express_code = forms.CharField(label=_("物流公司编码"), max_length=32, required=False,
                                   help_text=_("平台的快递公司编码，如 shunfeng；虚拟商品可留空"))
    waybill_no = forms.CharField(label=_("运单号"), max_length=64, required=False,
                                 help_text=_("实物商品必填，须为真实运单号"))
    content = forms.CharField(label=_("发货内容"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
                              help_text=_("虚拟商品：留空则按商品发货模板生成"))
    handed_over = forms.BooleanField(
        label=_("I handed the content to the buyer myself"), required=False,
        help_text=_("Virtual goods: tick when you gave the buyer the content yourself (e.g. in the Xianyu chat); "
                    "only the platform shipment is then sent. Otherwise the content goes to the buyer the "
                    "product's way first."))


class BulkShipForm(forms.Form):
    logistics_company = forms.CharField(label=_("物流公司"), max_length=64, required=False)
    express_code = forms.CharField(label=_("物流公司编码"), max_length=32, required=False)
    waybills = forms.CharField(
        label=_("运单号"), required=False, widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("每行一个：按上面订单的顺序每行一个运单号，或每行「订单号 运单号」。虚拟商品可留空"))

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
                raise forms.ValidationError(_("这些订单号不在所选订单中：%(nos)s") % {"nos": "、".join(unknown)})
            return pairs
        if any(len(parts) != 1 for parts in lines):
            raise forms.ValidationError(_("格式不一致：每行只写运单号，或每行写「订单号 运单号」"))
        if len(lines) != len(self.order_nos):
            raise forms.ValidationError(_("运单号有 %(n)d 行，但选中了 %(m)d 个订单")
                                        % {"n": len(lines), "m": len(self.order_nos)})
        return dict(zip(self.order_nos, (parts[0] for parts in lines), strict=True))


class CardCodeImportForm(forms.Form):
    product = forms.ModelChoiceField(label=_("商品"), queryset=Product.objects.filter(kind=Product.Kind.VIRTUAL))
    text = forms.CharField(label=_("粘贴卡密"), required=False, widget=forms.Textarea(attrs={"rows": 12}),
                           help_text=_("每行一个卡密，空行与重复项会被跳过并统计"))
    file = forms.FileField(label=_("或上传文本文件"), required=False, help_text=_("UTF-8 文本，每行一个卡密"))

    def clean(self):
        data = super().clean()
        lines: list[str] = (data.get("text") or "").splitlines()
        upload = data.get("file")
        if upload:
            if upload.size > MAX_IMPORT_BYTES:
                raise forms.ValidationError(_("文件过大（上限 5 MB）"))
            try:
                lines += upload.read().decode("utf-8-sig").splitlines()
            except UnicodeDecodeError as exc:
                raise forms.ValidationError(_("文件不是 UTF-8 文本")) from exc
        if not lines:
            raise forms.ValidationError(_("请粘贴卡密或上传文件"))
        data["lines"] = lines
        return data
