"""A fake Sumsub API. It checks every request as Sumsub does (protocols/sumsub.md), written here from the
protocol text independently of kyc/clients.py: `X-App-Token` known, `X-App-Access-Ts` within ±60 s of now,
`X-App-Access-Sig` = lowercase hex HMAC-SHA256(secret, ts + METHOD + path with its query exactly as received +
body bytes); anything else answers 401 `{"description": "…", "code": 401}`.

It keeps applicants (one per externalUserId: a second create answers 409), hands out WebSDK access tokens
(`POST /resources/accessTokens/sdk`, known levels only), answers review status, lists levels, and simulates a
review with `testCompleted` (sandbox `sbx:` tokens only). Test controls play the buyer and the reviewer —
`submit()`, `review()` — and return the webhook Sumsub would send, signed with the webhook secret
(`X-Payload-Digest`, SHA-1/256/512); delivering it (or losing it) is up to the test."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

from .server import FakePlatform, Request, Response

ALGS = {"HMAC_SHA1_HEX": hashlib.sha1, "HMAC_SHA256_HEX": hashlib.sha256, "HMAC_SHA512_HEX": hashlib.sha512}
TS_WINDOW = 60


def created_at_ms(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@dataclass
class Webhook:
    """A webhook as Sumsub sends it: the exact body bytes and the headers."""

    body: bytes
    headers: dict[str, str]

    @property
    def data(self) -> dict:
        return json.loads(self.body)

    def django_headers(self) -> dict[str, str]:
        """The headers as keyword arguments for django.test.Client.post."""
        return {"HTTP_" + k.upper().replace("-", "_"): v for k, v in self.headers.items()
                if k.lower() != "content-type"}


class FakeSumsub(FakePlatform):
    def __init__(self, *, app_token: str = "sbx:fake-app-token", secret_key: str = "fake-secret-key",
                 webhook_secret: str = "fake-webhook-secret", levels=("basic-kyc-level",)):
        super().__init__()
        self.tokens = {app_token: secret_key}
        self.webhook_secret = webhook_secret
        self.levels = set(levels)
        self.applicants: dict[str, dict] = {}      # applicant id -> applicant
        self.by_external: dict[str, str] = {}      # externalUserId -> applicant id
        self.access_tokens: list[dict] = []        # every WebSDK token handed out
        self.refused: list[tuple[str, str]] = []   # (path, reason) of refused requests
        self.webhooks: list[Webhook] = []          # every webhook this fake produced, in order
        self.clock_offset = timedelta(0)           # moves `createdAtMs` with the tests' time travel
        self._last_event_at = datetime.min.replace(tzinfo=UTC)

    # --- checking ---------------------------------------------------------------------------------
    def _refuse(self, req: Request, reason: str, status: int = 401) -> Response:
        with self.lock:
            self.refused.append((req.path, reason))
        return Response(status, {"description": reason, "code": status, "correlationId": secrets.token_hex(8)})

    def _authentic(self, req: Request) -> str | None:
        token = req.headers.get("x-app-token", "")
        ts = req.headers.get("x-app-access-ts", "")
        sig = req.headers.get("x-app-access-sig", "")
        secret = self.tokens.get(token)
        if secret is None:
            return "App token is invalid"
        if not ts.isdigit() or abs(time.time() - int(ts)) > TS_WINDOW:
            return "Request timestamp is out of range"
        raw_query = req.raw_query
        path = req.path + (f"?{raw_query}" if raw_query else "")
        expected = hmac.new(secret.encode(), ts.encode() + req.method.encode() + path.encode() + req.body,
                            hashlib.sha256).hexdigest()
        if not sig or not hmac.compare_digest(expected, sig):
            return "Request signature mismatch"
        return None

    # --- the API ----------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        problem = self._authentic(req)
        if problem:
            return self._refuse(req, problem)
        path = unquote(req.path)
        if req.method == "POST" and path == "/resources/applicants":
            return self._create(req)
        if req.method == "GET" and path.startswith("/resources/applicants/-;externalUserId=") and path.endswith("/one"):
            external = path[len("/resources/applicants/-;externalUserId="):-len("/one")]
            applicant_id = self.by_external.get(external)
            if applicant_id is None:
                return Response(404, {"description": "Applicant not found", "code": 404})
            return Response(200, self.applicants[applicant_id])
        if req.method == "POST" and path == "/resources/accessTokens/sdk":
            return self._sdk_token(req)
        if req.method == "GET" and path == "/resources/applicants/-/levels":
            return Response(200, {"list": {"items": [{"id": f"lvl-{n}", "name": n} for n in sorted(self.levels)],
                                           "totalItems": len(self.levels)}})
        parts = path.strip("/").split("/")
        if len(parts) >= 4 and parts[:2] == ["resources", "applicants"] and parts[3] == "status":
            applicant = self.applicants.get(parts[2])
            if applicant is None:
                return Response(404, {"description": "Applicant not found", "code": 404})
            if req.method == "GET" and len(parts) == 4:
                return Response(200, applicant["review"])
            if req.method == "POST" and len(parts) == 5 and parts[4] == "testCompleted":
                if not req.headers.get("x-app-token", "").startswith("sbx:"):
                    return Response(400, {"description": "Only in sandbox mode", "code": 400})
                body = req.json()
                result = {k: body[k] for k in ("reviewAnswer", "rejectLabels", "reviewRejectType",
                                               "moderationComment", "clientComment") if k in body}
                self.review(parts[2], **{"answer": result.get("reviewAnswer", "GREEN"),
                                         "reject_type": result.get("reviewRejectType", ""),
                                         "labels": result.get("rejectLabels", []),
                                         "moderation_comment": result.get("moderationComment", ""),
                                         "client_comment": result.get("clientComment", "")})
                return Response(200, {"ok": 1})
        return Response(404, {"description": f"no such endpoint {req.method} {path}", "code": 404})

    def _create(self, req: Request) -> Response:
        level = req.query.get("levelName", "")
        if level not in self.levels:
            return Response(404, {"description": f"Level '{level}' not found", "code": 404})
        body = req.json()
        external = body.get("externalUserId")
        if not isinstance(external, str) or not external:
            return Response(400, {"description": "externalUserId is required", "code": 400})
        with self.lock:
            if external in self.by_external:
                existing = self.by_external[external]
                return Response(409, {"description": f"Applicant with external user id '{external}' already exists: "
                                                     f"{existing}", "code": 409, "errorCode": 1000})
            applicant_id = secrets.token_hex(12)
            applicant = {"id": applicant_id, "externalUserId": external, "levelName": level,
                         "review": {"reviewStatus": "init", "levelName": level, "attemptCnt": 0}}
            self.applicants[applicant_id] = applicant
            self.by_external[external] = applicant_id
        return Response(201, applicant)

    def _sdk_token(self, req: Request) -> Response:
        body = req.json()
        user, level, ttl = body.get("userId"), body.get("levelName"), body.get("ttlInSecs")
        if not isinstance(user, str) or not user or level not in self.levels or not isinstance(ttl, int):
            return Response(400, {"description": "userId, a known levelName and ttlInSecs are required", "code": 400})
        token = f"_act-sbx-{secrets.token_hex(16)}"
        with self.lock:
            self.access_tokens.append({"token": token, "userId": user, "levelName": level, "ttlInSecs": ttl})
        return Response(200, {"token": token, "userId": user})

    # --- playing the buyer and the reviewer ---------------------------------------------------------
    def applicant_of(self, external_user_id: str) -> str:
        return self.by_external[external_user_id]

    def _webhook(self, applicant_id: str, kind: str, *, alg: str = "HMAC_SHA256_HEX",
                 at: datetime | None = None) -> Webhook:
        applicant = self.applicants[applicant_id]
        review = applicant["review"]
        if at is None:  # Sumsub's events happen one after another: never two in the same millisecond
            at = max(datetime.now(UTC) + self.clock_offset, self._last_event_at + timedelta(milliseconds=1))
            self._last_event_at = at
        data = {"applicantId": applicant_id, "inspectionId": applicant_id, "correlationId": secrets.token_hex(12),
                "levelName": applicant["levelName"], "externalUserId": applicant["externalUserId"], "type": kind,
                "sandboxMode": True, "reviewStatus": review["reviewStatus"],
                "createdAtMs": created_at_ms(at),
                "applicantType": "individual", "clientId": "fake"}
        if kind == "applicantReviewed":
            data["reviewResult"] = review["reviewResult"]
        body = json.dumps(data, separators=(",", ":")).encode()
        digest = hmac.new(self.webhook_secret.encode(), body, ALGS[alg]).hexdigest()
        hook = Webhook(body, {"Content-Type": "application/json", "X-Payload-Digest": digest,
                              "X-Payload-Digest-Alg": alg})
        with self.lock:
            self.webhooks.append(hook)
        return hook

    def submit(self, applicant_id: str, **kwargs) -> Webhook:
        """The buyer uploaded documents: the review is pending; returns applicantPending."""
        review = self.applicants[applicant_id]["review"]
        review.update(reviewStatus="pending", attemptCnt=review.get("attemptCnt", 0) + 1)
        review.pop("reviewResult", None)
        return self._webhook(applicant_id, "applicantPending", **kwargs)

    def review(self, applicant_id: str, *, answer: str = "GREEN", reject_type: str = "", labels=(),
               moderation_comment: str = "", client_comment: str = "", **kwargs) -> Webhook:
        """The review finished; returns applicantReviewed."""
        result = {"reviewAnswer": answer}
        if answer == "RED":
            result.update(reviewRejectType=reject_type or "RETRY", rejectLabels=list(labels),
                          moderationComment=moderation_comment, clientComment=client_comment)
        review = self.applicants[applicant_id]["review"]
        review.update(reviewStatus="completed", reviewResult=result,
                      reviewDate=created_at_ms(datetime.now(UTC) + self.clock_offset)[:19])
        return self._webhook(applicant_id, "applicantReviewed", **kwargs)
