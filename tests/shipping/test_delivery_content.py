"""Delivery templates: a sandbox of plain values, validated when saved, and text the buyer can read — stored
raw, escaped exactly once where it is shown."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import Client

from accounts.services import shop_upsert
from common.text_templates import TemplateProblem, check_template, render_template
from notifications.models import Template
from orders.delivery_content import DEFAULT_TEMPLATE, render_delivery
from orders.models import Product
from orders.services import product_save
from shipping.services import render_content, shipment_dispatch

from .conftest import paid, with_codes

pytestmark = pytest.mark.django_db

VALUES = {"quantity": 2, "order_no": "3001", "item_title": "会员激活码", "delivery_url": "https://s.example/d/t/"}


def test_codes_print_one_per_line_and_loops_still_see_each_code():
    one = render_delivery("{{ codes }}", codes=["VIP-AAAA-1111"], **VALUES)
    assert one == "VIP-AAAA-1111"  # not ['VIP-AAAA-1111']
    two = ["VIP-AAAA-1111", "VIP-BBBB-2222"]
    assert render_delivery("{{ codes }}", codes=two, **VALUES) == "VIP-AAAA-1111\nVIP-BBBB-2222"
    assert render_delivery("{% for c in codes %}[{{ c }}]{% endfor %} {{ codes|length }}", codes=two,
                           **VALUES) == "[VIP-AAAA-1111][VIP-BBBB-2222] 2"
    assert render_delivery("{{ code }}|{{ quantity }}|{{ order_no }}|{{ item_title }}|{{ delivery_url }}",
                           codes=two, **VALUES) == "VIP-AAAA-1111|2|3001|会员激活码|https://s.example/d/t/"


def test_the_default_text_is_good_chinese():
    assert render_delivery("", codes=["VIP-AAAA-1111", "VIP-BBBB-2222"], **VALUES) == (
        "您好，您购买的「会员激活码」已发货，订单号 3001。\n卡密（共 2 个，每行一个）：\nVIP-AAAA-1111\nVIP-BBBB-2222\n"
        "请妥善保存，不要转发给他人。如有问题请在闲鱼联系卖家。")
    assert render_delivery(DEFAULT_TEMPLATE, codes=[], **VALUES) == (
        "您好，您购买的「会员激活码」已发货，订单号 3001。\n请妥善保存，不要转发给他人。如有问题请在闲鱼联系卖家。")


def test_a_code_is_never_escaped_into_the_text():
    assert render_delivery("卡密：{{ code }}", codes=["A&B<C>'D"], **VALUES) == "卡密：A&B<C>'D"


@pytest.fixture
def xshop(db):
    return shop_upsert(platform="sandbox", name="模板店", app_key="tpl", app_secret="the-app-secret")[0]


@pytest.mark.parametrize(("template", "message"), [
    ("{{ order.shop.app_secret }}", "可用变量：code, codes, quantity, order_no, item_title, delivery_url"),
    ("{{ product.title }}", "可用变量：code"),
    ("{% debug %}", "不允许使用标签“debug”"),
    ('{% include "admin/base.html" %}', "不允许使用标签“include”"),
    ("{% load static %}{{ code }}", "模板语法错误"),
    ("{% if code %}unclosed", "模板语法错误"),
    ("{% if 0 %}nothing{% endif %}", "模板渲染结果为空"),
])
def test_a_template_that_reaches_outside_its_values_is_refused_when_saved(xshop, template, message):
    product = Product(shop=xshop, item_id="t1", title="模板", auto_ship=True, delivery_template=template)
    with pytest.raises(ValidationError) as err:
        product_save(product=product)
    assert message in " ".join(err.value.message_dict["delivery_template"])
    assert not Product.objects.exists()


def test_the_admin_form_refuses_it_too_and_saves_nothing(xshop):
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)
    resp = client.post("/admin/orders/product/add/", {
        "shop": xshop.pk, "item_id": "t2", "title": "模板", "kind": "virtual", "is_active": "on", "auto_ship": "on",
        "ship_delay_min": 0, "ship_delay_max": 0, "delivery_way": "platform", "stock": -1, "low_stock_threshold": 0,
        "delivery_template": "密钥 {{ order.shop.app_secret }}"})
    assert resp.status_code == 200
    page = resp.content.decode()
    assert "可用变量：code, codes, quantity, order_no, item_title, delivery_url" in page
    assert "the-app-secret" not in page and not Product.objects.exists()


def test_an_old_template_that_reaches_into_models_prints_nothing_from_them(fake, shop, product):
    # Saved before validation existed (no full_clean): at delivery time it sees plain values only.
    product.delivery_template = "秘密[{{ order.shop.app_secret }}] 订单 {{ order_no }}"
    product.save()
    order = paid(fake, shop, "OLD1")
    assert render_content(order.shipment, order) == "秘密[] 订单 OLD1"


def test_codes_in_the_content_and_on_the_page_exactly_once_escaped(fake, shop, product):
    with_codes(product, ["A&B<C>'D"])
    product.delivery_template = "{{ codes }}"
    product.save()
    order = paid(fake, shop, "ESC1")
    assert shipment_dispatch(shipment_id=order.shipment.pk) == "shipped"
    order.shipment.refresh_from_db()
    assert order.shipment.content == "A&B<C>'D"
    html = Client().get(f"/delivery/{order.shipment.token}/").content.decode()
    assert "<pre>A&amp;B&lt;C&gt;&#x27;D</pre>" in html and "&amp;amp;" not in html


@pytest.mark.parametrize(("rules", "field", "message"), [
    ({"delivery_way": "platform"}, "__all__", "闲管家没有给买家发消息的接口"),
    ({"card_kind_id": "84", "staff_confirms_shipping": True}, "__all__", "在同一次调用中标记发货"),
    ({"card_kind_id": "eighty-four"}, "card_kind_id", "卡种 ID 是数字"),
])
def test_xianguanjia_delivery_rules_the_platform_cannot_carry_are_refused(shop, rules, field, message):
    product = Product(shop=shop, item_id="x1", title="卡", auto_ship=True, **rules)
    with pytest.raises(ValidationError) as err:
        product_save(product=product)
    assert message in " ".join(err.value.message_dict[field])
    contact = Product(shop=shop, item_id="x2", title="卡", auto_ship=True, delivery_way="contact",
                      staff_confirms_shipping=True)
    assert product_save(product=contact).pk  # slow goods by SMS/e-mail are fine on 闲管家


def test_notification_templates_share_the_sandbox():
    with pytest.raises(ValidationError) as err:
        Template(event="shipment.delivered", subject="您的订单", body="{% debug %}{{ url }}").full_clean()
    assert "模板不允许使用标签：debug" in err.value.message_dict["body"]
    Template(event="shipment.delivered", subject="您的订单", body="提货：{{ url }}").full_clean()


def test_the_shared_sandbox_takes_plain_values_only(xshop):
    with pytest.raises(TypeError, match="plain values only"):
        render_template("{{ shop }}", {"shop": xshop})
    with pytest.raises(TemplateProblem) as problem:
        check_template("{{ shop.app_secret }}", {"order": "1"})
    assert problem.value.kind == "unknown_variable"


def test_switching_auto_ship_on_in_the_product_list_reports_the_rule_instead_of_crashing(shop):
    product = Product.objects.create(shop=shop, item_id="x3", title="卡", auto_ship=False)
    staff = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(staff)
    resp = client.post("/admin/orders/product/", {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": product.pk, "form-0-auto_ship": "on",
        "form-0-is_active": "on", "_save": "Save"})
    assert resp.status_code == 200
    assert "闲管家没有给买家发消息的接口" in resp.content.decode()
    assert not Product.objects.get(pk=product.pk).auto_ship
