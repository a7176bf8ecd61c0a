"""`POST /webhooks/sumsub/` (protocols/sumsub.md): digest checked before anything is parsed, inbox first,
processed on commit.

Authenticity: `X-Payload-Digest` is the hex HMAC of the raw body under SUMSUB_WEBHOOK_SECRET with the
algorithm named by `X-Payload-Digest-Alg` (HMAC_SHA256_HEX by default, HMAC_SHA512_HEX, or the legacy
HMAC_SHA1_HEX), compared in constant time. A missing or wrong digest answers 401 and stores only a
rejected-call record; an unconfigured secret answers 503 (Sumsub retries once we are configured).

Storage key: sha256 of the body, so Sumsub's resends of one event are duplicates. Handling (the worker):
events are applied per verification in `createdAtMs` order (`verification.last_event_at`): an older one
is stored and ignored; types we do not act on are stored and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from common.inbox import Ignored, Verdict, receive

from .models import OPEN, KycApplicant, SumsubInboxEvent, Verification
from .services import SUBMITTED_STATUSES, Review, verification_apply, webhook_secret
from .tasks import process_sumsub_event

SOURCE = "sumsub"
DIGEST_ALGS = {"HMAC_SHA1_HEX": hashlib.sha1, "HMAC_SHA256_HEX": hashlib.sha256, "HMAC_SHA512_HEX": hashlib.sha512}
HEX = set("0123456789abcdefABCDEF")
# What each event type means for a verification; every other type is stored and ignored.
KINDS = {"applicantPending": "pending", "applicantReviewed": "reviewed", "applicantOnHold": "on_hold",
         "applicantReset": "reset", "applicantCreated": "created"}


def payload_digest(secret: str, body: bytes, alg: str = "HMAC_SHA256_HEX") -> str:
    return hmac.new(secret.encode(), body, DIGEST_ALGS[alg]).hexdigest()


def _clean(value, depth: int = 0) -> bool:
    """No NUL characters or lone surrogates anywhere (they break storage), bounded nesting."""
    if depth > 20:
        return False
    if isinstance(value, str):
        return "\x00" not in value and not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, dict):
        return all(_clean(k, depth + 1) and _clean(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v, depth + 1) for v in value)
    return True


def verify(request, body: bytes) -> Verdict:
    secret = webhook_secret()
    if not secret:
        return Verdict.reject("SUMSUB_WEBHOOK_SECRET is not configured", status=503)
    digest = request.headers.get("X-Payload-Digest", "")
    alg = request.headers.get("X-Payload-Digest-Alg", "") or "HMAC_SHA256_HEX"
    if alg not in DIGEST_ALGS:
        return Verdict.reject("unsupported X-Payload-Digest-Alg", status=400)
    if not digest or len(digest) > 256 or not set(digest) <= HEX:
        return Verdict.reject("missing or malformed X-Payload-Digest", status=401)
    if not hmac.compare_digest(payload_digest(secret, body, alg).encode(), digest.lower().encode()):
        return Verdict.reject("bad digest", status=401)
    # Signed by Sumsub from here on; still checked, because what is stored must be storable.
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Verdict.reject("body is not JSON", status=400)
    if not isinstance(data, dict) or not isinstance(data.get("type"), str) or not data["type"]:
        return Verdict.reject("body is not a Sumsub event", status=400)
    if b"\x00" in body or not _clean(data):
        return Verdict.reject("body holds characters that cannot be stored", status=400)
    applicant_id = data.get("applicantId")
    return Verdict(ok=True, key="sha256:" + hashlib.sha256(body).hexdigest(), topic=data["type"][:64],
                   fields={"applicant_id": applicant_id[:64] if isinstance(applicant_id, str) else ""})


@csrf_exempt
def sumsub_webhook(request):
    return receive(request, model=SumsubInboxEvent, source=SOURCE, verify=verify, task=process_sumsub_event,
                   success=lambda: JsonResponse({"ok": True}), headers=("HTTP_X_PAYLOAD_DIGEST_ALG",))


# --- processing (the worker) ------------------------------------------------------------------------------


def parse_created_at(value) -> datetime | None:
    """`createdAtMs`: "yyyy-MM-dd HH:mm:ss.SSS" in UTC (milliseconds since the epoch are accepted too)."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _applicant(data: dict) -> KycApplicant | None:
    applicant_id, external = data.get("applicantId"), data.get("externalUserId")
    if isinstance(applicant_id, str) and applicant_id:
        found = KycApplicant.objects.filter(applicant_id=applicant_id).first()
        if found:
            return found
    if isinstance(external, str) and external:
        found = KycApplicant.objects.filter(external_user_id=external).first()
        if found and isinstance(applicant_id, str) and applicant_id and not found.applicant_id:
            KycApplicant.objects.filter(pk=found.pk, applicant_id="").update(applicant_id=applicant_id[:64])
        return found
    return None


def sumsub_event_handle(event: SumsubInboxEvent) -> str:
    """Apply one stored Sumsub event to every open verification of its applicant at its level."""
    data = json.loads(event.body)
    kind = KINDS.get(str(data.get("type")))
    if kind is None:
        raise Ignored(f"type {data.get('type')!r} is not acted on")
    applicant = _applicant(data)
    if applicant is None:
        raise Ignored("no applicant of ours")
    if kind == "created":
        return f"applicant {applicant.pk} known"
    event_at = parse_created_at(data.get("createdAtMs")) or event.received_at
    level = data.get("levelName") if isinstance(data.get("levelName"), str) else ""
    review_status = str(data.get("reviewStatus") or "")
    review = Review.from_result(data.get("reviewResult") or {}, review_status or "completed")
    if kind == "reviewed" and review is None:
        raise Ignored("applicantReviewed without a usable reviewResult")
    if kind == "on_hold" and review_status not in SUBMITTED_STATUSES:
        review_status = "onHold"
    # Only open verifications: a decided one (approved, rejected…) is not moved by any later or older event.
    qs = Verification.objects.filter(applicant=applicant, status__in=OPEN)
    if level:
        qs = qs.filter(level_name=level)
    ids = list(qs.order_by("pk").values_list("pk", flat=True))
    if not ids:
        raise Ignored("no open verification for this applicant and level")
    info = {"type": data.get("type"), "createdAtMs": str(data.get("createdAtMs") or ""), "inbox": event.pk}
    outcomes = [verification_apply(verification_id=pk, kind=kind, event_at=event_at, review=review,
                                   review_status=review_status, data=info) for pk in ids]
    if all(o in ("stale", "final") for o in outcomes):
        raise Ignored(f"stale: {', '.join(outcomes)}")
    return ", ".join(f"{pk}:{o}" for pk, o in zip(ids, outcomes, strict=True))
