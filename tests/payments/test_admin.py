"""The payments admin as staff use it: the application form with pictures (type and size errors shown
plainly), "save and submit", actions, list filters, masked personal data, the QR code of a new trade, the
refund action, and the finance role."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from payments.fake_gateway import sample_png
from payments.models import FacetofaceApplication, Refund, Trade
from payments.services.onboarding import application_submit

from .conftest import application_fields, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(db):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-" + "x" * 10)
    c = Client(HTTP_ACCEPT_LANGUAGE="en")  # assertions read the English texts; the zh_Hans catalog is tested apart
    c.force_login(user)
    return c


@pytest.fixture
def finance_client(db):
    call_command("setup_roles", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    user = get_user_model().objects.create_user("cashier", password="pw-" + "x" * 10, is_staff=True)
    user.groups.add(Group.objects.get(name="finance"))
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(user)
    return c


def form_data(merchant, **overrides) -> dict:
    fields = application_fields()
    data = {k: v for k, v in fields.items() if k != "business_license_mobile"}
    data.update(merchant=merchant.pk, rate="0.38", sign_and_auth="on", new_business_license_mobile="13900139000")
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def messages_of(resp) -> list[str]:
    return [str(m) for m in resp.context["messages"]] if resp.context else []


def test_every_page_renders(fake, admin_client_, application, trade):
    application_submit(application_id=application.pk)
    for name in ("merchant", "facetofaceapplication", "trade", "refund", "alipaycall", "alipayinboxevent"):
        assert admin_client_.get(reverse(f"admin:payments_{name}_changelist")).status_code == 200, name
    for name in ("merchant", "facetofaceapplication", "trade"):
        assert admin_client_.get(reverse(f"admin:payments_{name}_add")).status_code == 200, name
    for name, pk in (("merchant", application.merchant_id), ("facetofaceapplication", application.pk),
                     ("trade", trade.pk)):
        assert admin_client_.get(reverse(f"admin:payments_{name}_change", args=[pk])).status_code == 200, name
    changelist = reverse("admin:payments_facetofaceapplication_changelist")
    page = admin_client_.get(changelist + "?status=submitted&attention=no")
    assert application.shop_name in page.content.decode()
    assert "文一西路店" not in admin_client_.get(
        reverse("admin:payments_facetofaceapplication_changelist") + "?attention=yes").content.decode()


@pytest.mark.django_db(transaction=True)   # the submission runs when the admin's transaction commits
def test_staff_fill_the_form_and_save_and_submit(fake, admin_client_, merchant):
    resp = admin_client_.post(reverse("admin:payments_facetofaceapplication_add"),
                              {**form_data(merchant), "_submit_to_alipay": "1"}, follow=True)
    app = FacetofaceApplication.objects.get()
    assert resp.status_code == 200 and app.status == "submitted" and app.business_license_mobile == "13900139000"
    assert "已提交 1 个申请。" in messages_of(resp)
    assert [c["method"] for c in fake.calls][-1] == "alipay.open.agent.confirm"
    page = admin_client_.get(reverse("admin:payments_facetofaceapplication_change", args=[app.pk])).content.decode()
    assert "alipay.open.agent.facetoface.sign" in page                   # the answers are on the application
    assert 'name="shop_name"' not in page                                # submitted: read-only


@pytest.mark.parametrize("picture, error", [
    (upload("inside.txt", b"x" * 10000, "text/plain"), "图片须为 png、bmp、gif、jpg 或 jpeg 格式"),
    (upload("inside.png", sample_png()[:3000]), "不能小于 5 KB"),
    (upload("inside.png", sample_png() + b"\x00" * (5 * 1024 * 1024)), "不能超过 5 MB"),
    (upload("inside.jpg", sample_png()), "文件内容不是 jpg 格式的图片"),
])
def test_pictures_are_checked_with_a_plain_error(fake, admin_client_, merchant, picture, error):
    resp = admin_client_.post(reverse("admin:payments_facetofaceapplication_add"),
                              form_data(merchant, shop_scene_pic=picture))
    assert resp.status_code == 200 and FacetofaceApplication.objects.count() == 0
    assert error in resp.content.decode()


def test_hostile_text_is_refused_by_the_form(fake, admin_client_, merchant):
    resp = admin_client_.post(reverse("admin:payments_facetofaceapplication_add"),
                              form_data(merchant, shop_name="bad\x00name", province_code="33000X"))
    assert resp.status_code == 200 and FacetofaceApplication.objects.count() == 0
    body = resp.content.decode()
    assert "不允许是用空字符串" in body and "请输入 6 位行政区划代码" in body  # Django's own Chinese, and ours


def test_actions_report_through_messages(fake, admin_client_, application):
    url = reverse("admin:payments_facetofaceapplication_changelist")
    resp = admin_client_.post(url, {"action": "query_now", "_selected_action": [application.pk]}, follow=True)
    assert any("无需查询" in m for m in messages_of(resp))
    resp = admin_client_.post(url, {"action": "submit", "_selected_action": [application.pk]}, follow=True)
    assert "已提交 1 个申请。" in messages_of(resp)
    resp = admin_client_.post(url, {"action": "query_now", "_selected_action": [application.pk]}, follow=True)
    assert "已查询 1 个申请。" in messages_of(resp)
    assert FacetofaceApplication.objects.get(pk=application.pk).status == "auditing"


def test_personal_data_is_masked_without_permission(fake, finance_client, admin_client_, application, onboarded):
    page = finance_client.get(reverse("admin:payments_facetofaceapplication_change", args=[application.pk]))
    body = page.content.decode()
    assert page.status_code == 200 and "13900139000" not in body and "*******9000" in body
    merchant_page = finance_client.get(reverse("admin:payments_merchant_change", args=[onboarded.pk])).content.decode()
    assert "13800138000" not in merchant_page and "boss@merchant.example" not in merchant_page
    assert onboarded.app_auth_token not in merchant_page and onboarded.app_refresh_token not in merchant_page
    clear = admin_client_.get(reverse("admin:payments_merchant_change", args=[onboarded.pk])).content.decode()
    assert "13800138000" in clear and onboarded.app_auth_token not in clear       # tokens: never in clear


def test_pictures_are_served_to_staff_only(fake, admin_client_, application):
    url = reverse("admin:payments_facetofaceapplication_picture", args=[application.pk, "shop_scene_pic"])
    resp = admin_client_.get(url)
    assert resp.status_code == 200 and b"".join(resp.streaming_content).startswith(b"\x89PNG")
    assert Client().get(url).status_code == 302                               # to the login page
    assert admin_client_.get(url.replace("shop_scene_pic", "merchant")).status_code == 404


def test_a_new_trade_shows_its_qr_code(fake, admin_client_, onboarded, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        resp = admin_client_.post(reverse("admin:payments_trade_add"),
                                  {"merchant": onboarded.pk, "subject": "会员卡", "total_amount": "88.00"})
    trade = Trade.objects.get()
    assert resp.status_code == 302 and trade.status == "waiting"
    body = admin_client_.get(reverse("admin:payments_trade_change", args=[trade.pk])).content.decode()
    assert re.search(r'<img src="data:image/svg\+xml', body) and trade.qr_code in body


def test_refund_action_with_reason(fake, finance_client, trade, django_capture_on_commit_callbacks):
    fake.pay(trade.out_trade_no, send=False)
    from payments.services.trades import trade_check

    trade_check(trade_id=trade.pk, force=True)
    url = reverse("admin:payments_trade_changelist")
    form = finance_client.post(url, {"action": "refund", "_selected_action": [trade.pk]})
    assert "可退金额：100.00 元。" in form.content.decode()
    resp = finance_client.post(url, {"action": "refund", "_selected_action": [trade.pk], "apply": "1",
                                     "amount": "25.50", "reason": "买家退货"}, follow=True)
    refund = Refund.objects.get()
    assert (refund.status, refund.amount, refund.reason, refund.requested_by_name) == (
        "succeeded", refund.amount, "买家退货", "cashier")
    assert str(refund.amount) == "25.50" and any("已退款" in m for m in messages_of(resp))
    too_much = finance_client.post(url, {"action": "refund", "_selected_action": [trade.pk], "apply": "1",
                                         "amount": "80", "reason": "x"}, follow=True)
    assert any("74.50" in m for m in messages_of(too_much)) and Refund.objects.count() == 1


def test_finance_role_uses_the_api_and_the_admin(fake, finance_client, application):
    assert finance_client.get(reverse("admin:payments_facetofaceapplication_changelist")).status_code == 200
    assert finance_client.get("/api/v1/facetoface/").status_code == 200
    resp = finance_client.post(f"/api/v1/facetoface/{application.pk}/query/")
    assert resp.status_code == 400 and "无需查询" in resp.json()["non_field_errors"][0]
