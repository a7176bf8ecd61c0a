"""The local KYC sandbox: without Sumsub credentials (and with KYC_SANDBOX on), the verify page offers
approve / retry / reject buttons in place of the WebSDK. Each press plays Sumsub: it builds the events Sumsub
would send (applicantPending, then applicantReviewed), signs each body with the webhook secret exactly as
Sumsub does (X-Payload-Digest, HMAC-SHA256 hex) and POSTs it to our own `/webhooks/sumsub/`, so the whole
flow — inbox, worker, order release or close — runs as it would against Sumsub."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import requests

from .models import KycApplicant, Verification
from .services import KycError, webhook_secret
from .sessions import mark_opened, usable
from .webhooks import payload_digest

ANSWERS = {
    "approve": {"reviewAnswer": "GREEN", "rejectLabels": []},
    "retry": {"reviewAnswer": "RED", "reviewRejectType": "RETRY", "rejectLabels": ["UNSATISFACTORY_PHOTOS"],
              "moderationComment": "证件照片不清晰，请在光线充足处重新拍摄证件正面，确保四角完整、文字清楚。",
              "clientComment": "sandbox: retry"},
    "reject": {"reviewAnswer": "RED", "reviewRejectType": "FINAL", "rejectLabels": ["FORGERY"],
               "moderationComment": "证件未能通过核验。", "clientComment": "sandbox: final rejection"},
}
COMMENT_MAX = 300


def sumsub_time(dt: datetime) -> str:
    """Sumsub's `createdAtMs` format: "yyyy-MM-dd HH:mm:ss.SSS" in UTC."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _event(v: Verification, applicant: KycApplicant, kind: str, at: datetime, result: dict | None) -> dict:
    body = {"applicantId": applicant.applicant_id, "inspectionId": applicant.applicant_id,
            "correlationId": f"sandbox-{uuid.uuid4().hex}", "levelName": v.level_name,
            "externalUserId": applicant.external_user_id, "type": kind, "sandboxMode": True,
            "reviewStatus": "completed" if result else "pending", "createdAtMs": sumsub_time(at),
            "applicantType": "individual", "clientId": "xianyu-ops-sandbox"}
    if result:
        body["reviewResult"] = result
    return body


def signed_post(url: str, body: dict, *, alg: str = "HMAC_SHA256_HEX") -> requests.Response:
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "X-Payload-Digest": payload_digest(webhook_secret(), raw, alg),
               "X-Payload-Digest-Alg": alg}
    return requests.post(url, data=raw, headers=headers, timeout=(3, 30))


def sandbox_review(v: Verification, *, answer: str, comment: str = "", webhook_url: str) -> None:
    """Send Sumsub-shaped, signed webhooks for this verification's result to `webhook_url`."""
    if answer not in ANSWERS:
        raise KycError("unknown answer")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX or "\x00" in comment or any(0xD800 <= ord(c) <= 0xDFFF for c in comment):
        raise KycError("审核意见过长或包含无效字符")
    usable(v)
    applicant = v.applicant
    if not applicant.applicant_id:
        KycApplicant.objects.filter(pk=applicant.pk, applicant_id="").update(
            applicant_id=f"sandbox-{secrets.token_hex(12)}")
        applicant = KycApplicant.objects.get(pk=applicant.pk)
    mark_opened(v.pk, mode="本地沙箱")
    result = dict(ANSWERS[answer])
    if comment and answer != "approve":
        result["moderationComment"] = comment
    now = datetime.now(UTC)
    for body in (_event(v, applicant, "applicantPending", now, None),
                 _event(v, applicant, "applicantReviewed", now + timedelta(milliseconds=1), result)):
        try:
            resp = signed_post(webhook_url, body)
        except requests.RequestException as exc:
            raise KycError(f"沙箱回调发送失败：{exc.__class__.__name__}") from exc
        if resp.status_code >= 300:
            raise KycError(f"沙箱回调被拒绝：HTTP {resp.status_code}")
