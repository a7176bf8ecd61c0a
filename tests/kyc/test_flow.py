"""KYC end to end against a fake Sumsub (signatures checked, webhooks signed) and the fake open platform:
paid order → link → applicant and WebSDK token → signed webhooks → shipped or closed on the platform."""

from __future__ import annotations

import pytest
from django.test import Client

from common.models import RejectedWebhook
from kyc.models import SumsubInboxEvent, Verification
from notifications.models import Notification
from orders.models import Order
from shipping.models import Shipment

from .conftest import buyer, deliver, kyc_product, open_session, top_paid, verification_of

pytestmark = pytest.mark.django_db(transaction=True)


def started(sumsub, top, top_shop, oid: str, mailbox=None):
    """A paid order held for KYC whose buyer opened the page (so Sumsub knows the applicant)."""
    kyc_product(top_shop)
    order = top_paid(top, top_shop, oid)
    v = verification_of(order)
    resp = open_session(v)
    assert resp.status_code == 200, resp.content
    return order, Verification.objects.select_related("applicant").get(pk=v.pk), resp.json()["token"]


def test_green_ships_the_order(sumsub, top, top_shop, mailbox):
    buyer("goofish", "eb-K1", email="buyer@example.com")
    kyc_product(top_shop)
    order = top_paid(top, top_shop, "K1")

    assert order.status == "awaiting_kyc"
    v = verification_of(order)
    assert v.status == "link_sent" and v.level_name == "basic-kyc-level" and len(v.token) >= 43
    # The buyer received the link by e-mail (buyer event → their own address, never the staff list).
    assert [m.to for m in mailbox] == [["buyer@example.com"]]
    assert f"https://shop.example/verify/{v.token}/" in mailbox[0].body

    page = Client().get(f"/verify/{v.token}/")
    assert page.status_code == 200
    assert "请完成实名认证" in page.content.decode() and 'id="sumsub-websdk-container"' in page.content.decode()

    resp = open_session(v)
    assert resp.status_code == 200
    token = resp.json()["token"]
    applicant = v.applicant
    applicant.refresh_from_db()
    # Sumsub holds one applicant under our opaque id (not the platform's buyer id) and issued this token.
    assert sumsub.by_external == {applicant.external_user_id: applicant.applicant_id}
    assert "eb-K1" not in applicant.external_user_id
    assert sumsub.access_tokens == [{"token": token, "userId": applicant.external_user_id,
                                     "levelName": "basic-kyc-level", "ttlInSecs": 1800}]
    assert sumsub.refused == []

    assert deliver(sumsub.submit(applicant.applicant_id)).status_code == 200
    assert Verification.objects.get(pk=v.pk).status == "pending"
    assert deliver(sumsub.review(applicant.applicant_id, answer="GREEN")).status_code == 200

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "approved" and v.review_answer == "GREEN"
    order = Order.objects.get(pk=order.pk)
    assert order.status == "shipped"
    assert top.ship_calls["K1"] == 1 and top.orders["K1"]["order_status"] == 3
    assert Shipment.objects.get(order=order).status == "shipped"
    assert "认证已通过" in Client().get(f"/verify/{v.token}/").content.decode()


def test_red_final_closes_the_order_on_the_platform_and_tells_staff(sumsub, top, top_shop):
    order, v, _ = started(sumsub, top, top_shop, "K2")
    applicant_id = v.applicant.applicant_id
    deliver(sumsub.submit(applicant_id))
    resp = deliver(sumsub.review(applicant_id, answer="RED", reject_type="FINAL", labels=["FORGERY"],
                                 moderation_comment="We could not verify your document.",
                                 client_comment="forged passport"))
    assert resp.status_code == 200

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "rejected" and v.reject_type == "FINAL" and v.reject_labels == ["FORGERY"]
    assert v.closure == "done"
    assert top.close_calls["K2"] == 1 and top.orders["K2"]["order_status"] == 6
    assert Order.objects.get(pk=order.pk).status == "closed"
    assert top.ship_calls["K2"] == 0
    staff = Notification.objects.get(event="kyc.rejected")
    assert staff.context["order"] == "K2" and staff.context["final"] is True
    page = Client().get(f"/verify/{v.token}/").content.decode()
    assert "认证未通过" in page and "We could not verify your document." in page
    assert "forged passport" not in page  # the internal comment never reaches the buyer


def test_retry_then_green_ships(sumsub, top, top_shop, mailbox):
    buyer("goofish", "eb-K3", email="k3@example.com")
    order, v, _ = started(sumsub, top, top_shop, "K3")
    applicant_id = v.applicant.applicant_id
    deliver(sumsub.submit(applicant_id))
    deliver(sumsub.review(applicant_id, answer="RED", reject_type="RETRY", labels=["UNSATISFACTORY_PHOTOS"],
                          moderation_comment="照片模糊，请重新拍摄证件正面。"))

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "retry_requested"
    assert Order.objects.get(pk=order.pk).status == "awaiting_kyc" and top.close_calls["K3"] == 0
    # The buyer was told what to fix, with the same link, still valid.
    retry_mail = mailbox[-1]
    assert retry_mail.to == ["k3@example.com"]
    assert "照片模糊，请重新拍摄证件正面。" in retry_mail.body and v.url in retry_mail.body
    page = Client().get(f"/verify/{v.token}/").content.decode()
    assert "需要重新提交" in page and "照片模糊，请重新拍摄证件正面。" in page
    assert open_session(v).status_code == 200  # the link still starts a session

    deliver(sumsub.submit(applicant_id))
    assert Verification.objects.get(pk=v.pk).status == "pending"
    deliver(sumsub.review(applicant_id, answer="GREEN"))
    assert Verification.objects.get(pk=v.pk).status == "approved"
    assert Order.objects.get(pk=order.pk).status == "shipped" and top.ship_calls["K3"] == 1


def test_duplicate_and_out_of_order_webhooks_change_nothing(sumsub, top, top_shop):
    order, v, _ = started(sumsub, top, top_shop, "K4")
    applicant_id = v.applicant.applicant_id
    pending = sumsub.submit(applicant_id)
    green = sumsub.review(applicant_id, answer="GREEN")

    assert deliver(green).status_code == 200
    assert Order.objects.get(pk=order.pk).status == "shipped"
    log_size = v.events.count()

    # Sumsub resends the same event, and the older "pending" arrives last.
    assert deliver(green).status_code == 200
    assert deliver(pending).status_code == 200

    assert SumsubInboxEvent.objects.count() == 2  # the resend is a duplicate of the stored one
    assert Verification.objects.get(pk=v.pk).status == "approved"
    assert top.ship_calls["K4"] == 1
    assert Order.objects.get(pk=order.pk).status == "shipped"
    late = SumsubInboxEvent.objects.get(topic="applicantPending")
    assert late.status == "ignored"
    assert v.events.count() == log_size


def test_an_older_event_after_a_newer_one_is_stored_and_ignored(sumsub, top, top_shop):
    order, v, _ = started(sumsub, top, top_shop, "K5")
    applicant_id = v.applicant.applicant_id
    first_pending = sumsub.submit(applicant_id)
    retry = sumsub.review(applicant_id, answer="RED", reject_type="RETRY", moderation_comment="请重拍")
    deliver(retry)
    assert Verification.objects.get(pk=v.pk).status == "retry_requested"

    deliver(first_pending)  # sent before the retry, arrives after it

    v = Verification.objects.get(pk=v.pk)
    assert v.status == "retry_requested" and v.moderation_comment == "请重拍"
    assert SumsubInboxEvent.objects.get(topic="applicantPending").status == "ignored"
    assert v.events.filter(kind="stale").count() == 1


@pytest.mark.parametrize("alg", ["HMAC_SHA1_HEX", "HMAC_SHA256_HEX", "HMAC_SHA512_HEX"])
def test_every_digest_algorithm_is_accepted(sumsub, top, top_shop, alg):
    order, v, _ = started(sumsub, top, top_shop, f"K6{alg[5:9]}")
    assert deliver(sumsub.review(v.applicant.applicant_id, answer="GREEN", alg=alg)).status_code == 200
    assert Order.objects.get(pk=order.pk).status == "shipped"


@pytest.mark.parametrize("case", ["bad-digest", "missing-digest", "wrong-secret", "unknown-alg", "tampered-body"])
def test_a_bad_digest_answers_4xx_and_changes_nothing(sumsub, top, top_shop, case):
    order, v, _ = started(sumsub, top, top_shop, "K7")
    hook = sumsub.review(v.applicant.applicant_id, answer="GREEN")
    headers = hook.django_headers()
    body = hook.body
    if case == "bad-digest":
        headers["HTTP_X_PAYLOAD_DIGEST"] = "0" * len(headers["HTTP_X_PAYLOAD_DIGEST"])
    elif case == "missing-digest":
        del headers["HTTP_X_PAYLOAD_DIGEST"]
    elif case == "wrong-secret":
        sumsub.webhook_secret = "not-our-secret"
        hook = sumsub.review(v.applicant.applicant_id, answer="GREEN")
        headers, body = hook.django_headers(), hook.body
    elif case == "unknown-alg":
        headers["HTTP_X_PAYLOAD_DIGEST_ALG"] = "HMAC_MD5_HEX"
    elif case == "tampered-body":
        body = body.replace(b'"GREEN"', b'"GREEN" ')

    resp = Client().post("/webhooks/sumsub/", data=body, content_type="application/json", **headers)

    assert 400 <= resp.status_code < 500
    assert SumsubInboxEvent.objects.count() == 0
    assert RejectedWebhook.objects.get().source == "sumsub"
    assert Verification.objects.get(pk=v.pk).status == "link_sent"
    assert Order.objects.get(pk=order.pk).status == "awaiting_kyc" and top.ship_calls["K7"] == 0


def test_an_applicant_sumsub_already_has_is_reused(sumsub, top, top_shop):
    """Sumsub answers 409 to a second create for the same external id: the existing applicant is used."""
    kyc_product(top_shop)
    order = top_paid(top, top_shop, "K8")
    v = verification_of(order)
    # Sumsub already holds this buyer (an earlier attempt created it, and its answer was lost).
    sumsub.by_external[v.applicant.external_user_id] = "a" * 24
    sumsub.applicants["a" * 24] = {"id": "a" * 24, "externalUserId": v.applicant.external_user_id,
                                   "levelName": "basic-kyc-level",
                                   "review": {"reviewStatus": "init", "levelName": "basic-kyc-level"}}

    assert open_session(v).status_code == 200

    statuses = [(r.method, r.path.split("?")[0]) for r in sumsub.requests]
    assert statuses[:2] == [("POST", "/resources/applicants"),
                            ("GET", f"/resources/applicants/-;externalUserId={v.applicant.external_user_id}/one")]
    assert Verification.objects.select_related("applicant").get(pk=v.pk).applicant.applicant_id == "a" * 24
    assert sumsub.refused == []


def test_level_names_with_reserved_characters_are_encoded_before_signing(sumsub, top, top_shop):
    from kyc.models import KycPolicy

    level = "kyc level+1@cn"
    sumsub.levels.add(level)
    product = kyc_product(top_shop)
    KycPolicy.objects.create(product=product, level_name=level)
    v = verification_of(top_paid(top, top_shop, "K9"))

    assert open_session(v).status_code == 200
    create = next(r for r in sumsub.requests if r.method == "POST" and r.path == "/resources/applicants")
    assert create.raw_query == "levelName=kyc%20level%2B1%40cn" and create.query["levelName"] == level
    assert sumsub.access_tokens[-1]["levelName"] == level and sumsub.refused == []
