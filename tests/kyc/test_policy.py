"""The policy (level, validity, one applicant per buyer), refunds meanwhile, and staff actions (override with
a written reason, re-sending a link, the sandbox testCompleted action)."""

from __future__ import annotations

import pytest
from django.test import Client

from kyc.models import KycApplicant, KycPolicy, Verification
from kyc.services import KycError
from kyc.staff import verification_override, verification_resend
from kyc.work import kyc_sweep
from orders.adapters.sandbox import SandboxAdapter
from orders.models import Order, OrderEvent, SandboxOrder
from orders.services import order_sync

from .conftest import buyer, deliver, kyc_product, open_session, sandbox_paid, verification_of

pytestmark = pytest.mark.django_db(transaction=True)


def approve(sumsub, v):
    open_session(v)
    applicant_id = KycApplicant.objects.get(pk=v.applicant_id).applicant_id
    assert deliver(sumsub.review(applicant_id, answer="GREEN")).status_code == 200


def test_an_approved_buyer_skips_kyc_within_validity_only(sumsub, sandbox_shop, clock, settings):
    settings.KYC_VALIDITY_DAYS = 30
    kyc_product(sandbox_shop)
    first = sandbox_paid(sandbox_shop, "V1", buyer_id="same-buyer")
    approve(sumsub, verification_of(first))
    assert Order.objects.get(pk=first.pk).status == "shipped"

    clock.advance(days=29)
    second = sandbox_paid(sandbox_shop, "V2", buyer_id="same-buyer")
    assert Order.objects.get(pk=second.pk).status == "shipped"
    assert not Verification.objects.filter(order=second).exists()
    assert second.events.filter(kind="note", message__contains="无需再次认证").exists()

    clock.advance(days=2)
    third = sandbox_paid(sandbox_shop, "V3", buyer_id="same-buyer")
    assert Order.objects.get(pk=third.pk).status == "awaiting_kyc"
    # Still one applicant for the buyer: Sumsub is asked about the same person again.
    assert verification_of(third).applicant_id == verification_of(first).applicant_id
    assert KycApplicant.objects.count() == 1


def test_an_approval_at_another_level_does_not_count(sumsub, sandbox_shop):
    kyc_product(sandbox_shop)
    strict = kyc_product(sandbox_shop, item_id="strict-item")
    KycPolicy.objects.create(product=strict, level_name="advanced-kyc-level")
    first = sandbox_paid(sandbox_shop, "V4", buyer_id="b4")
    approve(sumsub, verification_of(first))

    second = sandbox_paid(sandbox_shop, "V5", item_id="strict-item", buyer_id="b4")
    assert Order.objects.get(pk=second.pk).status == "awaiting_kyc"
    assert verification_of(second).level_name == "advanced-kyc-level"


def test_a_product_without_kyc_goes_straight_to_shipping(no_sumsub, sandbox_shop):
    kyc_product(sandbox_shop, needs_kyc=False)
    order = sandbox_paid(sandbox_shop, "N1")
    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert not Verification.objects.exists()


def test_one_green_releases_every_waiting_order_of_the_buyer(sumsub, sandbox_shop):
    kyc_product(sandbox_shop)
    a = sandbox_paid(sandbox_shop, "W1", buyer_id="twice")
    b = sandbox_paid(sandbox_shop, "W2", buyer_id="twice")
    approve(sumsub, verification_of(a))
    assert Order.objects.get(pk=a.pk).status == "shipped" and Order.objects.get(pk=b.pk).status == "shipped"


def test_a_refund_meanwhile_holds_the_release_until_the_refund_ends(sumsub, sandbox_shop, clock):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "R1")
    v = verification_of(order)
    o = SandboxOrder.objects.get(order_no="R1")

    def platform(status):
        o.status = status
        o.save()
        clock.advance(seconds=5)
        order_sync(shop=sandbox_shop, snapshot=SandboxAdapter.snapshot(o), event_at=clock.t)

    open_session(v)
    platform("refunding")
    assert Verification.objects.get(pk=v.pk).status == "link_sent"  # kept: the refund may end
    assert "订单已关闭" in Client().get(f"/verify/{v.token}/").content.decode()  # but not usable meanwhile
    approve(sumsub, v)
    assert Verification.objects.get(pk=v.pk).status == "approved"
    assert Order.objects.get(pk=order.pk).status == "refunding"

    o.status = "paid"
    platform("paid")  # the buyer withdrew the refund: back where the order was
    assert Order.objects.get(pk=order.pk).status == "awaiting_kyc"
    clock.advance(minutes=31)
    kyc_sweep()
    assert Order.objects.get(pk=order.pk).status == "shipped"


def test_staff_override_needs_a_written_reason_and_lands_in_the_order_log(no_sumsub, sandbox_shop,
                                                                          django_user_model):
    reviewer = django_user_model.objects.create_user("reviewer", password="x" * 12)
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "O1")
    v = verification_of(order)

    for bad in ("", "   ", "x" * 501, "bad\x00reason"):
        with pytest.raises(KycError):
            verification_override(verification=v, user=reviewer, approve=True, reason=bad)
    assert Verification.objects.get(pk=v.pk).status == "link_sent"
    assert Order.objects.get(pk=order.pk).status == "awaiting_kyc"

    verification_override(verification=v, user=reviewer, approve=True, reason="买家线下出示了身份证原件")

    assert Verification.objects.get(pk=v.pk).status == "approved"
    assert Order.objects.get(pk=order.pk).status == "shipped"
    note = OrderEvent.objects.get(order=order, actor="staff", kind="note")
    assert note.user == reviewer and "买家线下出示了身份证原件" in note.message
    assert Verification.objects.get(pk=v.pk).events.filter(actor="staff", user=reviewer).exists()


def test_staff_reject_closes_the_order(no_sumsub, sandbox_shop, django_user_model):
    reviewer = django_user_model.objects.create_user("reviewer2", password="x" * 12)
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "O2")
    verification_override(verification=verification_of(order), user=reviewer, approve=False, reason="证件与订单人不符")
    assert Order.objects.get(pk=order.pk).status == "closed"
    assert SandboxOrder.objects.get(order_no="O2").status == "closed"


def test_resend_of_an_open_link_sends_the_same_link_again(no_sumsub, sandbox_shop, mailbox):
    buyer("sandbox", "buyer-S1", phone="", email="s1@example.com")
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "S1"))
    assert verification_resend(verification=v, user=None).pk == v.pk
    assert [m.to for m in mailbox] == [["s1@example.com"]] * 2
    assert v.url in mailbox[1].body


def test_testcompleted_asks_the_sumsub_sandbox_to_review(sumsub, sandbox_shop, django_user_model):
    from kyc.staff import verification_test_completed

    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "T1"))
    with pytest.raises(KycError):
        verification_test_completed(verification=v, user=None, answer="GREEN")  # no applicant yet
    open_session(v)
    v = Verification.objects.get(pk=v.pk)

    verification_test_completed(verification=v, user=None, answer="GREEN")

    call = [r for r in sumsub.requests if r.path.endswith("/status/testCompleted")]
    assert len(call) == 1 and call[0].json() == {"reviewAnswer": "GREEN", "rejectLabels": []}
    assert sumsub.refused == []
    # Sumsub then sends its webhook; delivering it ships the order.
    deliver(sumsub.webhooks[-1])
    assert Order.objects.get(pk=v.order_id).status == "shipped"


def test_testcompleted_is_refused_with_production_tokens(sumsub, sandbox_shop, settings):
    from kyc.staff import verification_test_completed

    settings.SUMSUB_APP_TOKEN = "prd:live-token"
    sumsub.tokens["prd:live-token"] = settings.SUMSUB_SECRET_KEY
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "T2"))
    open_session(v)
    with pytest.raises(KycError):
        verification_test_completed(verification=Verification.objects.get(pk=v.pk), user=None, answer="GREEN")
    assert not [r for r in sumsub.requests if r.path.endswith("testCompleted")]


def test_page_for_an_order_closed_on_the_platform(no_sumsub, sandbox_shop):
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "Z1")
    v = verification_of(order)
    o = SandboxOrder.objects.get(order_no="Z1")
    o.status = "closed"
    o.save()
    order_sync(shop=sandbox_shop, snapshot=SandboxAdapter.snapshot(o))
    assert Client().post(f"/verify/{v.token}/token/").status_code == 410
    assert "订单已关闭" in Client().get(f"/verify/{v.token}/").content.decode()
