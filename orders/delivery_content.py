"""A product's delivery template: the variables it may use, its default text, validation and rendering.

The template is rendered in the shared sandbox (common.text_templates) with a fixed context of plain values:

| variable | value |
| --- | --- |
| `code` | the first code ("" when the product has no codes) |
| `codes` | all codes, one per line (`{% for c in codes %}` and `codes|length` see them one by one) |
| `quantity` | units bought |
| `order_no` | the platform order number |
| `item_title` | the item's title |
| `delivery_url` | the buyer's delivery page |

Never model objects. The result is plain text, stored raw and escaped once where it is shown. Validation
(`template_error`) runs when a product is saved (Product.clean: admin form and `orders.services.product_save`).
"""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

from common.text_templates import TemplateProblem, check_template, render_template

VARIABLES = ("code", "codes", "quantity", "order_no", "item_title", "delivery_url")
DEFAULT_TEMPLATE = (
    "您好，您购买的「{{ item_title }}」已发货，订单号 {{ order_no }}。{% if codes %}\n"
    "{% if codes|length > 1 %}卡密（共 {{ codes|length }} 个，每行一个）：{% else %}卡密：{% endif %}\n"
    "{{ codes }}{% endif %}\n"
    "请妥善保存，不要转发给他人。如有问题请在闲鱼联系卖家。"
)
_MENTIONS_CODES = re.compile(r"\bcodes?\b")


class CodeLines(str):
    """All codes as text, one per line; iterating, indexing and `len()` give the individual codes, so
    `{{ codes }}` prints lines while `{% for c in codes %}` walks the codes (older templates keep working)."""

    def __new__(cls, codes=()):
        items = tuple(str(c) for c in codes)
        obj = super().__new__(cls, "\n".join(items))
        obj._codes = items
        return obj

    def __iter__(self):
        return iter(self._codes)

    def __reversed__(self):
        return reversed(self._codes)

    def __len__(self):
        return len(self._codes)

    def __getitem__(self, index):
        return self._codes[index]


SAMPLE = {"code": "VIP-AAAA-1111", "codes": CodeLines(["VIP-AAAA-1111", "VIP-BBBB-2222"]), "quantity": 2,
          "order_no": "3001000000000000001", "item_title": "会员激活码",
          "delivery_url": "https://example.com/delivery/sample-token/"}


def mentions_codes(source: str) -> bool:
    return bool(_MENTIONS_CODES.search(source or ""))


def delivery_context(*, codes, quantity: int, order_no: str, item_title: str, delivery_url: str) -> dict:
    lines = CodeLines(codes)
    return {"code": lines[0] if len(lines) else "", "codes": lines, "quantity": int(quantity),
            "order_no": str(order_no), "item_title": str(item_title), "delivery_url": str(delivery_url)}


def render_delivery(source: str, **values) -> str:
    """The delivery text (plain, stripped) for a template ("" = the default). Raises TemplateProblem when the
    template does not compile or uses a refused tag."""
    return render_template(source if (source or "").strip() else DEFAULT_TEMPLATE, delivery_context(**values))


def template_error(source: str) -> str | None:
    """Why this delivery template cannot be saved, or None. An empty template means the default text."""
    if not (source or "").strip():
        return None
    try:
        out = check_template(source, SAMPLE)
    except TemplateProblem as exc:
        return describe(exc)
    if not out:
        return _("The template renders as empty text.")
    return None


def describe(exc: TemplateProblem) -> str:
    if exc.kind == "syntax":
        return _("Template syntax error: %(detail)s") % {"detail": exc.detail}
    if exc.kind == "unknown_variable":
        return _("The template uses a variable delivery content does not have. Allowed variables: %(names)s") % {
            "names": ", ".join(VARIABLES)}
    if exc.kind == "forbidden":
        return _("The tag “%(tag)s” is not allowed in a delivery template.") % {"tag": exc.detail}
    return _("The template cannot be rendered: %(detail)s") % {"detail": exc.detail}
