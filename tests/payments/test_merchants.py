"""Merchants' authorisation: granted by Alipay's app-authorisation notice (or a code staff exchange),
stored encrypted, refreshed before it expires, marked expired when Alipay refuses the refresh."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from payments.models import AlipayCall, AlipayInboxEvent, Merchant
from payments.services.base import PaymentsError
from payments.services.calls import REDACTED
from payments.services.merchants import merchant_exchange_code, merchant_store_tokens
from payments.services.onboarding import application_submit
from payments.tasks import sweep_onboarding, sweep_tokens

from .conftest import STAFF_EMAIL, deliver_all, mails_to, post_notification

pytestmark = pytest.mark.django_db
TOKEN = "alipay.open.auth.token.app"


def test_tokens_are_encrypted_at_rest(fake, onboarded):
    with connection.cursor() as cur:
        cur.execute("SELECT app_auth_token, app_refresh_token FROM payments_merchant WHERE id = %s", [onboarded.pk])
        stored = cur.fetchone()
    assert onboarded.app_auth_token.startswith("fake-auth-")
    assert all(value and "fake-" not in value for value in stored)


def test_authorisation_notice_after_confirmation_authorises_the_merchant(
        clock, fake, application, client, django_capture_on_commit_callbacks):
    app = application_submit(application_id=application.pk)
    fake.set_order_status(app.batch_no, "MERCHANT_CONFIRM_SUCCESS")   # the fake authorises our app too
    notice = fake.app_auth_notification(app.batch_no)
    clock.advance(seconds=5)

    # Alipay's notice arrives before our next query taught us the merchant's user id: retried later
    with django_capture_on_commit_callbacks(execute=True):
        assert post_notification(client, notice).content == b"success"
    event = AlipayInboxEvent.objects.get()
    assert event.status == "failed" and "no merchant" in event.last_error
    assert Merchant.objects.get(pk=app.merchant_id).can_trade is False

    sweep_onboarding()                                 # the handler made the applications due now
    clock.advance(minutes=2)
    from payments.tasks import sweep_inbox

    sweep_inbox()
    m = Merchant.objects.get(pk=app.merchant_id)
    event = AlipayInboxEvent.objects.get()
    assert event.status == "processed"
    assert m.can_trade and m.app_auth_token == fake.batches[app.batch_no]["auth"]["app_auth_token"]
    assert m.token_state == "active" and m.token_refresh_at == m.token_expires_at - timedelta(days=7)
    # the tokens are kept encrypted on the merchant only: not in the stored notice, not in any call log
    assert m.app_auth_token not in event.body and m.app_refresh_token not in event.body
    assert not AlipayCall.objects.filter(answer__icontains=m.app_auth_token[-12:]).exists()
    # an operator replaying the notice changes nothing
    from common.inbox import process
    from payments.services.trades import alipay_event_handle

    assert process(AlipayInboxEvent, event.pk, alipay_event_handle, force=True) == "ignored"
    assert Merchant.objects.get(pk=m.pk).app_auth_token == m.app_auth_token


def test_staff_exchange_an_authorisation_code(fake, merchant):
    merchant.alipay_user_id = "2088000000000555"
    merchant.save()
    code = fake.issue_auth_code(user_id="2088000000000555")
    m = merchant_exchange_code(merchant_id=merchant.pk, code=code)
    assert m.can_trade and m.auth_app_id
    with pytest.raises(PaymentsError):
        merchant_exchange_code(merchant_id=merchant.pk, code=code)          # a code works once
    other = fake.issue_auth_code(user_id="2088000000000999")
    with pytest.raises(PaymentsError, match="2088000000000999"):
        merchant_exchange_code(merchant_id=merchant.pk, code=other)


def test_refreshed_tokens_are_not_logged_in_clear(clock, fake, merchant):
    grant = fake.issue_token(user_id="2088000000000077", expires_in=86400)
    merchant_store_tokens(merchant=merchant, node=grant)
    sweep_tokens()
    m = Merchant.objects.get(pk=merchant.pk)
    [call] = AlipayCall.objects.filter(method=TOKEN)
    assert call.outcome == "ok" and m.app_auth_token not in str(call.answer)
    assert m.app_refresh_token not in str(call.answer) and call.answer["app_auth_token"] == REDACTED


def test_token_is_refreshed_before_it_expires(clock, fake, merchant):
    grant = fake.issue_token(user_id="2088000000000077", expires_in=10 * 86400)
    m = merchant_store_tokens(merchant=merchant, node=grant)
    old = m.app_auth_token
    clock.advance(days=2, hours=23)
    assert sweep_tokens() == 0
    clock.advance(hours=1)                                  # expiry - ALIPAY_TOKEN_REFRESH_BEFORE_HOURS
    assert sweep_tokens() == 1
    m = Merchant.objects.get(pk=merchant.pk)
    assert m.app_auth_token != old and m.token_state == "active"
    assert m.token_expires_at == clock.t + timedelta(days=365)       # what Alipay granted this time
    assert old not in fake.tokens and m.app_auth_token in fake.tokens


def test_refused_refresh_marks_the_merchant_expired_and_tells_staff(clock, fake, merchant, channels):
    grant = fake.issue_token(user_id="2088000000000077", expires_in=86400)
    merchant_store_tokens(merchant=merchant, node=grant)
    fake.refresh_tokens.clear()                             # Alipay no longer knows the refresh token
    sweep_tokens()
    m = Merchant.objects.get(pk=merchant.pk)
    assert m.token_state == "expired" and not m.can_trade and "isv.refresh-token-invalid" in m.token_error
    deliver_all()
    [notice] = mails_to(STAFF_EMAIL)
    assert "杭州小店" in notice.body and "需重新授权" in notice.body
