"""Merchants we act for as an Alipay ISV, their face-to-face (当面付) applications, and the log of every
Alipay answer.

An application's life (django-fsm, `status`; every move is a method below, `payments.services.onboarding`
decides which one):

    init ─submit─► submitting ─confirm ok─► submitted ─► auditing ─► awaiting_confirmation ─► success
      ▲                │                        │            │                 │
      └── refused ─────┘                        ├────────────┴─► held (MERCHANT_INFO_HOLD: fix, resubmit)
                                                ├─► closed (rejected or cancelled)      └─► timed_out
    held / timed_out ─resubmit─► submitting

`submitting` is the three Alipay calls (create → facetoface.sign → confirm); `submit_step` says which call
comes next, so a submission cut short at any step has a state that says so and a due time that finishes it.

Due work (common.due): an application that has something to do next — a submission step, a status query —
is `work_state=waiting` with `due_at`; a worker holding it is `busy` until `lease_until`. The schedule
(first query 5 minutes after submitting, then every 4 hours) comes from settings.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from common.fields import EncryptedTextField

from .. import validators as v


class Work(models.TextChoices):
    """Due-work state of a row (common.due): nothing to do, waiting for `due_at`, held by a worker."""

    IDLE = "idle", _("Nothing due")
    WAITING = "waiting", _("Due")
    BUSY = "busy", _("In progress")


class TokenState(models.TextChoices):
    NONE = "none", _("No authorisation")
    ACTIVE = "active", _("Authorised")
    REFRESHING = "refreshing", _("Refreshing")
    EXPIRED = "expired", _("Expired: authorise again")


class Merchant(models.Model):
    """A merchant we onboard and trade for. Its app authorisation token lets us call Alipay on its behalf;
    it is refreshed before it expires (due work on `token_state` / `token_refresh_at`)."""

    name = models.CharField(_("merchant name"), max_length=128)
    alipay_account = models.CharField(
        _("Alipay account"), max_length=100,
        help_text=_("The merchant's Alipay login (e-mail or mobile) or its 2088… PID."))
    contact_name = models.CharField(_("contact name"), max_length=64)
    contact_mobile = EncryptedTextField(_("contact mobile"), blank=True, default="", validators=[v.mobile])
    contact_email = EncryptedTextField(_("contact e-mail"), blank=True, default="", validators=[EmailValidator()])
    shop = models.ForeignKey("accounts.Shop", verbose_name=_("shop"), null=True, blank=True,
                             on_delete=models.SET_NULL, related_name="alipay_merchants")
    alipay_user_id = models.CharField(_("Alipay user id"), max_length=32, blank=True, db_index=True,
                                      help_text=_("2088…, known once Alipay has accepted the application."))
    auth_app_id = models.CharField(_("authorised app id"), max_length=32, blank=True)
    app_auth_token = EncryptedTextField(_("app authorisation token"), blank=True, default="")
    app_refresh_token = EncryptedTextField(_("refresh token"), blank=True, default="")
    token_expires_at = models.DateTimeField(_("token expires at"), null=True, blank=True)
    refresh_expires_at = models.DateTimeField(_("refresh token expires at"), null=True, blank=True)
    token_state = models.CharField(_("authorisation"), max_length=16, choices=TokenState.choices,
                                   default=TokenState.NONE)
    token_refresh_at = models.DateTimeField(_("token refresh due at"), null=True, blank=True)
    token_lease_until = models.DateTimeField(_("token refresh lease"), null=True, blank=True)
    token_refresh_attempts = models.PositiveIntegerField(_("token refresh attempts"), default=0)
    token_error = models.TextField(_("last token error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("Alipay merchant")
        verbose_name_plural = _("Alipay merchants")
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["token_state", "token_refresh_at"], name="merchant_token_due")]

    def __str__(self):
        return self.name

    def clean(self):
        if not (self.contact_mobile or self.contact_email):
            raise ValidationError({"contact_mobile": _("Give the contact's mobile or e-mail (Alipay needs one, "
                                                       "and the confirmation link is sent there).")})

    @property
    def can_trade(self) -> bool:
        """Onboarded and authorised: we may create trades on its behalf."""
        if not self.app_auth_token or self.token_state == TokenState.EXPIRED:
            return False
        return self.token_expires_at is None or self.token_expires_at > timezone.now()

    @property
    def contact_address(self) -> str:
        """Where the merchant's confirmation link goes: its e-mail if set, else its mobile."""
        return self.contact_email or self.contact_mobile


class ApplicationStatus(models.TextChoices):
    INIT = "init", _("Draft")
    SUBMITTING = "submitting", _("Submitting")
    SUBMITTED = "submitted", _("Submitted")
    AUDITING = "auditing", _("Under review")
    AWAITING_CONFIRMATION = "awaiting_confirmation", _("Awaiting merchant confirmation")
    SUCCESS = "success", _("Onboarded")
    CLOSED = "closed", _("Closed")
    HELD = "held", _("Held: fix and resubmit")
    TIMED_OUT = "timed_out", _("Confirmation timed out")


A = ApplicationStatus
# Alipay's order_status (alipay.open.agent.order.query) → our status.
ALIPAY_ORDER_STATUS = {
    "MERCHANT_INFO_HOLD": A.HELD,
    "MERCHANT_AUDITING": A.AUDITING,
    "MERCHANT_CONFIRM": A.AWAITING_CONFIRMATION,
    "MERCHANT_CONFIRM_SUCCESS": A.SUCCESS,
    "MERCHANT_CONFIRM_TIME_OUT": A.TIMED_OUT,
    "MERCHANT_APPLY_ORDER_CANCELED": A.CLOSED,
}
POLLED = (A.SUBMITTED, A.AUDITING, A.AWAITING_CONFIRMATION)   # queried on the schedule
FINAL = (A.SUCCESS, A.CLOSED, A.TIMED_OUT)
RESUBMITTABLE = (A.INIT, A.HELD, A.TIMED_OUT)


class SubmitStep(models.TextChoices):
    CREATE = "create", _("Open a batch (alipay.open.agent.create)")
    SIGN = "sign", _("Send the application (alipay.open.agent.facetoface.sign)")
    CONFIRM = "confirm", _("Submit the batch (alipay.open.agent.confirm)")
    RECONCILE = "reconcile", _("Check whether the batch was submitted (order.query)")
    CANCEL_RESTART = "cancel_restart", _("Cancel the batch, then start again")
    CANCEL_ABANDON = "cancel_abandon", _("Cancel the batch, back to draft")


PICTURE_FIELDS = ("business_license_pic", "business_license_auth_pic", "shop_scene_pic", "shop_sign_board_pic",
                  "special_license_pic")


def picture_path(instance, filename: str) -> str:
    """Private storage (never served as is): a random name that keeps the extension."""
    ext = PurePath(filename).suffix.lower()[:8]
    return f"payments/facetoface/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{ext}"


class FacetofaceApplication(ConcurrentTransitionMixin, models.Model):
    """One face-to-face payment application for a merchant (fields after seed 001)."""

    merchant = models.ForeignKey(Merchant, verbose_name=_("merchant"), on_delete=models.PROTECT,
                                 related_name="applications")
    status = FSMField(_("status"), max_length=24, choices=ApplicationStatus.choices, default=A.INIT,
                      protected=True, db_index=True)
    alipay_status = models.CharField(_("Alipay order status"), max_length=40, blank=True)
    batch_no = models.CharField(_("batch no."), max_length=64, blank=True)
    batch_created_at = models.DateTimeField(_("batch opened at"), null=True, blank=True)
    order_no = models.CharField(_("Alipay application no."), max_length=64, blank=True, db_index=True)
    submit_step = models.CharField(_("next submission step"), max_length=16, choices=SubmitStep.choices, blank=True)
    step_outcome_unknown = models.BooleanField(
        _("last step outcome unknown"), default=False,
        help_text=_("The last call may have taken effect: it is reconciled before anything else."))
    submit_rounds = models.PositiveSmallIntegerField(_("batches opened"), default=0)

    merchant_name = models.CharField(_("merchant name"), max_length=128)
    shop_name = models.CharField(_("shop name"), max_length=128)
    province_code = models.CharField(_("province code"), max_length=12, validators=[v.region_code])
    city_code = models.CharField(_("city code"), max_length=12, validators=[v.region_code])
    district_code = models.CharField(_("district code"), max_length=12, validators=[v.region_code])
    shop_address = models.CharField(_("shop address"), max_length=256)
    longitude = models.CharField(_("longitude"), max_length=16, blank=True, validators=[v.coordinate])
    latitude = models.CharField(_("latitude"), max_length=16, blank=True, validators=[v.coordinate])
    mcc_code = models.CharField(_("MCC code"), max_length=32, validators=[v.mcc_code])
    rate = models.DecimalField(_("rate (%)"), max_digits=4, decimal_places=2, null=True, blank=True,
                               validators=[MinValueValidator(Decimal("0.38")), MaxValueValidator(Decimal("0.60"))],
                               help_text=_("0.38–0.6; required when signing and authorising together."))
    sign_and_auth = models.BooleanField(_("sign and authorise"), default=True,
                                        help_text=_("The merchant also authorises us to trade on its behalf."))
    business_license_no = models.CharField(_("business licence no."), max_length=64, blank=True)
    business_license_mobile = EncryptedTextField(_("licence holder mobile"), blank=True, default="",
                                                 validators=[v.mobile])
    date_limitation = models.DateField(_("licence valid until"), null=True, blank=True)
    long_term = models.BooleanField(_("licence is long-term"), default=False)
    business_license_pic = models.FileField(_("business licence picture"), upload_to=picture_path, blank=True,
                                            validators=[v.validate_picture])
    business_license_auth_pic = models.FileField(_("licence authorisation picture"), upload_to=picture_path, blank=True,
                                                 validators=[v.validate_picture])
    shop_scene_pic = models.FileField(_("shop interior picture"), upload_to=picture_path, blank=True,
                                            validators=[v.validate_picture])
    shop_sign_board_pic = models.FileField(_("shop sign picture"), upload_to=picture_path, blank=True,
                                            validators=[v.validate_picture])
    special_license_pic = models.FileField(_("special licence picture"), upload_to=picture_path, blank=True,
                                            validators=[v.validate_picture])

    confirm_url = models.TextField(_("merchant confirmation link"), blank=True)
    confirm_sent_url = models.TextField(_("confirmation link sent"), blank=True, editable=False)
    reject_reason = models.TextField(_("reject reason"), blank=True)
    remark = models.TextField(_("remark"), blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    needs_attention = models.BooleanField(_("needs attention"), default=False)
    attention_reason = models.CharField(_("why it needs attention"), max_length=255, blank=True)
    overdue_notified_at = models.DateTimeField(_("overdue notice sent at"), null=True, blank=True)

    submitted_at = models.DateTimeField(_("submitted at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    last_query_at = models.DateTimeField(_("last query at"), null=True, blank=True)
    query_count = models.PositiveIntegerField(_("queries"), default=0)
    work_state = models.CharField(_("work"), max_length=8, choices=Work.choices, default=Work.IDLE)
    due_at = models.DateTimeField(_("next query / step at"), null=True, blank=True)
    lease_until = models.DateTimeField(_("worker lease until"), null=True, blank=True)
    work_attempts = models.PositiveIntegerField(_("worker runs"), default=0)
    failures = models.PositiveSmallIntegerField(_("failures in a row"), default=0)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("face-to-face application")
        verbose_name_plural = _("face-to-face applications")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["batch_no"], condition=~models.Q(batch_no=""),
                                    name="facetoface_unique_batch_no"),
        ]
        indexes = [
            models.Index(fields=["work_state", "due_at"], name="facetoface_due"),
            models.Index(fields=["needs_attention", "status"], name="facetoface_attention"),
        ]

    def __str__(self):
        return f"{self.shop_name or self.merchant_name} #{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def shop_address_json(self) -> dict:
        """`shop_address` as Alipay takes it."""
        data = {"country_code": "156", "province_code": self.province_code, "city_code": self.city_code,
                "district_code": self.district_code, "detail_address": self.shop_address}
        if self.longitude and self.latitude:
            data.update(longitude=self.longitude, latitude=self.latitude)
        return data

    def clean(self):
        errors = {}
        if self.sign_and_auth and self.rate is None:
            errors["rate"] = _("The rate is required when the merchant signs and authorises together.")
        if not self.shop_scene_pic:
            errors["shop_scene_pic"] = _("Upload a picture of the shop's interior.")
        if not self.shop_sign_board_pic:
            errors["shop_sign_board_pic"] = _("Upload a picture of the shop's sign.")
        if self.business_license_no and not self.business_license_pic:
            errors["business_license_pic"] = _("Upload the business licence picture (a licence number is given).")
        if bool(self.longitude) != bool(self.latitude):
            errors["latitude"] = _("Give both longitude and latitude, or neither.")
        if errors:
            raise ValidationError(errors)

    # --- transitions (state only; services set the fields and do the side effects) -------------------
    @transition(field=status, source=list(RESUBMITTABLE), target=A.SUBMITTING)
    def start_submission(self):
        pass

    @transition(field=status, source=A.SUBMITTING, target=A.INIT)
    def back_to_draft(self):
        """The submission was refused or abandoned: staff fix the application and submit again."""

    @transition(field=status, source=A.SUBMITTING, target=A.SUBMITTED)
    def mark_submitted(self):
        pass

    @transition(field=status, source=[A.SUBMITTED, A.AUDITING], target=A.AUDITING)
    def mark_auditing(self):
        pass

    @transition(field=status, source=[A.SUBMITTED, A.AUDITING, A.AWAITING_CONFIRMATION],
                target=A.AWAITING_CONFIRMATION)
    def mark_awaiting_confirmation(self):
        pass

    @transition(field=status, source=list(POLLED), target=A.SUCCESS)
    def mark_success(self):
        pass

    @transition(field=status, source=[*POLLED, A.INIT, A.HELD], target=A.CLOSED)
    def close(self):
        """Rejected or cancelled by Alipay, or withdrawn by staff before submission."""

    @transition(field=status, source=[A.SUBMITTED, A.AUDITING, A.AWAITING_CONFIRMATION], target=A.HELD)
    def hold(self):
        pass

    @transition(field=status, source=[A.SUBMITTED, A.AUDITING, A.AWAITING_CONFIRMATION], target=A.TIMED_OUT)
    def time_out(self):
        pass


TRANSITIONS = {
    A.AUDITING: "mark_auditing", A.AWAITING_CONFIRMATION: "mark_awaiting_confirmation", A.SUCCESS: "mark_success",
    A.CLOSED: "close", A.HELD: "hold", A.TIMED_OUT: "time_out",
}


class CallOutcome(models.TextChoices):
    OK = "ok", _("Success")
    REFUSED = "refused", _("Refused")
    RETRYABLE = "retryable", _("Failed, retry")
    UNKNOWN = "unknown", _("Outcome unknown")
    CONFIG = "config", _("Our configuration")


class AlipayCall(models.Model):
    """One call to Alipay and its answer (append-only): what staff read to see what Alipay said."""

    method = models.CharField(_("method"), max_length=64)
    outcome = models.CharField(_("outcome"), max_length=12, choices=CallOutcome.choices)
    code = models.CharField(_("code"), max_length=16, blank=True)
    sub_code = models.CharField(_("sub code"), max_length=64, blank=True)
    message = models.CharField(_("message"), max_length=255, blank=True)
    request = models.JSONField(_("request"), default=dict, blank=True)
    answer = models.JSONField(_("answer"), default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    merchant = models.ForeignKey(Merchant, verbose_name=_("merchant"), null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="alipay_calls")
    application = models.ForeignKey(FacetofaceApplication, verbose_name=_("application"), null=True, blank=True,
                                    on_delete=models.CASCADE, related_name="alipay_calls")
    trade = models.ForeignKey("payments.Trade", verbose_name=_("trade"), null=True, blank=True,
                              on_delete=models.CASCADE, related_name="alipay_calls")
    refund = models.ForeignKey("payments.Refund", verbose_name=_("refund"), null=True, blank=True,
                               on_delete=models.CASCADE, related_name="alipay_calls")
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("Alipay call")
        verbose_name_plural = _("Alipay calls")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return f"{self.method} {self.outcome} {self.sub_code or self.code}"
