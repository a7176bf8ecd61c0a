"""The staff's workplace: every admin page renders, PII is masked by permission, secrets never shown."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.services import buyer_upsert, shop_upsert
from orders.adapters.base import OrderSnapshot
from orders.models import Product
from orders.services import order_sync

pytestmark = pytest.mark.django_db
SECRET = "very-secret-app-secret-42"


@pytest.fixture
def data():
    shop, _ = shop_upsert(platform="sandbox", name="店", app_key="k", app_secret=SECRET, session_token="sess-token-99")
    Product.objects.create(shop=shop, item_id="i1", title="商品", stock=5, low_stock_threshold=2)
    buyer_upsert(platform="sandbox", platform_user_id="u1", nick="买家", phone="13800138000", email="a@b.cn")
    order = order_sync(shop=shop, snapshot=OrderSnapshot(
        platform_order_id="O1", raw_status="paid", target_status="paid", item_id="i1",
        receiver={"name": "张三", "phone": "13800138000", "address": "文一西路"})).order
    return shop, order


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_user("op", password="pw", is_staff=True)
    for codename in ("view_order", "view_buyeridentity", "view_product", "change_product"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client, user


ADMIN_MODELS = ["accounts/user", "accounts/shop", "accounts/buyeridentity", "orders/product", "orders/order",
                "orders/orderevent", "orders/stockmovement", "orders/orderinboxevent", "orders/sandboxorder",
                "orders/sandboxcall", "common/rejectedwebhook", "common/heartbeat"]


@pytest.mark.parametrize("path", ADMIN_MODELS)
def test_every_changelist_renders_and_never_shows_a_secret(admin_client, data, path):
    resp = admin_client.get(f"/admin/{path}/")
    assert resp.status_code == 200
    assert SECRET not in resp.content.decode() and "sess-token-99" not in resp.content.decode()


def test_change_pages_render(admin_client, data):
    shop, order = data
    for url in (reverse("admin:accounts_shop_change", args=[shop.pk]),
                reverse("admin:orders_order_change", args=[order.pk]), "/admin/", "/admin/accounts/shop/add/"):
        resp = admin_client.get(url)
        assert resp.status_code == 200, url
        assert SECRET not in resp.content.decode()


def test_pii_is_masked_for_staff_without_permission_and_clear_with_it(staff, data):
    client, user = staff
    _, order = data
    page = client.get("/admin/accounts/buyeridentity/").content.decode()
    assert "13800138000" not in page and "13*******00" in page
    detail = client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()
    assert "13800138000" not in detail and "张三" not in detail

    user.user_permissions.add(Permission.objects.get(codename="view_pii"))
    user = get_user_model().objects.get(pk=user.pk)
    client.force_login(user)
    assert "13800138000" in client.get("/admin/accounts/buyeridentity/").content.decode()
    assert "张三" in client.get(reverse("admin:orders_order_change", args=[order.pk])).content.decode()


def test_stock_adjust_action_logs_and_refuses_to_go_below_zero(admin_client, data):
    product = Product.objects.get()
    url = "/admin/orders/product/"
    form = {"action": "adjust_stock", "_selected_action": [product.pk], "apply": "1", "note": "盘点"}
    admin_client.post(url, {**form, "change": "-3"})
    product.refresh_from_db()
    assert product.stock == 2 and product.movements.count() == 1
    resp = admin_client.post(url, {**form, "change": "-9"}, follow=True)
    product.refresh_from_db()
    assert product.stock == 2 and "库存不足" in resp.content.decode()


def test_shop_secret_is_write_only(admin_client, data):
    shop, _ = data
    url = reverse("admin:accounts_shop_change", args=[shop.pk])
    admin_client.post(url, {"platform": "sandbox", "name": "新名字", "app_key": "k", "seller_id": "",
                            "is_active": "on", "new_app_secret": "", "new_session_token": ""})
    shop.refresh_from_db()
    assert shop.name == "新名字" and shop.app_secret == SECRET
    admin_client.post(url, {"platform": "sandbox", "name": "新名字", "app_key": "k", "seller_id": "",
                            "is_active": "on", "new_app_secret": "rotated", "new_session_token": ""})
    shop.refresh_from_db()
    assert shop.app_secret == "rotated"


def test_order_list_query_count_does_not_grow_with_rows(admin_client, data):
    from django.db import connection

    shop, _ = data

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get("/admin/orders/order/").status_code == 200
        return len(ctx)

    few = count()
    for i in range(40):
        order_sync(shop=shop, snapshot=OrderSnapshot(platform_order_id=f"X{i}", raw_status="paid",
                                                     target_status="paid"))
    assert count() == few


def test_inbox_replay_action(admin_client, data):
    from orders.models import OrderInboxEvent, SandboxOrder
    from orders.services import sandbox_order_simulate

    shop, _ = data
    event = sandbox_order_simulate(shop=shop, item_id="i1")
    SandboxOrder.objects.all().delete()  # the platform lost it: processing fails
    from common.inbox import INBOX_HANDLERS, process

    process(OrderInboxEvent, event.pk, INBOX_HANDLERS[OrderInboxEvent])
    assert OrderInboxEvent.objects.get(pk=event.pk).status == "failed"
    resp = admin_client.post("/admin/orders/orderinboxevent/", {"action": "replay", "_selected_action": [event.pk]},
                             follow=True)
    assert "失败" in resp.content.decode()


def test_seed_demo_runs_twice():
    call_command("seed_demo")
    call_command("seed_demo")
    assert get_user_model().objects.filter(username="admin", is_superuser=True).count() == 1
    assert Product.objects.filter(shop__app_key="sandbox-demo").count() == 3
