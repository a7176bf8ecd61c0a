"""Trades for onboarded merchants: precreate (QR code), Alipay's notification through the inbox (RSA2,
app id, trade and amount checked; duplicates processed once), a query for a notification that never came."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from common.models import RejectedWebhook
from payments.models import AlipayInboxEvent, Trade
from payments.services.trades import TradeError, trade_create
from payments.tasks import sweep_trades

from .conftest import post_notification

pytestmark = pytest.mark.django_db
PRECREATE, TRADE_QUERY = "alipay.trade.precreate", "alipay.trade.query"


def get(trade) -> Trade:
    return Trade.objects.get(pk=trade.pk)


def test_precreate_gives_the_qr_code_and_tells_alipay_where_to_notify(fake, trade):
    assert trade.status == "waiting" and trade.qr_code == f"{fake.url}/qr/{trade.out_trade_no}"
    [call] = fake.calls_of(PRECREATE)
    assert call["params"]["notify_url"] == "https://ops.example/webhooks/alipay/"
    assert call["params"]["app_auth_token"] == trade.merchant.app_auth_token
    assert fake.trades[trade.out_trade_no]["total_amount"] == "100.00"


def test_a_merchant_without_authorisation_cannot_trade(fake, merchant):
    with pytest.raises(TradeError):
        trade_create(merchant=merchant, subject="x", total_amount="1.00")
    assert Trade.objects.count() == 0 and fake.received == []


@pytest.mark.parametrize("amount", ["0", "-1", "0.001", "abc", "1e9", "NaN", "100000000.01", None, "1\x00"])
def test_amounts_are_checked(fake, onboarded, amount):
    with pytest.raises(TradeError):
        trade_create(merchant=onboarded, subject="x", total_amount=amount)
    assert Trade.objects.count() == 0


def test_precreate_answer_lost_is_sent_again_with_the_same_number(fake, onboarded, clock):
    fake.fail_next(PRECREATE, "drop_after")
    trade = trade_create(merchant=onboarded, subject="测试", total_amount="9.90")
    assert trade.status == "created" and trade.last_error
    clock.advance(minutes=1)
    sweep_trades()
    trade = get(trade)
    assert trade.status == "waiting" and trade.qr_code == fake.trades[trade.out_trade_no]["qr_code"]
    assert len(fake.calls_of(PRECREATE)) == 2
    assert len(fake.trades) == 1


def test_precreate_refused_fails_the_trade(fake, onboarded):
    fake.fail_next(PRECREATE, "refuse", sub_code="ACQ.INVALID_PARAMETER")
    trade = trade_create(merchant=onboarded, subject="测试", total_amount="9.90")
    assert trade.status == "failed" and "ACQ.INVALID_PARAMETER" in trade.last_error and trade.check_state == "idle"


def test_paid_notification_is_verified_stored_once_and_applied(fake, trade, client, django_capture_on_commit_callbacks):
    params = fake.pay(trade.out_trade_no, send=False)
    with django_capture_on_commit_callbacks(execute=True):
        resp = post_notification(client, params)
    assert resp.status_code == 200 and resp.content == b"success"
    t = get(trade)
    assert t.status == "paid" and t.trade_no == params["trade_no"] and t.buyer_logon_id == "buy***@example.com"
    assert t.paid_at is not None and t.check_state == "idle" and t.receipt_amount == Decimal("100.00")
    event = AlipayInboxEvent.objects.get()
    assert (event.key, event.status, event.attempts, event.trade_id) == (params["notify_id"], "processed", 1, t.pk)

    # Alipay sends the same notification again (same notify_id): answered, stored once, processed once
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            again = post_notification(client, params)
        assert again.content == b"success"
    event = AlipayInboxEvent.objects.get()
    assert event.attempts == 1 and get(trade).updated_at == t.updated_at


@pytest.mark.parametrize("tamper, reason", [
    (lambda fake, p: {**p, "total_amount": "1.00"}, "bad signature"),           # changed after signing
    (lambda fake, p: {**p, "sign": p["sign"][:-8] + "AAAAAAA="}, "bad signature"),
    (lambda fake, p: {k: v for k, v in p.items() if k != "sign"}, "missing signature"),
    (lambda fake, p: fake.notification(p["out_trade_no"], app_id="2021000000009999"), "app_id is not ours"),
    (lambda fake, p: fake.notification(p["out_trade_no"], total_amount="0.01"), "total_amount does not match"),
    (lambda fake, p: fake.notification(p["out_trade_no"], out_trade_no="XO-NOT-OURS"), "unknown out_trade_no"),
    (lambda fake, p: fake.notification(p["out_trade_no"], auth_app_id="2021000000000001"), "auth_app_id"),
])
def test_refused_notifications_change_nothing(fake, trade, client, tamper, reason):
    params = tamper(fake, fake.pay(trade.out_trade_no, send=False))
    before = get(trade)
    resp = post_notification(client, params)
    assert resp.status_code in (400, 401) and resp.content != b"success"
    assert reason in RejectedWebhook.objects.get(source="alipay").reason
    assert AlipayInboxEvent.objects.count() == 0
    after = get(trade)
    assert (after.status, after.paid_at, after.updated_at) == ("waiting", None, before.updated_at)


@pytest.mark.parametrize("body", [b"a=1\x00&sign=x", b"\xff\xfe=1", b"sign=%ZZ&a", b"sign=" + b"x" * 300000,
                                  b"sign=x&notify_id=%00"])
def test_hostile_bodies_are_refused_plainly(fake, trade, client, body):
    resp = client.post("/webhooks/alipay/", data=body, content_type="application/x-www-form-urlencoded")
    assert 400 <= resp.status_code < 500 and b"Traceback" not in resp.content
    assert AlipayInboxEvent.objects.count() == 0


def test_get_is_not_allowed(client, fake):
    assert client.get("/webhooks/alipay/").status_code == 405


def test_a_notification_that_never_came_is_found_by_the_query(clock, fake, trade):
    fake.pay(trade.out_trade_no, send=False)            # paid on Alipay; the notification is lost
    clock.advance(minutes=4)
    assert sweep_trades() == 0
    clock.advance(minutes=1)                            # ALIPAY_TRADE_QUERY_DELAY_SECONDS after creation
    assert sweep_trades() == 1
    t = get(trade)
    assert t.status == "paid" and t.check_state == "idle" and len(fake.calls_of(TRADE_QUERY)) == 1
    clock.advance(hours=1)
    assert sweep_trades() == 0


def test_an_unscanned_trade_is_closed_after_its_qr_code_expires(clock, fake, trade):
    for _ in range(30):
        clock.advance(minutes=15)
        sweep_trades()
        if get(trade).status != "waiting":
            break
    t = get(trade)
    assert t.status == "closed" and t.alipay_status == "TRADE_NOT_EXIST" and t.paid_at is None
    assert t.closed_at >= trade.expires_at + timedelta(minutes=5)


def test_payment_reported_after_a_local_close_is_kept_and_flagged(clock, fake, trade, client,
                                                                   django_capture_on_commit_callbacks):
    clock.advance(hours=3)
    sweep_trades()
    assert get(trade).status == "closed"
    params = fake.pay(trade.out_trade_no, send=False)
    with django_capture_on_commit_callbacks(execute=True):
        post_notification(client, params)
    t = get(trade)
    assert t.status == "paid" and t.needs_attention
