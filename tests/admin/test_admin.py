"""The staff's workplace (DESIGN.md §1, §6): every admin page renders, personal data is masked without the
PII permission, credentials are never shown in clear, records cannot be deleted, actions report through
admin messages and do what they say."""

from __future__ import annotations

from decimal import Decimal

import pytest
from axes.models import AccessFailureLog
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import connection
from django.db.models import ProtectedError
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, SolarSchedule

from accounts.models import BuyerIdentity, Shop
from accounts.services import shop_upsert
from common.fields import mask_secret
from common.models import Heartbeat, RejectedWebhook
from kyc.models import BuyerMessage, KycApplicant, KycPolicy, SumsubInboxEvent, Verification, VerificationEvent
from notifications.models import Channel, Delivery, Notification, Subscription, Template
from orders.models import (
    Order,
    OrderEvent,
    OrderInboxEvent,
    Product,
    SandboxCall,
    SandboxMessage,
    SandboxOrder,
    StockMovement,
)
from payments.models import AlipayCall, AlipayInboxEvent, FacetofaceApplication, Merchant, Refund, Trade
from shipping.models import CardCode, DeliveryView, Handover, Shipment

pytestmark = pytest.mark.django_db

APP_SECRET = "app-secret-7f3a9c1d2e"
SESSION = "session-token-5b8e4f0a"
ACCESS_TOKEN = "buyer-access-token-9d2c"
CHANNEL_SECRET = "SEC-channel-secret-4e1a"
CARD_CODE = "VIP-CARD-8842-XQ"
CONTENT = f"您的激活码：{CARD_CODE}"
WRONG_PASSWORD = "typed-wrong-password-31"
PHONE = "13912345678"
EMAIL = "buyer.zhang@example.cn"
BUYER_IP = "198.51.100.77"
RECEIVER = {"name": "张小明", "phone": PHONE, "address": "浙江省杭州市余杭区文一西路969号"}
CLEAR_SECRETS = (APP_SECRET, SESSION, ACCESS_TOKEN, CHANNEL_SECRET, WRONG_PASSWORD)
# What staff without accounts.view_pii must never see, on any page (plus each shipment's delivery token).
CLEAR_PERSONAL = (CARD_CODE, PHONE, EMAIL, "张小明", "文一西路", BUYER_IP)


def make_order(shop, product, buyer, n: int, **extra) -> Order:
    return Order.objects.create(shop=shop, platform_order_id=f"P{n:05d}", buyer=buyer, product=product,
                                item_id=product.item_id, item_title=product.title, quantity=1,
                                amount=Decimal("9.90"), receiver=RECEIVER, **extra)


@pytest.fixture
def data():
    """At least one row of every model the admin shows, each carrying the secrets and personal data its
    page could leak."""
    shop, _ = shop_upsert(platform="sandbox", name="测试沙箱店", app_key="sbx-key", app_secret=APP_SECRET,
                          session_token=SESSION)
    product = Product.objects.create(shop=shop, item_id="item-1", title="测试商品", stock=5, low_stock_threshold=2)
    buyer = BuyerIdentity.objects.create(platform="sandbox", platform_user_id="buyer-1", nick="小明",
                                         phone=PHONE, email=EMAIL, access_token=ACCESS_TOKEN)
    order = make_order(shop, product, buyer, 1, status="paid", paid_at=timezone.now())
    OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.TRANSITION, from_status="pending_payment",
                              to_status="paid", actor=OrderEvent.Actor.PLATFORM, message="平台状态 paid",
                              data={"platform_status": "paid"})
    StockMovement.objects.create(product=product, reason=StockMovement.Reason.RESTOCK, change=5, remaining=5)
    OrderInboxEvent.objects.create(source="sandbox", key="k-1", topic="order", shop=shop, platform_order_id="P00001",
                                   body=f'{{"order_no": "P00001", "status": "paid", "receiver_phone": "{PHONE}"}}')
    SandboxOrder.objects.create(shop=shop, order_no="P00001", item_id="item-1", modified_at=timezone.now())
    SandboxCall.objects.create(shop=shop, method="ship", params={"order_no": "P00001", "content": CONTENT},
                               response={"status": "shipped"})
    RejectedWebhook.objects.create(source="xianguanjia", reason="bad signature", remote_addr="10.0.0.1",
                                   body_excerpt=f'{{"mobile": "{PHONE}"}}', body_size=8)
    Heartbeat.objects.create(name="worker", seen_at=timezone.now())
    sandbox_order = SandboxOrder.objects.get(shop=shop, order_no="P00001")
    SandboxMessage.objects.create(order=sandbox_order, text=CONTENT)  # what the sandbox buyer read

    code = CardCode.objects.create(product=product, code=CARD_CODE, code_hash="h-1", status="reserved", order=order)
    shipment = Shipment.objects.create(order=order, due_at=timezone.now(), content=CONTENT)
    DeliveryView.objects.create(shipment=shipment, ip=BUYER_IP, user_agent="Mozilla/5.0")
    Handover.objects.create(shipment=shipment, attempt=1, channel="sms", carried="link", status="delivered",
                            destination_hint="手机尾号 5678", answer=f"code=OK content={CONTENT}")
    queued = make_order(shop, product, buyer, 99, status="paid", paid_at=timezone.now())
    Shipment.objects.create(order=queued, due_at=timezone.now(), status="awaiting_staff", manual_reason="人工")

    channel = Channel.objects.create(name="短信", kind="sms", secret=CHANNEL_SECRET,
                                     config={"access_key_id": "LTAI-x", "sign_name": "店"})
    Subscription.objects.create(event="kyc.link_ready", channel=channel)
    Template.objects.create(event="order.paid", subject="订单 {{ order }}", body="订单 {{ order }} 已付款")
    note = Notification.objects.create(event="kyc.link_ready", shop=shop, recipient=PHONE,
                                       context={"order": "P00001", "url": shipment.delivery_url})
    Delivery.objects.create(notification=note, channel=channel, status="sent",
                            subject="请完成实名认证", text=f"请打开 {shipment.delivery_url}，号码 {PHONE}")

    # KYC: a verification with its log, the buyer's applicant, the product's policy, a Sumsub message and the
    # link sent through the platform's chat.
    policy = KycPolicy.objects.create(product=product, level_name="basic-kyc-level")
    applicant = KycApplicant.objects.create(buyer=buyer, external_user_id="xo-admin-sweep", applicant_id="app-1")
    verification = Verification.objects.create(order=order, applicant=applicant, level_name=policy.level_name,
                                               expires_at=timezone.now() + timezone.timedelta(hours=72),
                                               moderation_comment="证件照片不清晰")
    VerificationEvent.objects.create(verification=verification, kind="created", actor="system", message="创建")
    SumsubInboxEvent.objects.create(source="sumsub", key="sha256:sweep", topic="applicantPending",
                                    applicant_id="app-1", body='{"type": "applicantPending"}')
    BuyerMessage.objects.create(verification=verification, kind="link", text=f"请完成认证：{verification.url}")

    # Payments: a merchant with its tokens and contacts, an application, the Alipay call log, a trade, a refund
    # and a stored notification.
    merchant = Merchant.objects.create(name="杭州小店", alipay_account="boss@merchant.example", contact_name="李经理",
                                       contact_mobile=PHONE, contact_email=EMAIL, app_auth_token=ACCESS_TOKEN,
                                       app_refresh_token=SESSION, alipay_user_id="2088000000000001")
    application = FacetofaceApplication.objects.create(
        merchant=merchant, merchant_name="杭州小店", shop_name="古墩路店", province_code="330000",
        city_code="330100", district_code="330110", shop_address="古墩路88号", mcc_code="B0001",
        business_license_mobile=PHONE)
    AlipayCall.objects.create(method="alipay.open.agent.order.query", outcome="ok", code="10000",
                              request={"batch_no": "B1"}, answer={"order_status": "MERCHANT_AUDITING"},
                              merchant=merchant, application=application)
    trade = Trade.objects.create(merchant=merchant, out_trade_no="T-1", subject="会员卡", total_amount=Decimal("9.90"))
    Refund.objects.create(trade=trade, out_request_no="R-1", amount=Decimal("1.00"), reason="买家申请")
    AlipayInboxEvent.objects.create(source="alipay", key="notify-1", topic="trade_status_sync",
                                    body="notify_id=notify-1&out_trade_no=T-1&buyer_logon_id=" + PHONE)

    return {"shop": shop, "product": product, "buyer": buyer, "order": order, "shipment": shipment, "code": code,
            "queued": queued}


def staff_client(*extra_perms: str) -> tuple[Client, object]:
    """A staff member who may view every model the admin shows (plus `extra_perms`), without PII access."""
    user = get_user_model().objects.create_user("operator", password="pw-operator-1", is_staff=True)
    codenames = [f"view_{model._meta.model_name}" for model in admin.site._registry] + list(extra_perms)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def superuser_client():
    user = get_user_model().objects.create_superuser("boss", password="pw-boss-1")
    client = Client()
    client.force_login(user)
    return client


def assert_no_clear_secret(html: str, where: str):
    for secret in CLEAR_SECRETS:
        assert secret not in html, f"{secret!r} shown in clear on {where}"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- every page renders ----------------------------------------------------------------------------


@pytest.fixture
def every_model(data):
    """`data`, and rows for the models only the sweep looks at: roles, login records, beat schedules."""
    call_command("setup_roles")
    get_user_model().objects.create_superuser("root", password="pw-root-12345")
    # A failed and a successful login through the real form (django-axes records both).
    Client(REMOTE_ADDR="203.0.113.5").post("/admin/login/", {"username": "root", "password": WRONG_PASSWORD})
    Client(REMOTE_ADDR="203.0.113.6").post("/admin/login/", {"username": "root", "password": "pw-root-12345"})
    AccessFailureLog.objects.create(username="root", ip_address="203.0.113.5", user_agent="curl",
                                    path_info="/admin/login/", locked_out=False)
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=30.0, longitude=120.0)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    # The operation log (admin history): one change by a staff member.
    LogEntry.objects.create(user=get_user_model().objects.get(username="root"), action_flag=CHANGE,
                            content_type=ContentType.objects.get_for_model(Shop), object_id=str(data["shop"].pk),
                            object_repr=data["shop"].name, change_message='[{"changed": {"fields": ["Name"]}}]')
    return data


def admin_pages(user) -> list[str]:
    """The index, and for every model the admin shows: its list and the change page of one of its rows."""
    request = RequestFactory().get("/admin/")
    request.user = user
    urls = ["/admin/"]
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(request):
            continue  # administrators' pages (the beat scheduler, the operation log): refused to others
        info = model._meta.app_label, model._meta.model_name
        obj = model_admin.get_queryset(request).order_by("pk").first()
        assert obj is not None, f"the sweep needs a {model._meta.label} row: add one to the `data` fixture"
        urls += [reverse("admin:{}_{}_changelist".format(*info)),
                 reverse("admin:{}_{}_change".format(*info), args=[obj.pk])]
    return urls


@pytest.mark.parametrize("who", ["superuser", "staff"])
def test_every_admin_page_renders_without_secrets_and_masks_personal_data(every_model, superuser_client, who):
    data = every_model
    if who == "superuser":
        client, user = superuser_client, get_user_model().objects.get(username="boss")
        forbidden = CLEAR_SECRETS  # a superuser may see personal data, never a credential
    else:
        client, user = staff_client()
        tokens = tuple(Shipment.objects.values_list("token", flat=True))
        forbidden = (*CLEAR_SECRETS, *CLEAR_PERSONAL, *tokens)
    urls = admin_pages(user)
    admin_only = 0 if who == "superuser" else len([m for m in admin.site._registry
                                                     if m._meta.app_label in ("django_celery_beat", "admin")])
    assert admin_only in (0, 6)
    assert len(urls) == 1 + 2 * (len(admin.site._registry) - admin_only)
    leaks = []
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        html = resp.content.decode()
        leaks += [(url, value) for value in forbidden if value in html]
    assert leaks == [], leaks
    if who == "superuser":  # the same pages do show personal data to a superuser: the sweep can see a leak
        order = client.get(reverse("admin:orders_order_change", args=[data["order"].pk])).content.decode()
        code = client.get(reverse("admin:shipping_cardcode_change", args=[data["code"].pk])).content.decode()
        assert PHONE in order and CARD_CODE in code


def test_add_pages_render_where_adding_is_allowed(superuser_client, data):
    for name in ("accounts_shop_add", "orders_product_add", "accounts_user_add"):
        resp = superuser_client.get(reverse(f"admin:{name}"))
        assert resp.status_code == 200, name
    for name in ("orders_order_add", "accounts_buyeridentity_add", "orders_orderevent_add",
                 "orders_orderinboxevent_add", "orders_sandboxcall_add", "common_rejectedwebhook_add"):
        assert superuser_client.get(reverse(f"admin:{name}")).status_code == 403, name


def test_logs_cannot_be_changed_or_deleted(superuser_client, data):
    event = OrderEvent.objects.first()
    url = reverse("admin:orders_orderevent_change", args=[event.pk])
    assert superuser_client.post(url, {"message": "改写"}).status_code == 403
    assert superuser_client.post(reverse("admin:orders_orderevent_delete", args=[event.pk]),
                                 {"post": "yes"}).status_code == 403
    assert OrderEvent.objects.get(pk=event.pk).message == "平台状态 paid"


def test_records_cannot_be_deleted_by_anyone(superuser_client, data):
    """Orders, their log, inbox events and shipments are records: no delete page, no bulk delete, and an
    order with a history cannot be deleted in code either (nothing cascades its log away)."""
    order, shipment = data["order"], data["shipment"]
    records = {
        "orders_order": order.pk, "orders_orderevent": OrderEvent.objects.first().pk,
        "orders_orderinboxevent": OrderInboxEvent.objects.first().pk, "shipping_shipment": shipment.pk,
        "shipping_manualshipment": Shipment.objects.get(order=data["queued"]).pk,
    }
    for name, pk in records.items():
        change = superuser_client.get(reverse(f"admin:{name}_change", args=[pk])).content.decode()
        assert reverse(f"admin:{name}_delete", args=[pk]) not in change, name
        assert superuser_client.post(reverse(f"admin:{name}_delete", args=[pk]), {"post": "yes"}).status_code == 403
        listing = superuser_client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert 'value="delete_selected"' not in listing, name
        resp = superuser_client.post(reverse(f"admin:{name}_changelist"),
                                     {"action": "delete_selected", "_selected_action": [pk], "post": "yes"})
        assert resp.status_code in (200, 302)
    assert Order.objects.filter(pk=order.pk).exists() and Shipment.objects.filter(pk=shipment.pk).exists()
    assert OrderEvent.objects.filter(order=order).count() == 1 and OrderInboxEvent.objects.count() == 1

    with pytest.raises(ProtectedError):
        order.delete()
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_sandbox_pages_are_marked(superuser_client, data):
    for url in (reverse("admin:orders_sandboxorder_changelist"), reverse("admin:orders_sandboxcall_changelist"),
                reverse("admin:accounts_shop_changelist")):
        assert "沙箱" in superuser_client.get(url).content.decode()
    page = superuser_client.get(reverse("admin:orders_sandboxorder_changelist")).content.decode()
    assert "不是真实平台订单" in page and "订单号" in page


# --- PII and secrets -------------------------------------------------------------------------------


def test_pii_is_masked_for_staff_without_the_permission_and_clear_with_it(data):
    client, user = staff_client()
    buyer, order = data["buyer"], data["order"]
    pages = [reverse("admin:accounts_buyeridentity_changelist"),
             reverse("admin:accounts_buyeridentity_change", args=[buyer.pk]),
             reverse("admin:orders_order_change", args=[order.pk])]
    for url in pages:
        html = client.get(url).content.decode()
        assert PHONE not in html and EMAIL not in html and "张小明" not in html, url
        assert "文一西路" not in html
    # A phone keeps its last 4 digits (to match a buyer who calls); nothing else keeps a character.
    assert "*******5678" in client.get(pages[0]).content.decode()
    assert "*******5678" in client.get(pages[2]).content.decode()  # the receiver's phone, masked

    user.user_permissions.add(Permission.objects.get(codename="view_pii", content_type__app_label="accounts"))
    client.force_login(get_user_model().objects.get(pk=user.pk))
    assert PHONE in client.get(pages[0]).content.decode()
    detail = client.get(pages[1]).content.decode()
    assert PHONE in detail and EMAIL in detail
    assert ACCESS_TOKEN not in detail  # a credential stays hidden even with the PII permission
    order_page = client.get(pages[2]).content.decode()
    assert "张小明" in order_page and "文一西路" in order_page


def test_superuser_sees_pii_but_never_credentials(superuser_client, data):
    html = superuser_client.get(reverse("admin:accounts_buyeridentity_change", args=[data["buyer"].pk])).content
    assert PHONE in html.decode()
    assert_no_clear_secret(html.decode(), "buyer page")


def test_credentials_show_no_character_only_whether_they_are_set(superuser_client, data):
    """Not the first or last characters either: a secret is "set (hidden)" or "(not set)"."""
    Shop.objects.filter(pk=data["shop"].pk).update(session_token="")
    pages = {
        reverse("admin:accounts_shop_changelist"): APP_SECRET,
        reverse("admin:accounts_shop_change", args=[data["shop"].pk]): APP_SECRET,
        reverse("admin:notifications_channel_changelist"): CHANNEL_SECRET,
        reverse("admin:notifications_channel_change", args=[Channel.objects.get().pk]): CHANNEL_SECRET,
        reverse("admin:accounts_buyeridentity_change", args=[data["buyer"].pk]): ACCESS_TOKEN,
    }
    for url, secret in pages.items():
        html = superuser_client.get(url).content.decode()
        assert mask_secret(secret) in html, url
        for part in (secret[:2] + "*", "*" + secret[-2:], secret[-6:]):  # ends, as a partial mask shows them
            assert part not in html, (url, part)
    shop_page = superuser_client.get(reverse("admin:accounts_shop_change", args=[data["shop"].pk])).content
    assert mask_secret("") in shop_page.decode()  # the emptied session


def shop_form(shop: Shop, **extra) -> dict:
    return {"platform": shop.platform, "name": shop.name, "app_key": shop.app_key, "seller_id": "",
            "is_active": "on", "session_expires_at_0": "", "session_expires_at_1": "", "new_app_secret": "",
            "new_session_token": "", **extra}


def test_shop_credentials_are_write_only(superuser_client, data):
    shop = data["shop"]
    url = reverse("admin:accounts_shop_change", args=[shop.pk])
    html = superuser_client.get(url).content.decode()
    assert "（新值，留空不修改）" in html and 'name="new_app_secret"' in html
    assert 'name="app_secret"' not in html

    resp = superuser_client.post(url, shop_form(shop, name="改名的店"))
    assert resp.status_code == 302
    shop.refresh_from_db()
    assert shop.name == "改名的店" and shop.app_secret == APP_SECRET and shop.session_token == SESSION

    resp = superuser_client.post(url, shop_form(shop, new_app_secret="rotated-secret-value-1"))
    assert resp.status_code == 302
    shop.refresh_from_db()
    assert shop.app_secret == "rotated-secret-value-1" and shop.session_token == SESSION

    # A form shown again with an error does not echo the typed secret back.
    resp = superuser_client.post(url, shop_form(shop, name="", new_app_secret="typed-but-invalid-secret"))
    assert resp.status_code == 200
    assert "typed-but-invalid-secret" not in resp.content.decode()
    history = superuser_client.get(reverse("admin:accounts_shop_history", args=[shop.pk])).content.decode()
    assert "rotated-secret-value-1" not in history and APP_SECRET not in history


def test_a_new_shop_needs_a_secret(superuser_client):
    url = reverse("admin:accounts_shop_add")
    form = {"platform": "sandbox", "name": "新店", "app_key": "new-key", "seller_id": "", "is_active": "on",
            "session_expires_at_0": "", "session_expires_at_1": "", "new_session_token": ""}
    resp = superuser_client.post(url, {**form, "new_app_secret": ""})
    assert resp.status_code == 200 and not Shop.objects.filter(app_key="new-key").exists()
    resp = superuser_client.post(url, {**form, "new_app_secret": "brand-new-secret-1"})
    assert resp.status_code == 302
    assert Shop.objects.get(app_key="new-key").app_secret == "brand-new-secret-1"


# --- actions ---------------------------------------------------------------------------------------


def test_stock_adjust_action_logs_a_movement_and_refuses_to_go_below_zero(superuser_client, data):
    product = data["product"]
    url = reverse("admin:orders_product_changelist")
    selected = {"action": "adjust_stock", "_selected_action": [product.pk]}

    page = superuser_client.post(url, selected)  # the intermediate form
    assert page.status_code == 200 and 'name="change"' in page.content.decode()

    resp = superuser_client.post(url, {**selected, "apply": "1", "change": "-3", "note": "盘点"}, follow=True)
    product.refresh_from_db()
    assert product.stock == 2
    movement = StockMovement.objects.filter(product=product).latest("pk")
    assert (movement.change, movement.remaining, movement.note, movement.reason) == (-3, 2, "盘点", "adjust")
    assert any("已调整 1 个商品" in m for m in messages_of(resp))

    resp = superuser_client.post(url, {**selected, "apply": "1", "change": "-9", "note": ""}, follow=True)
    product.refresh_from_db()
    assert product.stock == 2 and StockMovement.objects.filter(product=product).count() == 2
    assert any("库存不足" in m for m in messages_of(resp))

    resp = superuser_client.post(url, {**selected, "apply": "1", "change": "4", "note": "补货"}, follow=True)
    product.refresh_from_db()
    assert product.stock == 6 and StockMovement.objects.filter(product=product).latest("pk").reason == "restock"


def test_stock_column_shows_unlimited_and_low_stock(superuser_client, data):
    Product.objects.create(shop=data["shop"], item_id="item-2", title="不限量商品", stock=-1)
    Product.objects.filter(pk=data["product"].pk).update(stock=1)
    html = superuser_client.get(reverse("admin:orders_product_changelist")).content.decode()
    assert "不限" in html and 'color:#c0392b;white-space:nowrap">1<' in html


def test_staff_without_change_permission_cannot_adjust_stock(data):
    client, _user = staff_client()
    product = data["product"]
    client.post(reverse("admin:orders_product_changelist"),
                {"action": "adjust_stock", "_selected_action": [product.pk], "apply": "1", "change": "-1"})
    product.refresh_from_db()
    assert product.stock == 5


def test_inbox_replay_resets_the_events_and_queues_them(superuser_client, data,
                                                        django_capture_on_commit_callbacks):
    event = OrderInboxEvent.objects.create(source="sandbox", key="k-orphan", topic="order", body="{}",
                                           status="failed", attempts=8, last_error="boom")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        resp = superuser_client.post(reverse("admin:orders_orderinboxevent_changelist"),
                                     {"action": "replay_selected", "_selected_action": [event.pk]}, follow=True)
    assert len(callbacks) == 1  # the nudge leaves only once the reset is committed
    assert any("已重新排队 1 条消息" in m for m in messages_of(resp))
    event.refresh_from_db()
    # Celery runs eagerly in tests: the real task processed it (no shop: ignored, not failed).
    assert event.status == "ignored" and event.attempts == 9 and event.result == "no shop"


def test_inbox_replay_leaves_an_event_a_worker_holds(superuser_client, data):
    event = OrderInboxEvent.objects.create(source="sandbox", key="k-busy", body="{}", status="processing",
                                           attempts=1, next_attempt_at=timezone.now() + timezone.timedelta(minutes=5))
    resp = superuser_client.post(reverse("admin:orders_orderinboxevent_changelist"),
                                 {"action": "replay_selected", "_selected_action": [event.pk]}, follow=True)
    assert any("正在处理中" in m for m in messages_of(resp))
    event.refresh_from_db()
    assert event.status == "processing" and event.attempts == 1


def test_refresh_action_syncs_and_reports_platform_errors(superuser_client, data):
    shop, product, buyer = data["shop"], data["product"], data["buyer"]
    # Closed on the (sandbox) platform while we still hold it as paid: a refresh must close it here.
    moved = make_order(shop, product, buyer, 3, status="paid", paid_at=timezone.now())
    SandboxOrder.objects.create(shop=shop, order_no="P00003", item_id="item-1", status="closed",
                                modified_at=timezone.now())
    lost = make_order(shop, product, buyer, 4, status="paid")  # the sandbox platform does not know this one
    resp = superuser_client.post(reverse("admin:orders_order_changelist"),
                                 {"action": "refresh_from_platform", "_selected_action": [moved.pk, lost.pk]},
                                 follow=True)
    assert resp.status_code == 200
    msgs = messages_of(resp)
    assert any("P00004 同步失败" in m for m in msgs), msgs
    assert any("已同步 1 个订单" in m for m in msgs), msgs
    moved.refresh_from_db()
    lost.refresh_from_db()
    assert (moved.status, moved.platform_status) == ("closed", "closed") and moved.closed_at is not None
    event = OrderEvent.objects.filter(order=moved).latest("pk")
    assert (event.from_status, event.to_status, event.actor, event.user.username) == (
        "paid", "closed", "staff", "boss")
    assert lost.status == "paid" and not OrderEvent.objects.filter(order=lost).exists()


# --- performance -----------------------------------------------------------------------------------


def test_order_changelist_query_count_does_not_grow_with_rows(superuser_client, data):
    shop, product, buyer = data["shop"], data["product"], data["buyer"]
    url = reverse("admin:orders_order_changelist")

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            resp = superuser_client.get(url)
        assert resp.status_code == 200
        return len(ctx.captured_queries)

    for n in range(2, 6):
        make_order(shop, product, buyer, n)
    few = queries()
    for n in range(6, 51):
        make_order(shop, product, buyer, n)
    assert Order.objects.count() == 51  # and the queued one (P00099)
    many = queries()
    assert many <= few, (few, many)


# --- demo data -------------------------------------------------------------------------------------


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "/admin/" in out and "admin123456" in out
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password("admin123456")
    shop = Shop.objects.get(platform="sandbox", app_key="sandbox-demo")
    products = {p.item_id: p for p in Product.objects.filter(shop=shop)}
    assert len(products) == 4 and Shop.objects.filter(app_key="sandbox-demo").count() == 1
    instant, delayed, physical = products["demo-instant"], products["demo-delayed"], products["demo-physical"]
    assert instant.auto_ship and instant.ship_delay_max == 0 and instant.delivery_template
    assert delayed.auto_ship and (delayed.ship_delay_min, delayed.ship_delay_max) == (5, 30)
    assert physical.kind == "physical" and not physical.auto_ship
    assert products["demo-kyc"].needs_kyc and products["demo-kyc"].auto_ship
    from django.contrib.auth.models import Group

    assert Group.objects.filter(name="operator").exists()


def test_seed_demo_takes_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "another-pass-123")
    call_command("seed_demo")
    assert get_user_model().objects.get(username="admin").check_password("another-pass-123")
