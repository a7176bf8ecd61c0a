"""Payments fixtures: the fake Alipay gateway (real RSA2 keys made for this session) wired into settings, a
clock for time travel, a merchant, an application with pictures, notification channels that record what
reached staff and merchants."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from notifications.models import Channel, Delivery, Subscription
from notifications.services import delivery_send
from payments.fake_gateway import sample_png
from payments.models import Merchant
from payments.services.onboarding import application_create
from tests.fakes.alipay import APP_ID, FakeAlipay, keys
from tests.fakes.notify import Clock

MERCHANT_EMAIL = "boss@merchant.example"
STAFF_EMAIL = "ops@example.com"


@pytest.fixture
def clock(monkeypatch):
    """Time travel: django.utils.timezone.now returns this clock's time (services, auto_now, the fake)."""
    c = Clock()
    monkeypatch.setattr(timezone, "now", c)
    return c


def configure(settings, fake) -> None:
    k = keys()
    settings.ALIPAY_APP_ID = APP_ID
    settings.ALIPAY_GATEWAY_URL = fake.gateway_url
    settings.ALIPAY_APP_PRIVATE_KEY = k["app_private"]
    settings.ALIPAY_PUBLIC_KEY = k["alipay_public"]
    settings.ALIPAY_NOTIFY_URL = "https://ops.example/webhooks/alipay/"
    # The schedule the tests assert (whatever a local .env says, e.g. after `fake_alipay --write-dotenv`).
    settings.ALIPAY_POLL_FIRST_DELAY_SECONDS, settings.ALIPAY_POLL_INTERVAL_SECONDS = 300, 4 * 3600
    settings.ALIPAY_AUDIT_OVERDUE_HOURS, settings.ALIPAY_BATCH_TTL_SECONDS = 24, 3600
    settings.ALIPAY_SUBMIT_MAX_BATCHES, settings.ALIPAY_REFUND_MAX_ATTEMPTS = 3, 8
    settings.ALIPAY_TRADE_TIMEOUT_MINUTES, settings.ALIPAY_TRADE_QUERY_DELAY_SECONDS = 120, 300
    settings.ALIPAY_TOKEN_REFRESH_BEFORE_HOURS = 7 * 24


@pytest.fixture
def fake(settings, tmp_path):
    with FakeAlipay(clock=lambda: timezone.now()) as server:
        configure(settings, server)
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        yield server


@pytest.fixture
def merchant(db):
    return Merchant.objects.create(name="杭州小店", alipay_account="owner@merchant.example", contact_name="张三",
                                   contact_mobile="13800138000", contact_email=MERCHANT_EMAIL)


def upload(name: str = "pic.png", data: bytes | None = None, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, sample_png() if data is None else data, content_type=content_type)


def application_fields(**overrides) -> dict:
    fields = dict(shop_name="文一西路店", province_code="330000", city_code="330100", district_code="330110",
                  shop_address="文一西路 969 号", mcc_code="A0002_B0201", rate=Decimal("0.38"), sign_and_auth=True,
                  business_license_no="91330100MA2CXXXX0X", business_license_mobile="13900139000",
                  business_license_pic=upload("licence.png"), shop_scene_pic=upload("inside.png"),
                  shop_sign_board_pic=upload("sign.png"))
    fields.update(overrides)
    return fields


@pytest.fixture
def application(fake, merchant):
    return application_create(merchant=merchant, **application_fields())


@pytest.fixture
def channels(db):
    """An e-mail channel for staff (status, overdue) and one for merchants (confirmation links)."""
    staff = Channel.objects.create(name="ops mail", kind="email", config={"to": [STAFF_EMAIL]})
    for event in ("merchant.status_changed", "merchant.audit_overdue"):
        Subscription.objects.create(event=event, channel=staff)
    merchants = Channel.objects.create(name="merchant mail", kind="email", config={"to": [STAFF_EMAIL]})
    Subscription.objects.create(event="merchant.confirm_requested", channel=merchants)
    return staff, merchants


def deliver_all() -> list:
    """Send every pending notification delivery now (tests do not run on_commit nudges) and return the
    e-mails that went out."""
    for pk in Delivery.objects.filter(status="pending").values_list("pk", flat=True):
        delivery_send(delivery_id=pk)
    return list(mail.outbox)


def mails_to(address: str, subject_contains: str = "") -> list:
    return [m for m in mail.outbox if address in m.to and subject_contains in m.subject]


@pytest.fixture
def onboarded(fake, merchant):
    """The merchant, authorised: the fake issued it an app_auth_token, stored as Alipay grants it."""
    from payments.services.merchants import merchant_store_tokens

    grant = fake.issue_token(user_id="2088000000000077")
    return merchant_store_tokens(merchant=merchant, node=grant)


@pytest.fixture
def trade(onboarded):
    from payments.services.trades import trade_create

    return trade_create(merchant=onboarded, subject="测试商品", total_amount="100.00")


def post_notification(client, params: dict, **extra):
    from urllib.parse import urlencode

    return client.post("/webhooks/alipay/", data=urlencode(params), **extra,
                       content_type="application/x-www-form-urlencoded; charset=utf-8")
