"""Staff in a real browser (Playwright driving Debian's headless Chromium, as tests/kyc/test_browser.py) on
the orders and shipping admin: ship an order from the manual queue, import card codes from a file, import
products with one bad row and read its error, and a staff member without the PII permission sees masked
phone numbers. `ADMIN_SCREENSHOTS=1` also writes docs/admin-orders.png and docs/admin-order.png (1366 px
wide, Chinese, seed_demo data with sandbox orders run through the real pipeline)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts.models import BuyerIdentity
from accounts.services import shop_upsert
from orders.models import Order, Product
from shipping.models import CardCode, Shipment
from tests.browser import browser_page

pytestmark = pytest.mark.django_db(transaction=True)
PHONE = "13987654321"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@contextmanager
def admin_browser(live_server, user):
    """A 1366 px wide headless Chromium logged in as `user`. Playwright's sync API keeps an event loop in
    this thread, so the ORM is not used inside the block (the live server answers from its own threads)."""
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": session_cookie(user), "url": live_server.url}
    with browser_page(locale="zh-CN", width=1366, height=900, cookies=[cookie]) as page:
        yield page


@pytest.fixture
def shop():
    shop, _ = shop_upsert(platform="sandbox", name="浏览器测试店", app_key="browser-key", app_secret="browser-secret-1")
    return shop


@pytest.fixture
def boss():
    return get_user_model().objects.create_superuser("boss", password="pw-boss-1")


def test_ship_an_order_from_the_manual_queue(live_server, shop, boss):
    product = Product.objects.create(shop=shop, item_id="phys-1", title="实物周边", kind="physical")
    order = Order.objects.create(shop=shop, platform_order_id="M0001", product=product, item_id="phys-1",
                                 item_title="实物周边", amount=Decimal("19.90"), status="ready_to_ship",
                                 paid_at=timezone.now())
    from orders.models import SandboxOrder

    SandboxOrder.objects.create(shop=shop, order_no="M0001", item_id="phys-1", modified_at=timezone.now())
    shipment = Shipment.objects.create(order=order, due_at=timezone.now(), status="awaiting_staff",
                                       manual_reason="实物商品需填写真实运单号")
    with admin_browser(live_server, boss) as page:
        page.goto(f"{live_server.url}/admin/shipping/manualshipment/")
        assert page.get_by_text("M0001").first.is_visible()
        page.locator(f'a[href$="/{shipment.pk}/ship/"]').first.click()
        page.fill("input[name=logistics_company]", "顺丰速运")
        page.fill("input[name=express_code]", "shunfeng")
        page.fill("input[name=waybill_no]", "SF1234567890")
        page.get_by_role("button", name="提交发货").click()
        page.wait_for_url("**/admin/shipping/manualshipment/")
        assert "订单 M0001 已发货" in page.content()
    shipment.refresh_from_db()
    order.refresh_from_db()
    assert shipment.status == "shipped" and shipment.waybill_no == "SF1234567890"
    assert order.status == "shipped"


def test_import_card_codes_from_a_file(live_server, shop, boss, tmp_path):
    product = Product.objects.create(shop=shop, item_id="codes-1", title="激活码商品", stock=-1)
    codes = tmp_path / "codes.txt"
    codes.write_text("KEY-AAAA-0001\nKEY-AAAA-0002\nKEY-AAAA-0001\n\nKEY-AAAA-0003\n", encoding="utf-8")
    with admin_browser(live_server, boss) as page:
        page.goto(f"{live_server.url}/admin/shipping/cardcode/import/")
        page.select_option("select[name=product]", str(product.pk))
        page.set_input_files("input[name=file]", str(codes))
        page.get_by_role("button", name="导入", exact=True).click()
        page.wait_for_url("**/admin/shipping/cardcode/")
        assert "导入完成" in page.content()
    assert sorted(CardCode.objects.filter(product=product).values_list("code", flat=True)) == [
        "KEY-AAAA-0001", "KEY-AAAA-0002", "KEY-AAAA-0003"]


def test_import_products_shows_the_bad_row_error(live_server, shop, boss, tmp_path):
    csv_file = tmp_path / "products.csv"
    csv_file.write_text(
        "shop,item_id,title,kind,auto_ship,ship_delay_min,ship_delay_max,delivery_way,card_kind_id,"
        "staff_confirms_shipping,delivery_template,needs_kyc,low_stock_threshold,is_active\n"
        "浏览器测试店,imp-1,导入商品一,virtual,0,0,0,platform,,0,,0,0,1\n"
        "浏览器测试店,imp-2,导入商品二,virtual,0,30,5,platform,,0,,0,0,1\n", encoding="utf-8")
    with admin_browser(live_server, boss) as page:
        page.goto(f"{live_server.url}/admin/orders/product/import/")
        page.select_option("select[name=format]", label="csv")
        page.set_input_files("input[name=import_file]", str(csv_file))
        page.get_by_role("button", name="提交", exact=True).click()
        page.wait_for_load_state()
        error = page.get_by_text("最长发货延时不能短于最短发货延时")
        assert error.first.is_visible()
        assert page.get_by_text("导入商品二").first.is_visible()
    assert not Product.objects.filter(item_id__in=["imp-1", "imp-2"]).exists()


def test_staff_without_pii_permission_see_masked_phone_numbers(live_server, shop):
    buyer = BuyerIdentity.objects.create(platform="sandbox", platform_user_id="pii-1", nick="买家甲", phone=PHONE)
    order = Order.objects.create(shop=shop, platform_order_id="PII0001", buyer=buyer, amount=Decimal("5.00"),
                                 receiver={"name": "王五", "phone": PHONE, "address": "北京市海淀区"})
    operator = get_user_model().objects.create_user("operator", password="pw-operator-1", is_staff=True)
    operator.user_permissions.set(Permission.objects.filter(codename__in=["view_order", "view_buyeridentity"]))
    with admin_browser(live_server, operator) as page:
        for path in (f"/admin/orders/order/{order.pk}/change/", "/admin/accounts/buyeridentity/"):
            page.goto(live_server.url + path)
            text = page.locator("body").inner_text()
            assert PHONE not in text, path
            assert f"*{PHONE[-4:]}" in text, path  # shown, masked but for the last four digits


def test_the_order_list_fits_1366_px_and_the_screenshots_are_taken(live_server, boss, tmp_path):
    """The order list has no sideways scrolling at 1366 px. The pictures go to tmp_path, or to docs/ with
    ADMIN_SCREENSHOTS=1 (how docs/admin-orders.png and docs/admin-order.png are made)."""
    from django.core.management import call_command

    call_command("seed_demo")
    _screenshot_orders(live_server, boss, DOCS if os.environ.get("ADMIN_SCREENSHOTS") else tmp_path)


def _screenshot_orders(live_server, boss, folder: Path):
    from accounts.models import Shop
    from orders.services import sandbox_order_simulate

    shop = Shop.objects.get(app_key="sandbox-demo")
    items = list(Product.objects.filter(shop=shop).values_list("item_id", flat=True))
    for n in range(24):
        sandbox_order_simulate(shop=shop, item_id=items[n % len(items)], quantity=1 + n % 3, amount_fen=990 + 100 * n,
                               status="paid" if n % 5 else "pending_payment")
    first = Order.objects.order_by("-pk").first()
    with admin_browser(live_server, boss) as page:
        page.goto(f"{live_server.url}/admin/orders/order/")
        page.screenshot(path=str(folder / "admin-orders.png"), full_page=False)
        assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # no sideways scrolling
        if os.environ.get("ADMIN_SCREENSHOTS_EXTRA"):
            for name in ("shipment", "manualshipment", "cardcode"):
                page.goto(f"{live_server.url}/admin/shipping/{name}/")
                page.screenshot(path=f"/tmp/admin-{name}.png")
            page.goto(f"{live_server.url}/admin/orders/product/")
            page.screenshot(path="/tmp/admin-product.png")
        page.set_viewport_size({"width": 1366, "height": 2300})  # the whole page, without the sticky footer's seam
        page.goto(f"{live_server.url}/admin/orders/order/{first.pk}/change/")
        page.screenshot(path=str(folder / "admin-order.png"))


def test_close_an_order_with_its_transition_button(live_server, shop, boss):
    order = Order.objects.create(shop=shop, platform_order_id="T0001", amount=Decimal("3.00"), status="paid",
                                 paid_at=timezone.now())
    with admin_browser(live_server, boss) as page:
        page.goto(f"{live_server.url}/admin/orders/order/{order.pk}/change/")
        assert page.get_by_role("button", name="放行发货").is_visible()
        page.get_by_role("button", name="关闭订单").click()
        page.wait_for_load_state()
        assert "关闭订单" in page.locator("body").inner_text()
        assert page.get_by_text("已关闭").first.is_visible()
    order.refresh_from_db()
    assert order.status == "closed"
    event = order.events.latest("pk")
    assert (event.to_status, event.actor, event.user_id) == ("closed", "staff", boss.pk)
