"""KYC due work with time travel: the halfway reminder, expiry and its action, the status sweeper that
recovers a lost webhook, and the staff queue for platforms that cannot close an order (闲管家)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from kyc.models import KycPolicy, Verification
from kyc.staff import verification_resend, verification_staff_closed
from kyc.work import kyc_sweep
from notifications.models import Notification
from orders.models import Order, SandboxCall, SandboxOrder

from .conftest import (
    buyer,
    deliver,
    kyc_product,
    open_session,
    sandbox_paid,
    verification_of,
    xgj_paid,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_lost_webhook_is_recovered_by_the_status_sweeper(sumsub, sandbox_shop, clock):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "L1")
    v = verification_of(order)
    assert open_session(v).status_code == 200
    applicant_id = Verification.objects.get(pk=v.pk).applicant.applicant_id
    sumsub.submit(applicant_id)
    sumsub.review(applicant_id, answer="GREEN")  # Sumsub decided; the webhooks never arrive

    clock.advance(minutes=29)
    kyc_sweep()
    assert Verification.objects.get(pk=v.pk).status == "link_sent"  # not asked before the check is due
    status_calls = [r for r in sumsub.requests if r.path.endswith("/status")]
    assert status_calls == []

    clock.advance(minutes=2)
    kyc_sweep()

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "approved" and v.review_answer == "GREEN"
    assert [r.method for r in sumsub.requests if r.path == f"/resources/applicants/{applicant_id}/status"] == ["GET"]
    assert sumsub.refused == []
    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert SandboxOrder.objects.get(order_no="L1").status == "shipped"
    assert v.events.filter(kind="status").exists()


def test_the_sweeper_does_not_ask_about_a_link_never_opened(sumsub, sandbox_shop, clock):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "L2")
    clock.advance(hours=2)
    kyc_sweep()
    assert sumsub.requests == []
    assert verification_of(order).status == "link_sent"


def test_reminder_halfway_then_expiry_closes_the_order(no_sumsub, sandbox_shop, clock, mailbox):
    buyer("sandbox", "buyer-E1", email="e1@example.com")
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "E1")
    v = verification_of(order)
    assert len(mailbox) == 1

    clock.advance(hours=35)
    kyc_sweep()
    assert len(mailbox) == 1
    clock.advance(hours=1, minutes=1)
    kyc_sweep()
    assert len(mailbox) == 2 and "将于" in mailbox[1].body and v.url in mailbox[1].body
    kyc_sweep()
    assert len(mailbox) == 2  # reminded once

    clock.advance(hours=36)
    kyc_sweep()

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "expired" and v.closure == "done"
    assert SandboxOrder.objects.get(order_no="E1").status == "closed"
    close = SandboxCall.objects.get(method="close")
    assert close.params["reason"] == "买家未在规定时间内完成实名认证"
    assert Order.objects.get(pk=order.pk).status == "closed"
    assert Notification.objects.get(event="kyc.link_expired").context["order"] == "E1"


def test_an_expired_link_cannot_start_a_verification(sumsub, sandbox_shop, clock):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "E2")
    v = verification_of(order)
    clock.advance(hours=72, seconds=1)

    page = Client().get(f"/verify/{v.token}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "链接已过期" in html and "id=\"sumsub-websdk-container\"" not in html and "sns-websdk-builder" not in html
    resp = open_session(v)
    assert resp.status_code == 410 and resp.json()["state"] == "expired"
    assert sumsub.requests == []  # no applicant, no access token


def test_expiry_with_the_staff_action_waits_for_staff_who_resend_a_new_link(no_sumsub, sandbox_shop, clock):
    product = kyc_product(sandbox_shop)
    KycPolicy.objects.create(product=product, expiry_action="staff", link_ttl_hours=24)
    order = sandbox_paid(sandbox_shop, "E3")
    old = verification_of(order)
    assert old.expires_at == clock.t + timedelta(hours=24)

    clock.advance(hours=24, seconds=1)
    kyc_sweep()

    old = Verification.objects.get(pk=old.pk)
    assert old.status == "expired" and old.needs_staff and old.closure == ""
    assert Order.objects.get(pk=order.pk).status == "awaiting_kyc"
    assert SandboxOrder.objects.get(order_no="E3").status == "paid"
    assert "转人工" in Notification.objects.get(event="kyc.link_expired").context["action"]

    fresh = verification_resend(verification=old, user=None)

    assert fresh.pk != old.pk and fresh.token != old.token and fresh.status == "link_sent"
    assert fresh.expires_at == clock.t + timedelta(hours=24)
    assert not Verification.objects.get(pk=old.pk).needs_staff
    assert "链接已过期" in Client().get(f"/verify/{old.token}/").content.decode()
    assert "本地沙箱" in Client().get(f"/verify/{fresh.token}/").content.decode()


def test_a_buyer_still_under_review_at_expiry_goes_to_staff_not_closed(sumsub, sandbox_shop, clock):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "E4")
    v = verification_of(order)
    open_session(v)
    applicant_id = Verification.objects.get(pk=v.pk).applicant.applicant_id
    deliver(sumsub.submit(applicant_id))

    clock.advance(hours=72, seconds=1)
    kyc_sweep()

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "expired" and v.needs_staff and v.closure == ""
    assert sumsub.requests[-1].path == f"/resources/applicants/{applicant_id}/status"  # asked once more first
    assert SandboxOrder.objects.get(order_no="E4").status == "paid"


def test_a_result_found_at_expiry_wins_over_expiry(sumsub, sandbox_shop, clock):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "E5")
    v = verification_of(order)
    open_session(v)
    applicant_id = Verification.objects.get(pk=v.pk).applicant.applicant_id
    sumsub.review(applicant_id, answer="GREEN")  # lost

    clock.advance(hours=73)
    kyc_sweep()

    assert Verification.objects.get(pk=v.pk).status == "approved"
    assert SandboxOrder.objects.get(order_no="E5").status == "shipped"


def test_xianguanjia_cannot_close_so_staff_are_asked_and_the_order_waits(sumsub, xgj, xgj_shop):
    kyc_product(xgj_shop)
    order = xgj_paid(xgj, xgj_shop, "X1")
    v = verification_of(order)
    open_session(v)
    applicant_id = Verification.objects.get(pk=v.pk).applicant.applicant_id

    deliver(sumsub.review(applicant_id, answer="RED", reject_type="FINAL", moderation_comment="证件无效"))

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "rejected" and v.closure == "staff" and v.needs_staff
    assert Order.objects.get(pk=order.pk).status == "awaiting_kyc"
    needed = Notification.objects.get(event="kyc.close_needed")
    assert needed.context["order"] == "X1" and "闲管家" in needed.context["error"]
    assert xgj.ship_calls["X1"] == 0
    assert Verification.objects.filter(needs_staff=True, closure="staff").count() == 1  # the staff queue

    verification_staff_closed(verification=v, user=None)

    v = Verification.objects.get(pk=v.pk)
    assert v.closure == "done" and not v.needs_staff
    order = Order.objects.get(pk=order.pk)
    assert order.status == "closed"
    assert order.events.filter(actor="staff", to_status="closed").exists()


def test_a_platform_close_meanwhile_cancels_the_verification(no_sumsub, sandbox_shop):
    from orders.adapters.sandbox import SandboxAdapter
    from orders.services import order_sync

    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "C1")
    v = verification_of(order)
    o = SandboxOrder.objects.get(order_no="C1")
    o.status = "closed"
    o.save()
    order_sync(shop=sandbox_shop, snapshot=SandboxAdapter.snapshot(o))

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "cancelled"
    assert Order.objects.get(pk=order.pk).status == "closed"
    page = Client().get(f"/verify/{v.token}/").content.decode()
    assert "订单已关闭" in page and "kyc-sandbox" not in page
