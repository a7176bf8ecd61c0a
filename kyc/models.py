"""KYC rows (DESIGN.md §3): the per-product policy, one Sumsub applicant per buyer, the `Verification`
machine with its own log, the Sumsub webhook inbox, and messages to the buyer through the platform's chat.

A Verification's life:

    created ─► link_sent ─► pending ─► approved                       (GREEN: the order is released)
                   │  ▲         │  └─► retry_requested ─► pending …    (RED + RETRY: the link stays valid)
                   │  └─────────┤  └─► rejected                        (RED + FINAL: the order is closed)
                   ├────────────┴────► expired                         (no result within the link's lifetime)
                   └─────────────────► cancelled                       (the order was closed or refunded)

Staff may override any result but `cancelled` with a written reason (approved or rejected).

The work a verification still needs — the halfway reminder, expiry, asking Sumsub for a result that did not
arrive, closing the order on the platform — is due work held on the row (common.due): `work_state`,
`due_at`, `lease_until`, `work_attempts`, separate from the FSM status.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from accounts.models import BuyerIdentity
from common.models import InboxEvent
from orders.models import Order, Product


def new_token() -> str:
    """256 random bits, URL-safe: the buyer's credential for /verify/<token>/."""
    return secrets.token_urlsafe(32)


def new_external_user_id() -> str:
    """Our id of a buyer at Sumsub: random, stable once stored, and meaningless outside this database."""
    return f"xo-{secrets.token_hex(16)}"


class ExpiryAction(models.TextChoices):
    CLOSE = "close", _("Close the order")
    STAFF = "staff", _("Hand the order to staff")


class KycPolicy(models.Model):
    """How a product that needs KYC (`Product.needs_kyc`) is verified; blank fields take the settings."""

    product = models.OneToOneField(Product, verbose_name=_("product"), on_delete=models.CASCADE,
                                   related_name="kyc_policy")
    level_name = models.CharField(_("Sumsub level"), max_length=128, blank=True,
                                  help_text=_("Blank: SUMSUB_LEVEL_NAME."))
    validity_days = models.PositiveIntegerField(
        _("approval valid for (days)"), null=True, blank=True, validators=[MaxValueValidator(3650)],
        help_text=_("A buyer approved at this level within this many days is not asked again. Blank: "
                    "KYC_VALIDITY_DAYS."))
    link_ttl_hours = models.PositiveIntegerField(_("link lifetime (hours)"), null=True, blank=True,
                                                 validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
                                                 help_text=_("Blank: KYC_LINK_TTL_HOURS."))
    expiry_action = models.CharField(_("when the link expires"), max_length=8, choices=ExpiryAction.choices,
                                     blank=True, help_text=_("Blank: KYC_EXPIRY_ACTION."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("KYC policy")
        verbose_name_plural = _("KYC policies")

    def __str__(self):
        return f"{self.product} → {self.level_name or settings.SUMSUB_LEVEL_NAME}"


class KycApplicant(models.Model):
    """One Sumsub applicant per buyer. `external_user_id` is what Sumsub knows us by: never a platform id."""

    buyer = models.OneToOneField(BuyerIdentity, verbose_name=_("buyer"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="kyc_applicant")
    external_user_id = models.CharField(_("external user id"), max_length=64, unique=True,
                                        default=new_external_user_id, editable=False)
    applicant_id = models.CharField(_("Sumsub applicant id"), max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("KYC applicant")
        verbose_name_plural = _("KYC applicants")

    def __str__(self):
        return self.applicant_id or self.external_user_id


class VerificationStatus(models.TextChoices):
    CREATED = "created", _("created")
    LINK_SENT = "link_sent", _("link sent")
    PENDING = "pending", _("submitted, under review")
    APPROVED = "approved", _("approved")
    RETRY_REQUESTED = "retry_requested", _("resubmission requested")
    REJECTED = "rejected", _("rejected (final)")
    EXPIRED = "expired", _("expired")
    CANCELLED = "cancelled", _("cancelled")


V = VerificationStatus
OPEN = [V.CREATED, V.LINK_SENT, V.PENDING, V.RETRY_REQUESTED]
# States a buyer can still act in (open the page, upload documents).
ACTIONABLE = [V.CREATED, V.LINK_SENT, V.RETRY_REQUESTED]
OVERRIDABLE = [*OPEN, V.REJECTED, V.EXPIRED]


class WorkState(models.TextChoices):
    IDLE = "idle", _("nothing due")
    WAITING = "waiting", _("waiting")
    BUSY = "busy", _("in progress")


class Closure(models.TextChoices):
    NONE = "", _("—")
    DUE = "due", _("to close on the platform")
    STAFF = "staff", _("waiting for staff to close it")
    DONE = "done", _("closed")


class Verification(ConcurrentTransitionMixin, models.Model):
    order = models.ForeignKey(Order, verbose_name=_("order"), on_delete=models.CASCADE,
                              related_name="kyc_verifications")
    applicant = models.ForeignKey(KycApplicant, verbose_name=_("applicant"), on_delete=models.PROTECT,
                                  related_name="verifications")
    level_name = models.CharField(_("Sumsub level"), max_length=128)
    token = models.CharField(_("link token"), max_length=64, unique=True, default=new_token, editable=False)
    status = FSMField(_("status"), max_length=20, choices=VerificationStatus.choices, default=V.CREATED,
                      protected=True, db_index=True)
    expires_at = models.DateTimeField(_("link expires at"))
    remind_at = models.DateTimeField(_("reminder due at"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded at"), null=True, blank=True)
    opened_at = models.DateTimeField(_("first opened at"), null=True, blank=True,
                                     help_text=_("When the page first started a Sumsub session."))
    next_check_at = models.DateTimeField(_("next status check at"), null=True, blank=True)
    checked_at = models.DateTimeField(_("last status check at"), null=True, blank=True)
    review_status = models.CharField(_("Sumsub review status"), max_length=32, blank=True)
    review_answer = models.CharField(_("review answer"), max_length=8, blank=True)
    reject_type = models.CharField(_("reject type"), max_length=8, blank=True)
    reject_labels = models.JSONField(_("reject labels"), default=list, blank=True)
    moderation_comment = models.TextField(_("comment for the buyer"), blank=True)
    client_comment = models.TextField(_("internal comment"), blank=True)
    last_event_at = models.DateTimeField(_("time of the last Sumsub event applied"), null=True, blank=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    expiry_action = models.CharField(_("when the link expires"), max_length=8, choices=ExpiryAction.choices,
                                     default=ExpiryAction.CLOSE)
    closure = models.CharField(_("closing the order"), max_length=8, choices=Closure.choices, blank=True,
                               default=Closure.NONE, db_index=True)
    close_attempts = models.PositiveSmallIntegerField(_("close attempts"), default=0)
    needs_staff = models.BooleanField(_("needs staff"), default=False, db_index=True)
    staff_reason = models.CharField(_("why staff are needed"), max_length=255, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    work_state = models.CharField(_("due work"), max_length=8, choices=WorkState.choices, default=WorkState.IDLE)
    due_at = models.DateTimeField(_("work due at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("work lease until"), null=True, blank=True)
    work_attempts = models.PositiveIntegerField(_("work attempts"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("KYC verification")
        verbose_name_plural = _("KYC verifications")
        ordering = ["-created_at", "-id"]
        permissions = [("override_verification", _("Can override a KYC result with a written reason"))]
        constraints = [
            models.UniqueConstraint(fields=["order"], condition=models.Q(status__in=OPEN),
                                    name="kyc_one_open_verification_per_order"),
        ]
        indexes = [models.Index(fields=["work_state", "due_at"], name="kyc_verification_due")]

    def __str__(self):
        return f"{self.order} [{self.get_status_display()}]"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def path(self) -> str:
        from django.urls import reverse

        return reverse("kyc:verify", args=[self.token])

    @property
    def url(self) -> str:
        return f"{settings.PUBLIC_BASE_URL}{self.path}"

    # Transitions only move the state; kyc.services sets the fields and does the side effects.
    @transition(field=status, source=V.CREATED, target=V.LINK_SENT)
    def send_link(self):
        pass

    @transition(field=status, source=[V.CREATED, V.LINK_SENT, V.RETRY_REQUESTED], target=V.PENDING)
    def submit(self):
        pass

    @transition(field=status, source=OVERRIDABLE, target=V.APPROVED)
    def approve(self):
        """From rejected or expired only by a staff override (services check who asks)."""

    @transition(field=status, source=OPEN, target=V.RETRY_REQUESTED)
    def request_retry(self):
        pass

    @transition(field=status, source=OVERRIDABLE, target=V.REJECTED)
    def reject(self):
        """From expired only by a staff override."""

    @transition(field=status, source=OPEN, target=V.EXPIRED)
    def expire(self):
        pass

    @transition(field=status, source=OPEN, target=V.CANCELLED)
    def cancel(self):
        pass


class VerificationEvent(models.Model):
    """Append-only log of one verification: what Sumsub said, what the buyer and staff did, what we did."""

    class Actor(models.TextChoices):
        SYSTEM = "system", _("system")
        SUMSUB = "sumsub", _("Sumsub")
        BUYER = "buyer", _("buyer")
        STAFF = "staff", _("staff")

    verification = models.ForeignKey(Verification, verbose_name=_("verification"), on_delete=models.CASCADE,
                                     related_name="events")
    kind = models.CharField(_("kind"), max_length=32)
    from_status = models.CharField(_("from"), max_length=20, blank=True)
    to_status = models.CharField(_("to"), max_length=20, blank=True)
    actor = models.CharField(_("actor"), max_length=8, choices=Actor.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("staff member"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="+")
    message = models.CharField(_("message"), max_length=500, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("KYC verification event")
        verbose_name_plural = _("KYC verification events")
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.verification_id}: {self.kind}"


class SumsubInboxEvent(InboxEvent):
    """Sumsub webhooks, stored before processing (key: sha256 of the body, so a resend is a duplicate)."""

    applicant_id = models.CharField(_("Sumsub applicant id"), max_length=64, blank=True, db_index=True)

    class Meta(InboxEvent.Meta):
        verbose_name = _("Sumsub webhook")
        verbose_name_plural = _("Sumsub webhooks")
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="sumsub_inbox_unique_key")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="sumsub_inbox_due")]


class BuyerMessage(models.Model):
    """A text to the buyer through the platform's own chat (`adapter.message_buyer`), as due work. Not
    idempotent on the platform's side: an attempt whose outcome is unknown is left `unknown`, never resent."""

    class Kind(models.TextChoices):
        LINK = "link", _("verification link")
        RETRY = "retry", _("resubmission requested")
        REMINDER = "reminder", _("reminder")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")
        RETRY_WAIT = "retry_wait", _("waiting to retry")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        UNKNOWN = "unknown", _("outcome unknown")

    verification = models.ForeignKey(Verification, verbose_name=_("verification"), on_delete=models.CASCADE,
                                     related_name="buyer_messages")
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    text = models.TextField(_("text"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message to the buyer")
        verbose_name_plural = _("messages to the buyer")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "due_at"], name="kyc_buyermsg_due")]

    def __str__(self):
        return f"{self.verification_id} {self.kind} [{self.status}]"
