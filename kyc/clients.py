"""Sumsub API client (protocols/sumsub.md) on common's signed client.

Every call carries `X-App-Token`, `X-App-Access-Ts` (Unix seconds) and `X-App-Access-Sig`, the lowercase hex
HMAC-SHA256 of `ts + METHOD + path_with_query + body` under the secret key, where `path_with_query` is the
path plus the percent-encoded query exactly as sent and `body` the exact bytes sent (empty when there is
none). Identifiers that go into a path or a query (`externalUserId`, `levelName`) are percent-encoded
before signing, so `@`, `+` and spaces sign the same bytes that travel.

Errors come from `SignedClient.send`: 401/403 raise ConfigurationError (token or signature refused), 5xx,
429 and transport failures are retryable; any other 4xx is a PlatformError carrying the HTTP status (409 on
a duplicate applicant is handled here: the existing applicant is reused)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

from django.conf import settings

from common.http import ConfigurationError, PlatformError, SignedClient

SANDBOX_TOKEN_PREFIX = "sbx:"


def sumsub_signature(secret: str, ts: str, method: str, path_with_query: str, body: bytes) -> str:
    message = ts.encode() + method.upper().encode() + path_with_query.encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _enc(value: str) -> str:
    """Percent-encode one path segment or query value (RFC 3986: nothing but unreserved characters kept)."""
    return quote(str(value), safe="")


def _query(params: dict[str, Any]) -> str:
    return "&".join(f"{_enc(k)}={_enc(v)}" for k, v in params.items() if v is not None)


def sumsub_configured() -> bool:
    return bool(settings.SUMSUB_APP_TOKEN and settings.SUMSUB_SECRET_KEY)


def is_sandbox_token(app_token: str | None = None) -> bool:
    return (app_token if app_token is not None else settings.SUMSUB_APP_TOKEN).startswith(SANDBOX_TOKEN_PREFIX)


class SumsubClient(SignedClient):
    platform = "Sumsub"

    def __init__(self, app_token: str | None = None, secret_key: str | None = None, **kwargs):
        kwargs.setdefault("base_url", settings.SUMSUB_BASE_URL)
        super().__init__(**kwargs)
        self.app_token = settings.SUMSUB_APP_TOKEN if app_token is None else app_token
        self.secret_key = settings.SUMSUB_SECRET_KEY if secret_key is None else secret_key

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                payload: dict[str, Any] | None = None) -> Any:
        if not (self.app_token and self.secret_key):
            raise ConfigurationError("Sumsub: SUMSUB_APP_TOKEN and SUMSUB_SECRET_KEY are not set")
        path_with_query = path + (f"?{_query(params)}" if params else "")
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        headers = {
            "Accept": "application/json",
            "X-App-Token": self.app_token,
            "X-App-Access-Ts": ts,
            "X-App-Access-Sig": sumsub_signature(self.secret_key, ts, method, path_with_query, body),
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        resp = self.send(method, f"{self.base_url}{path_with_query}", data=body or None, headers=headers)
        if not resp.content:
            return {}
        return self.json_of(resp, self.platform)

    # --- applicants ----------------------------------------------------------------------------------
    def create_applicant(self, *, external_user_id: str, level_name: str) -> str:
        """The applicant id for our external user id: created, or the existing one on a duplicate (409)."""
        try:
            answer = self.request("POST", "/resources/applicants", params={"levelName": level_name},
                                  payload={"externalUserId": external_user_id})
        except PlatformError as exc:
            if exc.status != 409:
                raise
            answer = self.applicant_by_external_id(external_user_id)
        applicant_id = str((answer or {}).get("id") or "") if isinstance(answer, dict) else ""
        if not applicant_id:
            raise PlatformError("Sumsub: no applicant id in the answer", payload=answer, retryable=True)
        return applicant_id

    def applicant_by_external_id(self, external_user_id: str) -> dict:
        answer = self.request("GET", f"/resources/applicants/-;externalUserId={_enc(external_user_id)}/one")
        if not isinstance(answer, dict):
            raise PlatformError("Sumsub: unexpected applicant answer", payload=answer, retryable=True)
        return answer

    def sdk_access_token(self, *, external_user_id: str, level_name: str, ttl_seconds: int) -> str:
        answer = self.request("POST", "/resources/accessTokens/sdk", payload={
            "userId": external_user_id, "levelName": level_name, "ttlInSecs": int(ttl_seconds)})
        token = answer.get("token") if isinstance(answer, dict) else None
        if not token or not isinstance(token, str):
            raise PlatformError("Sumsub: no access token in the answer", payload=answer, retryable=True)
        return token

    def review_status(self, applicant_id: str) -> dict:
        """`reviewStatus`, `reviewResult`, `levelName`, `reviewDate` … of the applicant's current review."""
        answer = self.request("GET", f"/resources/applicants/{_enc(applicant_id)}/status")
        if not isinstance(answer, dict):
            raise PlatformError("Sumsub: unexpected status answer", payload=answer, retryable=True)
        return answer

    def test_completed(self, applicant_id: str, *, review_answer: str, reject_type: str = "",
                       labels: list[str] | None = None, moderation_comment: str = "",
                       client_comment: str = "") -> None:
        """Sandbox only: make Sumsub finish the applicant's review as GREEN or RED (it then sends the
        applicantReviewed webhook like a real review)."""
        if not is_sandbox_token(self.app_token):
            raise ConfigurationError("Sumsub: testCompleted needs a sandbox app token (sbx:…)")
        payload: dict[str, Any] = {"reviewAnswer": review_answer, "rejectLabels": list(labels or [])}
        if review_answer == "RED":
            payload["reviewRejectType"] = reject_type or "RETRY"
            if moderation_comment:
                payload["moderationComment"] = moderation_comment
            if client_comment:
                payload["clientComment"] = client_comment
        self.request("POST", f"/resources/applicants/{_enc(applicant_id)}/status/testCompleted", payload=payload)

    def level_names(self) -> list[str]:
        """Names of the verification levels this app token can use."""
        answer = self.request("GET", "/resources/applicants/-/levels")
        items = []
        if isinstance(answer, dict):
            block = answer.get("list") if isinstance(answer.get("list"), dict) else answer
            items = block.get("items") or []
        return [str(i.get("name")) for i in items if isinstance(i, dict) and i.get("name")]
