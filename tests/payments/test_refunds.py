"""Refunds: full and partial, each with its own out_request_no kept across retries; an unknown outcome
reconciled by the refund query; never more refunded than paid, also under concurrency (PostgreSQL)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from payments.models import Refund, Trade
from payments.selectors import refundable
from payments.services.base import PaymentsError
from payments.services.refunds import RefundError, refund_check_now, refund_request
from payments.tasks import sweep_trades

from .conftest import post_notification

pytestmark = pytest.mark.django_db
REFUND, REFUND_QUERY = "alipay.trade.refund", "alipay.trade.fastpay.refund.query"


@pytest.fixture
def paid(fake, trade):
    """The trade, paid (Alipay's notification applied)."""
    from payments.services.trades import trade_check

    fake.pay(trade.out_trade_no, send=False)
    trade_check(trade_id=trade.pk, force=True)
    t = Trade.objects.get(pk=trade.pk)
    assert t.status == "paid"
    return t


@pytest.fixture
def finance(db):
    return get_user_model().objects.create_user("cashier", password="x" * 12, is_staff=True)


def test_full_refund_with_who_and_why(fake, paid, finance):
    r = refund_request(trade_id=paid.pk, amount=None, reason="买家取消", user=finance)
    assert (r.status, r.amount, r.fund_change, r.reason, r.requested_by, r.requested_by_name) == (
        "succeeded", Decimal("100.00"), "Y", "买家取消", finance, "cashier")
    assert fake.refunded_total(paid.out_trade_no) == Decimal("100.00")
    assert fake.trades[paid.out_trade_no]["refunds"][r.out_request_no]["reason"] == "买家取消"
    assert Trade.objects.get(pk=paid.pk).refunded_amount == Decimal("100.00")
    with pytest.raises(RefundError):
        refund_request(trade_id=paid.pk, amount="0.01", reason="again", user=finance)


def test_partial_refunds_never_exceed_the_paid_amount(fake, paid, finance):
    a = refund_request(trade_id=paid.pk, amount="30.00", reason="少发一件", user=finance)
    b = refund_request(trade_id=paid.pk, amount="20", reason="运费", user=finance)
    assert a.out_request_no != b.out_request_no and {a.status, b.status} == {"succeeded"}
    with pytest.raises(RefundError, match="50.00"):
        refund_request(trade_id=paid.pk, amount="60.00", reason="too much", user=finance)
    assert Refund.objects.count() == 2 and fake.refunded_total(paid.out_trade_no) == Decimal("50.00")
    assert refundable(Trade.objects.get(pk=paid.pk)) == Decimal("50.00")


@pytest.mark.parametrize("amount, reason", [("0", "x"), ("-5", "x"), ("abc", "x"), ("0.001", "x"),
                                            ("10", ""), ("10", "a\x00b"), ("10", "x" * 257), ("10", 12)])
def test_bad_requests_are_refused_plainly(fake, paid, finance, amount, reason):
    with pytest.raises(PaymentsError):
        refund_request(trade_id=paid.pk, amount=amount, reason=reason, user=finance)
    assert Refund.objects.count() == 0 and fake.received.count(REFUND) == 0


def test_an_unpaid_trade_cannot_be_refunded(fake, trade, finance):
    with pytest.raises(RefundError, match="只有已付款的交易"):
        refund_request(trade_id=trade.pk, amount="1", reason="x", user=finance)


def test_refund_timed_out_is_reconciled_and_refunds_once(fake, paid, finance, settings, clock):
    settings.PLATFORM_HTTP_TIMEOUT = (2.0, 0.3)
    fake.fail_next(REFUND, "stall_after", seconds=0.6)          # Alipay refunds, our read times out
    r = refund_request(trade_id=paid.pk, amount="40.00", reason="质量问题", user=finance)
    assert r.status == "unknown" and "timeout" in r.last_error
    assert refundable(Trade.objects.get(pk=paid.pk)) == Decimal("60.00")   # the unknown refund holds its amount

    clock.advance(minutes=1)
    sweep_trades()
    r = Refund.objects.get(pk=r.pk)
    assert r.status == "succeeded"
    assert fake.received.count(REFUND) == 1 and fake.received.count(REFUND_QUERY) == 1
    assert fake.fund_changes == [(paid.out_trade_no, r.out_request_no, Decimal("40.00"))]
    assert Trade.objects.get(pk=paid.pk).refunded_amount == Decimal("40.00")


def test_refund_lost_before_alipay_is_sent_again_with_the_same_number(fake, paid, finance, clock):
    fake.fail_next(REFUND, "drop_before")
    r = refund_request(trade_id=paid.pk, amount="40.00", reason="质量问题", user=finance)
    assert r.status == "unknown"
    clock.advance(minutes=1)
    assert refund_check_now(refund_id=r.pk) == "succeeded"
    sent = [c["params"]["biz_content"] for c in fake.calls_of(REFUND)]
    assert len(sent) == 1 and r.out_request_no in sent[0]
    assert fake.received.count(REFUND) == 2 and len(fake.fund_changes) == 1


def test_the_same_request_number_refunds_once_at_alipay(fake, paid):
    from payments.client import get_client

    client, token = get_client(), paid.merchant.app_auth_token
    first = client.trade_refund(app_auth_token=token, out_trade_no=paid.out_trade_no, refund_amount=Decimal("5"),
                                out_request_no="RQ-1", refund_reason="x")
    again = client.trade_refund(app_auth_token=token, out_trade_no=paid.out_trade_no, refund_amount=Decimal("5"),
                                out_request_no="RQ-1", refund_reason="x")
    assert (first.node["fund_change"], again.node["fund_change"]) == ("Y", "N")
    assert fake.refunded_total(paid.out_trade_no) == Decimal("5.00")


def test_a_refused_refund_frees_its_amount(fake, paid, finance):
    fake.fail_next(REFUND, "refuse", sub_code="ACQ.SELLER_BALANCE_NOT_ENOUGH")
    r = refund_request(trade_id=paid.pk, amount=None, reason="x", user=finance)
    assert r.status == "failed" and "ACQ.SELLER_BALANCE_NOT_ENOUGH" in r.last_error
    assert refundable(Trade.objects.get(pk=paid.pk)) == Decimal("100.00")
    again = refund_request(trade_id=paid.pk, amount=None, reason="x", user=finance)
    assert again.status == "succeeded" and again.out_request_no != r.out_request_no


def test_alipay_notification_naming_the_refund_confirms_it(fake, paid, finance, client,
                                                           django_capture_on_commit_callbacks):
    fake.fail_next(REFUND, "drop_after")
    r = refund_request(trade_id=paid.pk, amount="10.00", reason="x", user=finance)
    assert r.status == "unknown"
    params = fake.notification(paid.out_trade_no)
    assert params["out_biz_no"] == r.out_request_no
    with django_capture_on_commit_callbacks(execute=True):
        assert post_notification(client, params).content == b"success"
    r = Refund.objects.get(pk=r.pk)
    assert r.status == "succeeded" and Trade.objects.get(pk=paid.pk).refunded_amount == Decimal("10.00")


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_partial_refunds_over_the_amount_one_is_refused(postgres, fake, paid, finance):
    barrier = threading.Barrier(2)
    results, errors = [], []

    def refund():
        try:
            barrier.wait()
            results.append(refund_request(trade_id=paid.pk, amount="60.00", reason="并发", user=finance).status)
        except RefundError as exc:
            errors.append(str(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=refund) for _ in range(2)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert results == ["succeeded"] and len(errors) == 1 and "40.00" in errors[0]
    assert Refund.objects.count() == 1 and fake.refunded_total(paid.out_trade_no) == Decimal("60.00")
