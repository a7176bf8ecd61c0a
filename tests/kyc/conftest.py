"""KYC fixtures: a fake Sumsub server, the fake open platform (TOP) and 闲管家 servers or the sandbox platform for
the order side, a product that needs KYC, paid orders made through the real sync path, and helpers to deliver
Sumsub's webhooks to our endpoint."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import BuyerIdentity
from accounts.services import shop_upsert
from kyc.models import Verification
from notifications.models import Channel, Subscription
from orders.adapters import get_adapter
from orders.adapters.sandbox import SandboxAdapter
from orders.models import Order, Product, SandboxOrder
from orders.services import order_sync
from tests.fakes.goofish import FakeGoofish
from tests.fakes.notify import Clock
from tests.fakes.sumsub import FakeSumsub, Webhook
from tests.fakes.xianguanjia import FakeXianguanjia

TOP_KEY, TOP_SECRET, TOP_SESSION = "top-kyc", "top-kyc-secret", "seller-session"
XGJ_KEY, XGJ_SECRET = "xgj-kyc", "xgj-kyc-secret"
LEVEL = "basic-kyc-level"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Rate-limit counters in a cache of this test's own (not the shared file cache)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"kyc-{uuid.uuid4().hex}"}}


@pytest.fixture(autouse=True)
def _kyc_settings(settings):
    settings.PUBLIC_BASE_URL = "https://shop.example"
    settings.SUMSUB_LEVEL_NAME = LEVEL
    settings.KYC_LINK_TTL_HOURS = 72
    settings.KYC_STATUS_CHECK_MINUTES = 30
    settings.KYC_EXPIRY_ACTION = "close"
    settings.SHIP_MAX_ATTEMPTS = 3


@pytest.fixture
def sumsub(settings):
    with FakeSumsub(levels=(LEVEL, "advanced-kyc-level")) as fake:
        settings.SUMSUB_BASE_URL = fake.url
        settings.SUMSUB_APP_TOKEN, settings.SUMSUB_SECRET_KEY = next(iter(fake.tokens.items()))
        settings.SUMSUB_WEBHOOK_SECRET = fake.webhook_secret
        settings.KYC_SANDBOX = False
        yield fake


@pytest.fixture
def no_sumsub(settings):
    """Sumsub not configured: the local sandbox stands in (development default)."""
    settings.SUMSUB_APP_TOKEN = settings.SUMSUB_SECRET_KEY = settings.SUMSUB_WEBHOOK_SECRET = ""
    settings.KYC_SANDBOX = True


@pytest.fixture
def top(settings):
    with FakeGoofish() as fake:
        fake.apps[TOP_KEY] = TOP_SECRET
        fake.sessions.add(TOP_SESSION)
        settings.GOOFISH_GATEWAY_URL = fake.url
        yield fake


@pytest.fixture
def top_shop(top):
    return shop_upsert(platform="goofish", name="开放平台店", app_key=TOP_KEY, app_secret=TOP_SECRET,
                       session_token=TOP_SESSION)[0]


@pytest.fixture
def xgj(settings):
    with FakeXianguanjia() as fake:
        fake.accounts[XGJ_KEY] = XGJ_SECRET
        settings.XIANGUANJIA_BASE_URL = fake.url
        yield fake


@pytest.fixture
def xgj_shop(xgj):
    return shop_upsert(platform="xianguanjia", name="闲管家店", app_key=XGJ_KEY, app_secret=XGJ_SECRET)[0]


@pytest.fixture
def sandbox_shop():
    return shop_upsert(platform="sandbox", name="沙箱店", app_key="sbx-kyc", app_secret="sbx-secret")[0]


def kyc_product(shop, item_id: str = "kyc-item", **kwargs) -> Product:
    """A virtual, auto-shipped, zero-delay product that needs KYC."""
    fields = {"title": "需实名商品", "kind": Product.Kind.VIRTUAL, "auto_ship": True, "ship_delay_min": 0,
              "ship_delay_max": 0, "needs_kyc": True, "delivery_template": "您的兑换码：ABC-123"}
    fields.update(kwargs)
    return Product.objects.create(shop=shop, item_id=item_id, **fields)


def top_paid(top, shop, oid: str, *, item_id: str = "kyc-item") -> Order:
    """A paid order on the fake open platform, brought in through the adapter and order_sync."""
    top.add_order(oid, status=2, item_id=item_id)
    snap = get_adapter(shop).fetch_order(oid)
    return order_sync(shop=shop, snapshot=snap).order


def xgj_paid(xgj, shop, order_no: str, *, item_id: str = "kyc-item") -> Order:
    xgj.add_order(order_no, status=12, item_id=item_id)
    snap = get_adapter(shop).fetch_order(order_no)
    return order_sync(shop=shop, snapshot=snap).order


def sandbox_paid(shop, order_no: str, *, item_id: str = "kyc-item", buyer_id: str = "") -> Order:
    o = SandboxOrder.objects.create(shop=shop, order_no=order_no, status="paid", item_id=item_id, title="需实名商品",
                                    buyer_id=buyer_id or f"buyer-{order_no}", modified_at=timezone.now())
    return order_sync(shop=shop, snapshot=SandboxAdapter.snapshot(o)).order


def buyer(platform: str, platform_user_id: str, **contacts) -> BuyerIdentity:
    return BuyerIdentity.objects.create(platform=platform, platform_user_id=platform_user_id, **contacts)


def deliver(hook: Webhook, client: Client | None = None):
    """POST a webhook to our endpoint exactly as Sumsub sends it."""
    return (client or Client()).post("/webhooks/sumsub/", data=hook.body, content_type="application/json",
                                      **hook.django_headers())


def verification_of(order: Order) -> Verification:
    return Verification.objects.select_related("order", "applicant").filter(order=order).latest("pk")


def open_session(v: Verification, client: Client | None = None):
    """The buyer's page asks for a WebSDK token (creating the applicant at Sumsub)."""
    return (client or Client()).post(f"/verify/{v.token}/token/")


@pytest.fixture
def mailbox(settings):
    """An e-mail channel subscribed to the buyer's KYC events: buyer messages land in mail.outbox."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel = Channel.objects.create(name="邮件", kind="email", config={"to": ["staff@example.com"]})
    for event in ("kyc.link_ready", "kyc.retry_requested", "kyc.reminder"):
        Subscription.objects.create(event=event, channel=channel)
    mail.outbox = []
    return mail.outbox


@pytest.fixture
def clock(monkeypatch):
    """Time travel. Starts five minutes ahead of the real clock, so that model defaults bound to the real
    timezone.now (e.g. an inbox event's first due time) are never later than the travelled now."""
    c = Clock(timezone.now().replace(microsecond=0) + timedelta(minutes=5))
    monkeypatch.setattr(timezone, "now", c)
    return c
