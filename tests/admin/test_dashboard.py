"""The dashboard (今日工作台) and the failures page: seeded figures appear, each links to the filtered list behind
it, the query count does not grow with the number of orders, and retry buttons run the list's own action."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from common.models import DailyOrderStats, InboxEvent
from orders.models import Order, OrderInboxEvent

from .seed import seed_dashboard

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss():
    user = get_user_model().objects.create_superuser("boss", password="pw-boss-1")
    client = Client()
    client.force_login(user)
    return client


def figure(html: str, key: str) -> tuple[str, str]:
    """(value, link) of one dashboard figure."""
    m = re.search(rf'<a id="figure-{key}"([^>]*)>.*?class="figure-value[^"]*">([^<]*)<', html, re.S)
    assert m, f"no figure {key}"
    href = re.search(r'href="([^"]*)"', m.group(1))
    return m.group(2).strip(), unescape(href.group(1)) if href else ""


def test_the_dashboard_shows_the_seeded_figures_with_links_to_their_lists(boss):
    seed = seed_dashboard(orders_today=3, orders_before=2)
    resp = boss.get("/admin/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "今日工作台" in html  # the navigation's first group, in Chinese

    value, link = figure(html, "orders_today")
    assert value == "3"
    listing = boss.get(link).content.decode()
    assert all(o.platform_order_id in listing for o in seed["today"])
    assert "D00003" not in listing and "D00004" not in listing  # three days ago: not today's

    assert figure(html, "amount_today")[0] == "59.70"
    value, link = figure(html, "awaiting_manual")
    assert value == "1" and "status__exact=awaiting_staff" in link
    assert boss.get(link).status_code == 200
    value, link = figure(html, "delivery_failed")
    assert value == "1" and "status__exact=failed" in link
    assert figure(html, "autoship_rate")[0] == "33.3%"  # 1 auto-shipped of 3 that reached an outcome
    value, link = figure(html, "order_anomalies")
    assert value == "1" and "has_anomaly__exact=1" in link
    assert seed["anomaly"].platform_order_id in boss.get(link).content.decode()

    assert figure(html, "kyc_sent")[0] == "6"
    assert figure(html, "kyc_submitted")[0] == "4"
    assert figure(html, "kyc_approved")[0] == "2"
    value, link = figure(html, "kyc_rejected")
    assert value == "1" and "status__exact=rejected" in link
    value, link = figure(html, "onboarding_attention")
    assert value == "1" and "attention=yes" in link
    value, link = figure(html, "notifications_failed")
    assert value == "1" and boss.get(link).status_code == 200
    value, link = figure(html, "inbox_orderinboxevent")
    assert value == "1" and "status__exact=failed" in link
    assert figure(html, "no_channel")[0] == "尚未配置"  # the only channel is disabled: notifications reach nobody
    assert figure(html, "worker")[1].endswith("/admin/common/heartbeat/")

    # The 30-day chart: today's 3 orders and the 2 of three days ago (and the 5 KYC orders of ten days ago).
    chart = re.search(r'data-type="bar" data-value="([^"]+)"', html)
    assert chart
    data = unescape(chart.group(1))
    assert '"data": [' in data and data.count(", 3]") == 1
    assert "近 30 天订单（10）" in html


def test_no_channel_warning_disappears_once_a_channel_is_enabled(boss):
    seed_dashboard(channel=True)
    assert 'id="figure-no_channel"' not in boss.get("/admin/").content.decode()


def dashboard_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/admin/").status_code == 200
    return len(ctx.captured_queries)


def test_the_dashboard_costs_the_same_queries_at_10_and_100_orders(boss):
    seed = seed_dashboard(orders_today=5, orders_before=5)
    DailyOrderStats.objects.all().delete()
    cold_10 = dashboard_queries(boss)  # closed days summed and kept
    warm_10 = dashboard_queries(boss)  # closed days read back
    product, shop = seed["today"][0].product, seed["shop"]
    for i in range(90):
        Order.objects.create(shop=shop, platform_order_id=f"M{i:05d}", product=product, amount=Decimal("1.00"))
    Order.objects.filter(platform_order_id__startswith="M", pk__in=list(
        Order.objects.filter(platform_order_id__startswith="M").values_list("pk", flat=True)[:45])).update(
        created_at=timezone.now() - timedelta(days=5))
    DailyOrderStats.objects.all().delete()
    assert dashboard_queries(boss) == cold_10
    assert dashboard_queries(boss) == warm_10
    assert warm_10 < cold_10 <= 30


def test_the_closed_days_are_kept_and_today_is_counted_live(boss):
    seed_dashboard(orders_today=2, orders_before=1)
    boss.get("/admin/")
    kept = {row.day: row.orders for row in DailyOrderStats.objects.all()}
    assert sum(kept.values()) == 1 + 5  # three days ago, and the KYC orders of ten days ago; not today
    assert len(kept) == 29


def test_the_failures_page_shows_what_each_failure_said_and_replays(boss, settings):
    seed = seed_dashboard()
    html = boss.get("/admin/failures/").content.decode()
    assert "unknown order status &#x27;weird&#x27;" in html  # the inbox event's error
    assert "卡密库存不足" in html  # the failed shipment's error
    assert "SMTP 550 mailbox unavailable" in html  # the failed notification's
    assert "Platform reported refunded before paid" in html  # the anomaly's event
    assert "/admin/shipping/shipment/?status__exact=failed" in html
    assert "/admin/orders/order/?has_anomaly__exact=1" in html

    inbox = seed["inbox"]
    resp = boss.post("/admin/failures/", {"label": "orders.orderinboxevent", "action": "replay_selected",
                                          "pk": [inbox.pk]})
    assert resp.status_code == 302
    inbox.refresh_from_db()
    assert inbox.status != InboxEvent.Status.FAILED  # queued again (and processed in-process by the eager task)
    assert not OrderInboxEvent.objects.filter(pk=inbox.pk, status=InboxEvent.Status.FAILED).exists()


def test_the_failures_page_refuses_actions_staff_may_not_run():
    seed = seed_dashboard()
    user = get_user_model().objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(codename__in=["view_orderinboxevent"]))
    client = Client()
    client.force_login(user)
    html = client.get("/admin/failures/").content.decode()
    assert "unknown order status" in html and "replay_selected" not in html  # sees it, no button
    assert "SMTP 550" not in html  # no permission on deliveries
    resp = client.post("/admin/failures/", {"label": "orders.orderinboxevent", "action": "replay_selected",
                                            "pk": [seed["inbox"].pk]})
    assert resp.status_code == 403
    assert OrderInboxEvent.objects.get(pk=seed["inbox"].pk).status == InboxEvent.Status.FAILED


# --- typed channel forms ---------------------------------------------------------------------------------------

def channel_post(**fields) -> dict:
    base = {"name": "值班邮箱", "kind": "email", "enabled": "on", "shop": "", "rate_limit_per_minute": "",
            "new_secret": "", "subscriptions-TOTAL_FORMS": "0", "subscriptions-INITIAL_FORMS": "0",
            "subscriptions-MIN_NUM_FORMS": "0", "subscriptions-MAX_NUM_FORMS": "1000"}
    return {**base, **fields}


def test_an_email_channel_without_recipients_is_refused(boss):
    from notifications.models import Channel

    resp = boss.post("/admin/notifications/channel/add/", channel_post())
    assert resp.status_code == 200  # the form again, with the error
    html = resp.content.decode()
    assert "此类渠道必须填写" in html
    assert not Channel.objects.exists()
    resp = boss.post("/admin/notifications/channel/add/", channel_post(email__to="not-an-address"))
    assert resp.status_code == 200 and not Channel.objects.exists()


def test_an_email_channel_with_recipients_saves_its_typed_settings(boss):
    from notifications.models import Channel

    resp = boss.post("/admin/notifications/channel/add/", channel_post(
        email__to="ops@example.com\nboss@example.com", email__subject_prefix="[闲鱼] "))
    assert resp.status_code == 302, resp.content.decode()[:3000]
    channel = Channel.objects.get()
    assert channel.config == {"to": ["ops@example.com", "boss@example.com"], "subject_prefix": "[闲鱼]"}
    page = boss.get(f"/admin/notifications/channel/{channel.pk}/change/").content.decode()
    assert "ops@example.com\nboss@example.com" in page  # shown back in its field, one per line
    assert "收件人" in page  # a labelled field, not a JSON box


def test_an_sms_channel_needs_its_signature_template_and_secret(boss):
    from notifications.models import Channel

    resp = boss.post("/admin/notifications/channel/add/", channel_post(
        name="短信", kind="sms", sms__access_key_id="LTAI-x", sms__sign_name="小店"))
    assert resp.status_code == 200 and not Channel.objects.exists()  # no template code
    resp = boss.post("/admin/notifications/channel/add/", channel_post(
        name="短信", kind="sms", sms__access_key_id="LTAI-x", sms__sign_name="小店", sms__template_code="SMS_1"))
    assert resp.status_code == 200 and not Channel.objects.exists()  # no AccessKey Secret: sending would fail
    resp = boss.post("/admin/notifications/channel/add/", channel_post(
        name="短信", kind="sms", sms__access_key_id="LTAI-x", sms__sign_name="小店", sms__template_code="SMS_1",
        new_secret="sk-123"))
    assert resp.status_code == 302
    assert Channel.objects.get().config == {"access_key_id": "LTAI-x", "sign_name": "小店",
                                            "template_code": "SMS_1"}


def test_view_site_leads_to_the_dashboard_not_a_debug_404(boss):
    html = boss.get("/admin/").content.decode()
    assert 'href="/"' not in html  # "view site" used to lead to a debug 404 at /
    assert 'href="/admin/"' in html


def test_an_english_reader_gets_the_dashboard_and_failures_in_english(boss):
    seed_dashboard()
    boss.cookies["django_language"] = "en"
    html = boss.get("/admin/").content.decode()
    assert "Orders today" in html and "今日订单" not in html and "Today&#x27;s workbench" in html
    page = boss.get("/admin/failures/").content.decode()
    assert "Open the list" in page and "Process again" in page and "重新处理" not in page
