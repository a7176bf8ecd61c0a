"""The language of a page (common.i18n): Chinese by default whatever the browser says, English only by the
explicit switch, buyer pages always Chinese, text written for others always Chinese, times in Shanghai time."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.utils import timezone, translation

from accounts.services import shop_upsert
from common.models import Heartbeat
from notifications.models import Notification
from notifications.services import notify
from orders.models import BackfillRun, Order, OrderEvent, OrderStatus
from shipping.models import DeliveryView, Shipment, ShipmentStatus

pytestmark = pytest.mark.django_db

ENGLISH_BROWSER = {"HTTP_ACCEPT_LANGUAGE": "en-US,en;q=0.9"}
PAID_AT = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 2026-03-02 00:30 in Shanghai


@pytest.fixture(autouse=True)
def _back_to_the_default_language():
    yield
    translation.deactivate()


@pytest.fixture
def order():
    shop, _ = shop_upsert(platform="sandbox", name="语言店", app_key="lang", app_secret="s")
    return Order.objects.create(shop=shop, platform_order_id="L-1", item_title="会员激活码", amount=Decimal("9.90"),
                                status=OrderStatus.READY_TO_SHIP, paid_at=PAID_AT)


@pytest.fixture
def staff():
    user = get_user_model().objects.create_superuser("lang-admin", "lang@example.com", "pw-lang-123456")
    client = Client()
    client.force_login(user)
    return client


def html_lang(response) -> str:
    return re.search(r'<html[^>]*\blang="([^"]+)"', response.content.decode()).group(1)


def choose(client, language: str, next_url: str = "/admin/"):
    return client.post("/i18n/setlang/", {"language": language, "next": next_url})


# --- the staff's pages ---------------------------------------------------------------------------------------


def test_an_english_browser_gets_the_chinese_admin_not_a_mixed_page(staff, order):
    response = staff.get("/admin/orders/order/", **ENGLISH_BROWSER)
    html = response.content.decode()
    assert response.status_code == 200
    assert html_lang(response) == "zh-hans" and response["Content-Language"] == "zh-hans"
    # Django's own admin words and the project's labels are both Chinese.
    assert 'placeholder="输入以搜索"' in html and 'placeholder="Type to search"' not in html
    assert "待发货" in html and "Ready to ship" not in html


def test_a_form_error_page_is_titled_in_chinese(staff):
    response = staff.post("/admin/accounts/shop/add/", {"name": ""})
    title = response.content.decode().split("<title>", 1)[1].split("</title>", 1)[0]
    assert response.status_code == 200 and title.strip().startswith("错误： ")


def test_the_switch_turns_the_admin_english_and_back(staff, order):
    response = choose(staff, "en", "/admin/orders/order/")
    assert response.status_code == 302 and response["Location"] == "/admin/orders/order/"
    cookie = response.cookies["django_language"]
    assert cookie.value == "en" and cookie["httponly"] and cookie["samesite"] == "Lax"

    english = staff.get("/admin/orders/order/")
    html = english.content.decode()
    assert html_lang(english) == "en" and english["Content-Language"] == "en"
    assert 'placeholder="Type to search"' in html and "Ready to ship" in html and "待发货" not in html
    assert "Xianyu operations" in html

    choose(staff, "zh-hans")
    chinese = staff.get("/admin/orders/order/", **ENGLISH_BROWSER)
    assert html_lang(chinese) == "zh-hans" and "待发货" in chinese.content.decode()


def test_the_switch_ignores_unknown_languages_and_foreign_addresses(staff):
    response = choose(staff, "xx")
    assert response.status_code == 302 and "django_language" not in response.cookies
    response = choose(staff, "en", "https://evil.example/steal")
    assert response.status_code == 302 and response["Location"] == "/"
    response = choose(staff, "en\x00")
    assert response.status_code in (302, 400) and "django_language" not in response.cookies


@pytest.mark.parametrize("value", ["xx", "en\x00", "e" * 5000, "zh-hans'--", "\xe9n", "de"])
def test_a_hostile_language_cookie_gives_the_default_language(staff, value):
    staff.cookies["django_language"] = value
    response = staff.get("/admin/", **ENGLISH_BROWSER)
    assert response.status_code == 200
    assert html_lang(response) == "zh-hans"


def test_a_request_in_english_does_not_leave_its_language_behind(staff):
    choose(staff, "en")
    assert staff.get("/admin/").status_code == 200
    assert translation.get_language() == "zh-hans"


def test_the_switch_snippet_posts_every_language_back_to_the_same_page():
    request = RequestFactory().get("/admin/orders/order/?status=paid")
    with translation.override("en"):
        html = render_to_string("includes/language_switch.html", request=request)
    assert 'action="/i18n/setlang/"' in html and 'method="post"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'name="next" value="/admin/orders/order/?status=paid"' in html
    assert re.search(r'value="zh-hans" lang="zh-hans">简体中文</button>', html)
    assert re.search(r'value="en" lang="en" aria-current="true" disabled>English</button>', html)


# --- buyer pages ---------------------------------------------------------------------------------------------


def test_the_delivery_page_is_chinese_whatever_the_visitor_chose(order):
    shipment = Shipment.objects.create(order=order, due_at=timezone.now(), status=ShipmentStatus.SHIPPED,
                                       content="激活码：ABCD-1234", delivery_way=Shipment.Way.CONTACT)
    client = Client()
    client.cookies["django_language"] = "en"
    response = client.get(f"/delivery/{shipment.token}/", **ENGLISH_BROWSER)
    html = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Language"] == "zh-hans" and html_lang(response) == "zh-CN"
    assert "订单发货内容" in html and "激活码：ABCD-1234" in html


# --- text written for others, and times ----------------------------------------------------------------------


def test_text_written_for_others_stays_chinese_when_staff_work_in_english(order):
    with translation.override("en"):
        notification = notify("order.anomaly", shop=order.shop, order="L-1", status=OrderStatus.PAID.label,
                              target=OrderStatus.SHIPPED.label, platform_status="21")
    stored = Notification.objects.get(pk=notification.pk).context
    assert stored["status"] == "已付款" and stored["target"] == "已发货"


def test_records_name_statuses_and_times_as_staff_read_them(order):
    event = OrderEvent.objects.create(order=order, from_status=OrderStatus.PAID, to_status=OrderStatus.READY_TO_SHIP,
                                      actor=OrderEvent.Actor.SYSTEM)
    assert str(event) == f"{order.pk}: 已付款 → 待发货"
    assert str(OrderEvent(order=order, kind=OrderEvent.Kind.ANOMALY, actor="system")) == f"{order.pk}: 异常"
    run = BackfillRun.objects.create(shop=order.shop, since=PAID_AT, until=PAID_AT + timedelta(hours=1),
                                     status=BackfillRun.Status.SUCCEEDED)
    assert str(run) == f"{order.shop_id} 2026-03-02 00:30 – 2026-03-02 01:30 [成功]"
    assert str(Heartbeat(name="worker", seen_at=PAID_AT)) == "worker @ 2026-03-02 00:30:00"
    shipment = Shipment.objects.create(order=order, due_at=PAID_AT)
    view = DeliveryView.objects.create(shipment=shipment)
    DeliveryView.objects.filter(pk=view.pk).update(viewed_at=PAID_AT)
    view.refresh_from_db()
    assert str(view) == f"{shipment.pk} 2026-03-02 00:30:00"


def test_the_api_and_the_admin_show_shanghai_time(staff, order):
    api = staff.get(f"/api/v1/orders/{order.pk}/")
    assert api.json()["paid_at"] == "2026-03-02T00:30:00+08:00"
    page = staff.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "2026年3月2日 00:30" in page  # Django's Chinese date format, in Shanghai time (16:30 UTC the day before)
