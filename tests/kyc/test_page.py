"""The verify page and its endpoints: states as the buyer sees them, strict headers, hostile input, and the
sandbox switched off where it must be."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client

from common.models import RejectedWebhook
from kyc.models import SumsubInboxEvent, Verification
from kyc.services import DEV_WEBHOOK_SECRET

from .conftest import kyc_product, open_session, sandbox_paid, verification_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def v(no_sumsub, sandbox_shop, django_capture_on_commit_callbacks):
    kyc_product(sandbox_shop)
    return verification_of(sandbox_paid(sandbox_shop, "P1"))


def test_headers_are_strict(v):
    resp = Client().get(f"/verify/{v.token}/")
    assert resp.status_code == 200
    policy = resp["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["script-src"].startswith("'nonce-") and "https://static.sumsub.com" in directives["script-src"]
    assert "unsafe" not in directives["script-src"] and "unsafe" not in directives["style-src"]
    assert "unsafe-eval" not in policy
    assert set(directives["frame-src"].split()) <= {"https://static.sumsub.com", "https://api.sumsub.com",
                                                   "https://*.sumsub.com"}
    nonce = directives["script-src"].split()[0][len("'nonce-"):-1]
    assert f'<script nonce="{nonce}">' in resp.content.decode()
    assert "no-store" in resp["Cache-Control"]
    assert resp["Referrer-Policy"] == "no-referrer"
    assert resp["X-Frame-Options"] == "DENY"
    assert resp["X-Content-Type-Options"] == "nosniff"
    other = Client().get(f"/verify/{v.token}/")["Content-Security-Policy"]
    assert other != policy  # a fresh nonce every time


def test_sandbox_page_shows_the_buttons_and_no_sumsub(v):
    html = Client().get(f"/verify/{v.token}/").content.decode()
    assert "本地沙箱" in html and "模拟审核通过" in html and "模拟最终拒绝" in html
    assert "sns-websdk-builder" not in html


def test_sumsub_page_loads_the_websdk(sumsub, sandbox_shop):
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "P2"))
    html = Client().get(f"/verify/{v.token}/").content.decode()
    assert 'src="https://static.sumsub.com/idensic/static/sns-websdk-builder.js"' in html
    assert 'id="sumsub-websdk-container"' in html and "本地沙箱" not in html
    assert f'data-token-url="/verify/{v.token}/token/"' in html


def test_a_nul_byte_in_the_link_is_a_plain_400(v):
    resp = Client().get("/verify/abc%00def/")
    assert resp.status_code == 400 and "不允许的字符" in resp.content.decode()
    assert Client().post("/verify/abc%00def/token/").status_code == 400


@pytest.mark.parametrize("token", ["x" * 65, "nope", "%F0%9F%98%80" * 3, "%ED%A0%80", "a%2Bb"])
def test_unknown_or_hostile_tokens_are_a_plain_404(v, token):
    resp = Client().get(f"/verify/{token}/")
    assert resp.status_code == 404 and "链接无效" in resp.content.decode()
    assert resp["X-Frame-Options"] == "DENY"
    assert Client().post(f"/verify/{token}/token/").status_code == 404
    assert Client().get(f"/verify/{token}/status/").status_code == 404


def test_a_path_outside_the_pattern_is_still_a_404(v):
    assert Client().get("/verify/..%2F..%2Fadmin/").status_code == 404


def test_status_endpoint_reports_the_state(v):
    assert Client().get(f"/verify/{v.token}/status/").json()["state"] == "open"


def test_sandbox_refuses_unknown_answers(v):
    resp = Client().post(f"/verify/{v.token}/sandbox/", {"answer": "approve\x00"})
    assert resp.status_code == 400
    assert Verification.objects.get(pk=v.pk).status == "link_sent"


def test_without_sumsub_and_without_sandbox_nothing_can_be_faked(settings, sandbox_shop):
    settings.SUMSUB_APP_TOKEN = settings.SUMSUB_SECRET_KEY = settings.SUMSUB_WEBHOOK_SECRET = ""
    settings.KYC_SANDBOX = False  # production without Sumsub credentials
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "P3"))

    html = Client().get(f"/verify/{v.token}/").content.decode()
    assert "认证服务暂不可用" in html and "模拟审核通过" not in html
    assert open_session(v).status_code == 503
    assert Client().post(f"/verify/{v.token}/sandbox/", {"answer": "approve"}).status_code == 404
    # The development webhook secret is worthless here.
    body = json.dumps({"type": "applicantReviewed", "externalUserId": v.applicant.external_user_id,
                       "reviewResult": {"reviewAnswer": "GREEN"}}).encode()
    digest = hmac.new(DEV_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = Client().post("/webhooks/sumsub/", data=body, content_type="application/json",
                         HTTP_X_PAYLOAD_DIGEST=digest)
    assert resp.status_code == 503
    assert SumsubInboxEvent.objects.count() == 0 and RejectedWebhook.objects.count() == 1
    assert Verification.objects.get(pk=v.pk).status == "link_sent"


def signed(body: bytes, secret: str = DEV_WEBHOOK_SECRET) -> dict:
    return {"HTTP_X_PAYLOAD_DIGEST": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "HTTP_X_PAYLOAD_DIGEST_ALG": "HMAC_SHA256_HEX"}


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'{"no": "type"}', b'{"type": 5}', b'{"type": "applicantReviewed", "x": "a\\u0000b"}',
    b'{"type": "applicantReviewed", "x": "\\ud800"}', b'{"type": "applicant\x00Reviewed"}', b"\xff\xfe",
])
def test_signed_but_unstorable_bodies_are_a_plain_400(v, body):
    resp = Client().post("/webhooks/sumsub/", data=body, content_type="application/json", **signed(body))
    assert resp.status_code == 400
    assert "Traceback" not in resp.content.decode()
    assert SumsubInboxEvent.objects.count() == 0


def test_unknown_event_types_are_stored_and_ignored(v, django_capture_on_commit_callbacks):
    body = json.dumps({"type": "applicantTagsChanged", "applicantId": "a1", "createdAtMs": "2026-01-01 00:00:00.000",
                       "levelName": "basic-kyc-level"}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        resp = Client().post("/webhooks/sumsub/", data=body, content_type="application/json", **signed(body))
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    event = SumsubInboxEvent.objects.get()
    assert event.topic == "applicantTagsChanged" and event.status == "ignored"
    assert Verification.objects.get(pk=v.pk).status == "link_sent"


def test_oversized_webhooks_are_refused_before_parsing(v, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    body = json.dumps({"type": "applicantReviewed", "pad": "x" * 2000}).encode()
    resp = Client().post("/webhooks/sumsub/", data=body, content_type="application/json", **signed(body))
    assert resp.status_code == 413 and SumsubInboxEvent.objects.count() == 0


def test_the_page_is_chinese_whatever_language_the_visitor_chose(v):
    """Buyer content: an English browser, or staff who switched their admin to English, see the same page."""
    client = Client()
    client.cookies["django_language"] = "en"
    resp = client.get(f"/verify/{v.token}/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    html = resp.content.decode()
    assert resp.status_code == 200 and resp["Content-Language"] == "zh-hans"
    assert '<html lang="zh-CN">' in html and "请完成实名认证" in html
    status = client.get(f"/verify/{v.token}/status/")
    assert status["Content-Language"] == "zh-hans" and status.json()["checked_at"].endswith("+08:00")
