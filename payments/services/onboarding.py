"""Face-to-face onboarding (seed 001): submitting an application and polling it to a final state.

Submitting is three Alipay calls — `alipay.open.agent.create` (a batch, `init` for one hour), `…facetoface.
sign` (the application and its pictures), `…confirm` (submit the batch) — run as steps of one due-work row
(common.due), each lock → check → mark → commit → call → record, so a failure at any step leaves the
application `submitting` with `submit_step` naming what comes next and a due time that finishes it:

- create refused → back to draft with the reason; failed or unknown → try again later (a batch that was
  opened anyway simply times out);
- sign refused → the batch is cancelled and the application goes back to draft with the reason; failed →
  sign again while the batch is young; outcome unknown → cancel the batch and start over;
- confirm outcome unknown or refused → query the batch: submitted means done; not submitted means confirm
  again while the batch is young, or (after a refusal) cancel and start over;
- a batch about to reach its hour is abandoned (Alipay times it out) and a new one opened;
- after ALIPAY_SUBMIT_MAX_BATCHES batches the application goes back to draft, flagged for staff.

Polling: first query ALIPAY_POLL_FIRST_DELAY_SECONDS after submitting, then every
ALIPAY_POLL_INTERVAL_SECONDS until a final state; failures retry sooner (backoff, at most the interval).
An application still under review ALIPAY_AUDIT_OVERDUE_HOURS after submission is flagged and staff are
notified once. When Alipay asks for the merchant's confirmation, the link is stored and sent to the
merchant's contact (once per link).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.due import Claim, DueWork
from common.http import ConfigurationError, PlatformError
from common.locks import lock_one

from ..client import Answer, sub_code_of
from ..models import (
    ALIPAY_ORDER_STATUS,
    PICTURE_FIELDS,
    POLLED,
    RESUBMITTABLE,
    TRANSITIONS,
    ApplicationStatus,
    FacetofaceApplication,
    Merchant,
    SubmitStep,
    Work,
)
from . import calls
from .base import LEASE, PaymentsError, notify_event, retry_in

log = logging.getLogger(__name__)
A, Step = ApplicationStatus, SubmitStep
APPLICATION_WORK = DueWork(FacetofaceApplication, waiting=(Work.WAITING,), busy=Work.BUSY, status_field="work_state",
                           due_field="due_at", lease_field="lease_until", attempts_field="work_attempts", lease=LEASE)
BATCH_MARGIN = timedelta(minutes=5)     # do not start a step on a batch this close to its hour
NOT_SUBMITTED = {"BATCH_STATUS_NOT_SUBMIT", "BATCH_IS_NOT_EXIST"}
CONTENT_TYPES = {".png": "image/png", ".bmp": "image/bmp", ".gif": "image/gif", ".jpg": "image/jpeg",
                 ".jpeg": "image/jpeg"}


class OnboardingError(PaymentsError):
    pass


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=getattr(settings, name))


def _queryset():
    return FacetofaceApplication.objects.select_related("merchant")


# --- staff: create, submit, run now, cancel ------------------------------------------------------------


def application_create(*, merchant: Merchant, user=None, **fields) -> FacetofaceApplication:
    """A draft application (pictures are uploaded files). Validated like the admin form (full_clean)."""
    pictures = {name: fields.pop(name) for name in PICTURE_FIELDS if fields.get(name) is not None}
    app = FacetofaceApplication(merchant=merchant, created_by=user, **fields)
    app.merchant_name = app.merchant_name or merchant.name
    for name, f in pictures.items():
        setattr(app, name, f)
    app.full_clean(exclude=["status"])  # the FSM field is protected: transitions only
    app.save()
    return app


def application_submit(*, application_id: int, now: datetime | None = None) -> FacetofaceApplication:
    """Start a submission (a draft, a held or a timed-out application) and run its steps now."""
    now = now or timezone.now()
    with transaction.atomic():
        app = lock_one(_queryset(), pk=application_id)
        if app is None:
            raise OnboardingError(_("The application does not exist."))
        if app.status not in RESUBMITTABLE:
            raise OnboardingError(_("Only a draft, held or timed-out application can be submitted (this one is "
                                    "%(status)s).") % {"status": app.get_status_display()})
        try:
            app.full_clean(exclude=["status"])  # the FSM field is protected: transitions only
        except ValidationError as exc:
            raise OnboardingError("; ".join(exc.messages)) from exc
        app.start_submission()
        app.submit_step, app.step_outcome_unknown, app.submit_rounds, app.failures = Step.CREATE, False, 0, 0
        app.batch_no, app.batch_created_at, app.order_no, app.alipay_status = "", None, "", ""
        app.confirm_url = app.reject_reason = app.last_error = ""
        app.needs_attention, app.attention_reason, app.overdue_notified_at = False, "", None
        app.work_state, app.due_at = Work.WAITING, now
        app.save()
    application_advance(application_id=application_id, now=now)
    return _queryset().get(pk=application_id)


def application_run_now(*, application_id: int, now: datetime | None = None) -> FacetofaceApplication:
    """Staff ("query now", poll_facetoface): query a submitted application, or carry on a submission, now."""
    now = now or timezone.now()
    with transaction.atomic():
        app = lock_one(_queryset(), pk=application_id)
        if app is None:
            raise OnboardingError(_("The application does not exist."))
        if app.status not in (*POLLED, A.SUBMITTING):
            raise OnboardingError(_("Nothing to query: the application is %(status)s.")
                                  % {"status": app.get_status_display()})
        if app.work_state == Work.BUSY and app.lease_until and app.lease_until > now:
            raise OnboardingError(_("A worker is handling this application right now; try again in a minute."))
        if app.work_state != Work.BUSY:
            app.work_state, app.due_at = Work.WAITING, now
            app.save(update_fields=["work_state", "due_at", "updated_at"])
    application_advance(application_id=application_id, now=now)
    return _queryset().get(pk=application_id)


def application_cancel_submission(*, application_id: int, now: datetime | None = None) -> FacetofaceApplication:
    """Staff: stop a submission in progress. An open batch is cancelled first; the application is a draft."""
    now = now or timezone.now()
    with transaction.atomic():
        app = lock_one(_queryset(), pk=application_id)
        if app is None or app.status != A.SUBMITTING:
            raise OnboardingError(_("Only an application being submitted can be cancelled."))
        if app.work_state == Work.BUSY and app.lease_until and app.lease_until > now:
            raise OnboardingError(_("A worker is handling this application right now; try again in a minute."))
        if app.step_outcome_unknown and app.submit_step == Step.CONFIRM:
            raise OnboardingError(_("The last confirm may have gone through: query it first."))
        app.last_error = _("Submission cancelled by staff.")
        if app.batch_no:
            app.submit_step, app.work_state, app.due_at = Step.CANCEL_ABANDON, Work.WAITING, now
        else:
            app.back_to_draft()
            app.submit_step, app.work_state, app.due_at = "", Work.IDLE, None
        app.save()
    application_advance(application_id=application_id, now=now)
    return _queryset().get(pk=application_id)


def application_withdraw(*, application_id: int) -> FacetofaceApplication:
    """Staff: close a draft or held application that will not be submitted (again)."""
    with transaction.atomic():
        app = lock_one(_queryset(), pk=application_id)
        if app is None or app.status not in (A.INIT, A.HELD):
            raise OnboardingError(_("Only a draft or held application can be withdrawn."))
        old = app.get_status_display()
        app.close()
        app.work_state, app.due_at, app.finished_at = Work.IDLE, None, timezone.now()
        app.save()
        _status_notice(app, old, _("Withdrawn by staff."))
    return app


# --- the worker ------------------------------------------------------------------------------------------


@dataclass
class _Job:
    action: str                     # create | sign | confirm | reconcile | cancel | query
    attempt: int
    batch_no: str = ""
    params: dict = field(default_factory=dict)
    pictures: dict = field(default_factory=dict)   # field -> stored file name


def application_advance(*, application_id: int, now: datetime | None = None, steps: int = 20) -> str:
    """Do what is due for one application (the advance_application task, the sweeper, staff actions):
    submission steps one after the other until one must wait, or one status query. Safe to run any number
    of times, concurrently. Returns the application's status (or "busy" / "not-due" / "missing")."""
    result = "not-due"
    for _step in range(steps):
        result, more = _advance_once(application_id, now)
        if not more:
            break
    return result


def _advance_once(pk: int, now: datetime | None) -> tuple[str, bool]:
    now = now or timezone.now()
    with transaction.atomic():
        claim: Claim | None = APPLICATION_WORK.lock(pk, now=now, queryset=_queryset())
        if claim is None:
            row = FacetofaceApplication.objects.filter(pk=pk).values_list("status", "work_state").first()
            if row is None:
                return "missing", False
            return ("busy" if row[1] == Work.BUSY else row[0]), False
        app = claim.row
        if claim.reclaimed and app.status == A.SUBMITTING:
            app.step_outcome_unknown = True   # the worker that held it died: its call may have gone through
        job = _plan(app, now)
        if job is None:
            app.work_state, app.due_at, app.lease_until = Work.IDLE, None, None
            app.save()
            return app.status, False
        app.save()   # the plan may have rewritten the step (batch too old, unknown outcome)
        APPLICATION_WORK.mark(app, now=now)
        job.attempt = app.work_attempts
    answer, error = _perform(app, job)
    with transaction.atomic():
        app = lock_one(_queryset(), pk=pk)
        if app.work_state != Work.BUSY or app.work_attempts != job.attempt:
            return app.status, False   # our lease ran out and another worker took over: it records
        more = _record(app, job, answer, error, now)
        if app.work_state == Work.BUSY:   # the next step may run at once
            app.work_state, app.due_at = Work.WAITING, now
        app.lease_until = None
        app.save()
        return app.status, more


def _plan(app: FacetofaceApplication, now: datetime) -> _Job | None:
    """What the application needs next (may rewrite its step); None: nothing to do."""
    if app.status in POLLED:
        return _Job("query", 0, batch_no=app.batch_no)
    if app.status != A.SUBMITTING:
        return None
    ttl = _seconds("ALIPAY_BATCH_TTL_SECONDS")
    young = app.batch_created_at is not None and now < app.batch_created_at + ttl - BATCH_MARGIN
    step = app.submit_step
    if step == Step.CONFIRM and app.step_outcome_unknown:
        return _Job("reconcile", 0, batch_no=app.batch_no)
    if step == Step.RECONCILE:
        return _Job("reconcile", 0, batch_no=app.batch_no)
    if step == Step.SIGN and app.step_outcome_unknown:
        app.submit_step, app.step_outcome_unknown = Step.CANCEL_RESTART, False
        step = app.submit_step
    if step in (Step.SIGN, Step.CONFIRM) and not young:
        # The batch times out before we could finish: Alipay drops it by itself; open a new one.
        app.submit_step, app.batch_no, app.batch_created_at = Step.CREATE, "", None
        step = Step.CREATE
    if step in (Step.CANCEL_RESTART, Step.CANCEL_ABANDON) and not app.batch_no:
        step = app.submit_step = Step.CREATE if step == Step.CANCEL_RESTART else step
    if step == Step.CREATE:
        if app.submit_rounds >= settings.ALIPAY_SUBMIT_MAX_BATCHES:
            _give_up(app, _("Gave up after %(n)s batches: %(error)s") % {"n": app.submit_rounds,
                                                                         "error": app.last_error})
            return None
        m = app.merchant
        return _Job("create", 0, params={"account": m.alipay_account, "contact_name": m.contact_name,
                                         "contact_mobile": m.contact_mobile, "contact_email": m.contact_email})
    if step == Step.SIGN:
        return _Job("sign", 0, batch_no=app.batch_no, params=_sign_params(app),
                    pictures={n: getattr(app, n).name for n in PICTURE_FIELDS if getattr(app, n)})
    if step == Step.CONFIRM:
        return _Job("confirm", 0, batch_no=app.batch_no)
    if step in (Step.CANCEL_RESTART, Step.CANCEL_ABANDON):
        if step == Step.CANCEL_ABANDON and not app.batch_no:
            _back_to_draft(app)
            return None
        return _Job("cancel", 0, batch_no=app.batch_no)
    log.error("application %s: unknown submission step %r", app.pk, step)
    return None


def _sign_params(app: FacetofaceApplication) -> dict:
    params = {
        "batch_no": app.batch_no, "mcc_code": app.mcc_code, "sign_and_auth": "true" if app.sign_and_auth else "false",
        "rate": f"{app.rate}" if app.rate is not None else "", "business_license_no": app.business_license_no,
        "business_license_mobile": app.business_license_mobile,
        "date_limitation": app.date_limitation.isoformat() if app.date_limitation else "",
        "long_term": "true" if app.long_term else "", "shop_name": app.shop_name,
        "shop_address": json.dumps(app.shop_address_json(), ensure_ascii=False, separators=(",", ":")),
    }
    return {k: v for k, v in params.items() if v}


def _perform(app: FacetofaceApplication, job: _Job) -> tuple[Answer | None, PlatformError | None]:
    """Outside any transaction: one Alipay call, logged on the application."""
    ctx = {"merchant": app.merchant, "application": app}
    try:
        if job.action == "create":
            p = job.params
            return calls.call("alipay.open.agent.create", lambda c: c.agent_create(**p), request={
                "account": p["account"], "contact_name": p["contact_name"]}, **ctx), None
        if job.action == "sign":
            files = _files(app, job.pictures)
            logged = {k: v for k, v in job.params.items() if k != "business_license_mobile"}
            logged["pictures"] = {name: f[0] for name, f in files.items()}
            return calls.call("alipay.open.agent.facetoface.sign",
                              lambda c: c.facetoface_sign(params=job.params, files=files), request=logged, **ctx), None
        method = {"confirm": "alipay.open.agent.confirm", "cancel": "alipay.open.agent.cancel",
                  "reconcile": "alipay.open.agent.order.query", "query": "alipay.open.agent.order.query"}[job.action]
        fn = {"confirm": "agent_confirm", "cancel": "agent_cancel", "reconcile": "agent_order_query",
              "query": "agent_order_query"}[job.action]
        return calls.call(method, lambda c: getattr(c, fn)(batch_no=job.batch_no),
                          request={"batch_no": job.batch_no}, **ctx), None
    except PlatformError as exc:
        return None, exc


def _files(app: FacetofaceApplication, names: dict[str, str]) -> dict[str, tuple[str, bytes, str]]:
    out = {}
    for name, stored in names.items():
        fieldfile = getattr(app, name)
        try:
            with fieldfile.storage.open(stored, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ConfigurationError(_("The picture %(name)s cannot be read (%(error)s): upload it again.")
                                     % {"name": name, "error": exc.__class__.__name__}) from exc
        suffix = PurePath(stored).suffix.lower()
        out[name] = (f"{name}{suffix}", data, CONTENT_TYPES.get(suffix, "application/octet-stream"))
    return out


# --- recording ---------------------------------------------------------------------------------------------


def _record(app: FacetofaceApplication, job: _Job, answer: Answer | None, error: PlatformError | None,
            now: datetime) -> bool:
    """Store a call's outcome; True when the next step may run at once."""
    if job.action == "query":
        _record_query(app, answer, error, now)
        return False
    if error is None:
        app.failures = 0
    return {"create": _record_create, "sign": _record_sign, "confirm": _record_confirm,
            "reconcile": _record_reconcile, "cancel": _record_cancel}[job.action](app, answer, error, now)


def _wait(app: FacetofaceApplication, error: PlatformError, now: datetime, *, what: str) -> bool:
    """A failure to retry later (same step): backoff, at most the poll interval."""
    app.failures += 1
    app.last_error = f"{what}: {error}"[:4000]
    if isinstance(error, ConfigurationError):
        app.needs_attention, app.attention_reason = True, _("Alipay configuration problem: %(e)s") % {"e": error}
    app.work_state = Work.WAITING
    app.due_at = now + retry_in(app.failures, cap=_seconds("ALIPAY_POLL_INTERVAL_SECONDS"))
    return False


def _refused(error: PlatformError) -> bool:
    return not (error.retryable or error.outcome_unknown or isinstance(error, ConfigurationError))


def _record_create(app, answer, error, now) -> bool:
    if error is None:
        app.batch_no, app.batch_created_at = str(answer.node.get("batch_no") or ""), now
        app.submit_rounds, app.last_error = app.submit_rounds + 1, ""
        app.submit_step, app.step_outcome_unknown = Step.SIGN, False
        if not app.batch_no:
            return _wait(app, PlatformError("alipay: create answered no batch_no", retryable=True), now,
                         what=_("Opening a batch"))
        return True
    if _refused(error):
        app.last_error = _("Alipay refused to open a batch: %(e)s") % {"e": error}
        _back_to_draft(app)
        return False
    return _wait(app, error, now, what=_("Opening a batch"))


def _record_sign(app, answer, error, now) -> bool:
    if error is None:
        app.submit_step, app.last_error = Step.CONFIRM, ""
        return True
    if _refused(error):
        app.last_error = _("Alipay refused the application: %(e)s") % {"e": error}
        app.submit_step = Step.CANCEL_ABANDON
        return True
    if error.outcome_unknown:
        app.step_outcome_unknown = True
        app.last_error = _("Sending the application: %(e)s (outcome unknown: the batch will be cancelled and "
                           "the application sent again in a new one)") % {"e": error}
        return True
    return _wait(app, error, now, what=_("Sending the application"))


def _record_confirm(app, answer, error, now) -> bool:
    if error is None:
        _submitted(app, answer.node, now)
        return False
    if error.outcome_unknown:
        app.step_outcome_unknown = True
        app.last_error = _("Submitting the batch: %(e)s (outcome unknown: checking)") % {"e": error}
        return True
    if _refused(error):
        app.submit_step = Step.RECONCILE
        app.last_error = _("Alipay refused to submit the batch: %(e)s") % {"e": error}
        return True
    return _wait(app, error, now, what=_("Submitting the batch"))


def _record_reconcile(app, answer, error, now) -> bool:
    if error is None:
        _submitted(app, answer.node, now)
        _record_query(app, answer, None, now, count=False)
        return False
    if sub_code_of(error) in NOT_SUBMITTED:
        if app.submit_step == Step.RECONCILE:
            app.submit_step = Step.CANCEL_RESTART          # confirm was refused: start over in a new batch
        else:
            app.submit_step, app.step_outcome_unknown = Step.CONFIRM, False   # not submitted: confirm again
        return True
    return _wait(app, error, now, what=_("Checking the batch"))


def _record_cancel(app, answer, error, now) -> bool:
    if error is not None and not _refused(error):
        return _wait(app, error, now, what=_("Cancelling the batch"))
    # Cancelled, or refused because the batch is no longer `init` (timed out, cancelled): unusable either way.
    abandon = app.submit_step == Step.CANCEL_ABANDON
    app.batch_no, app.batch_created_at = "", None
    if abandon:
        _back_to_draft(app)
        return False
    app.submit_step = Step.CREATE
    return True


def _submitted(app: FacetofaceApplication, node: dict, now: datetime) -> None:
    old = app.get_status_display()
    app.mark_submitted()
    app.order_no = str(node.get("order_no") or app.order_no)
    app.submit_step, app.step_outcome_unknown, app.failures = "", False, 0
    app.submitted_at, app.last_error = now, ""
    app.work_state, app.due_at = Work.WAITING, now + _seconds("ALIPAY_POLL_FIRST_DELAY_SECONDS")
    if node.get("app_auth_token"):
        from .merchants import merchant_store_tokens

        merchant_store_tokens(merchant=app.merchant, node=node, now=now)
    _status_notice(app, old, _("Alipay application no. %(no)s") % {"no": app.order_no})


def _back_to_draft(app: FacetofaceApplication) -> None:
    old = app.get_status_display()
    app.back_to_draft()
    app.submit_step, app.step_outcome_unknown = "", False
    app.work_state, app.due_at = Work.IDLE, None
    _status_notice(app, old, app.last_error)


def _give_up(app: FacetofaceApplication, why: str) -> None:
    app.last_error = why[:4000]
    app.needs_attention, app.attention_reason = True, why[:255]
    _back_to_draft(app)


def _record_query(app, answer, error, now, *, count: bool = True) -> None:
    if count:
        app.query_count += 1
    app.last_query_at = now
    interval = _seconds("ALIPAY_POLL_INTERVAL_SECONDS")
    if error is not None:
        app.failures += 1
        app.last_error = _("Query: %(e)s") % {"e": error}
        if not (error.retryable or error.outcome_unknown):
            app.needs_attention = True
            app.attention_reason = (_("Alipay refused the status query: %(e)s") % {"e": error})[:255]
            app.due_at = now + interval
        else:
            app.due_at = now + retry_in(app.failures, cap=interval)
        app.work_state = Work.WAITING
        _check_overdue(app, now)
        return
    node = answer.node
    app.failures, app.last_error = 0, ""
    alipay_status = str(node.get("order_status") or "")
    app.alipay_status = alipay_status
    if node.get("order_no"):
        app.order_no = str(node["order_no"])
    pid = str(node.get("merchant_pid") or "")
    if pid and app.merchant.alipay_user_id != pid:
        Merchant.objects.filter(pk=app.merchant_id).update(alipay_user_id=pid, updated_at=now)
        app.merchant.alipay_user_id = pid
    target = ALIPAY_ORDER_STATUS.get(alipay_status)
    if target is None:
        app.needs_attention = True
        app.attention_reason = (_("Unknown Alipay order status %(s)s") % {"s": alipay_status or "—"})[:255]
    elif target != app.status:
        _move(app, target, node, now)
    elif target == A.AWAITING_CONFIRMATION:
        _confirmation_link(app, node)
    if app.status in POLLED:
        app.work_state, app.due_at = Work.WAITING, now + interval
    else:
        app.work_state, app.due_at = Work.IDLE, None
    _check_overdue(app, now)


def _move(app: FacetofaceApplication, target: str, node: dict, now: datetime) -> None:
    old = app.get_status_display()
    getattr(app, TRANSITIONS[target])()
    note = ""
    if target == A.AWAITING_CONFIRMATION:
        note = _confirmation_link(app, node)
    elif target == A.SUCCESS:
        app.finished_at, app.needs_attention, app.attention_reason = now, False, ""
    elif target in (A.CLOSED, A.HELD):
        app.reject_reason = str(node.get("reject_reason") or "") or json.dumps(
            node.get("restrict_infos") or [], ensure_ascii=False)[:2000]
        note = app.reject_reason
        if target == A.CLOSED:
            app.finished_at = now
        else:
            app.needs_attention = True
            app.attention_reason = _("Alipay holds the application: fix it and submit again.")
    elif target == A.TIMED_OUT:
        app.finished_at = now
        note = _("The merchant did not confirm within 15 days.")
    _status_notice(app, old, note)


def _confirmation_link(app: FacetofaceApplication, node: dict) -> str:
    """Store the merchant's confirmation link and send it to the merchant's contact once per link."""
    url = str(node.get("confirm_url") or "")
    if not url:
        return ""
    app.confirm_url = url
    if url != app.confirm_sent_url:
        m = app.merchant
        if m.contact_address:
            notify_event("merchant.confirm_requested", recipient=m.contact_address, merchant=m.name,
                         shop_name=app.shop_name, url=url, application=app.pk)
        else:
            app.needs_attention = True
            app.attention_reason = _("The merchant has no contact mobile or e-mail: send the link yourself.")
        app.confirm_sent_url = url
    return _("Confirmation link: %(url)s") % {"url": url}


def _status_notice(app: FacetofaceApplication, old: str, note: str = "") -> None:
    notify_event("merchant.status_changed", merchant=app.merchant.name, shop_name=app.shop_name,
                 application=app.pk, old_status=str(old), new_status=str(app.get_status_display()),
                 note=str(note or "")[:500])


# --- overdue ---------------------------------------------------------------------------------------------


def _check_overdue(app: FacetofaceApplication, now: datetime) -> bool:
    """Flag an application still under review past ALIPAY_AUDIT_OVERDUE_HOURS and notify staff once."""
    limit = timedelta(hours=settings.ALIPAY_AUDIT_OVERDUE_HOURS)
    if (app.status not in (A.SUBMITTED, A.AUDITING) or app.submitted_at is None or app.overdue_notified_at
            or now - app.submitted_at <= limit):
        return False
    app.needs_attention, app.overdue_notified_at = True, now
    days = round((now - app.submitted_at).total_seconds() / 86400, 1)
    app.attention_reason = (_("Under review for %(days)s days") % {"days": days})[:255]
    notify_event("merchant.audit_overdue", merchant=app.merchant.name, shop_name=app.shop_name,
                 application=app.pk, days=days, order_no=app.order_no)
    return True


def applications_flag_overdue(*, now: datetime | None = None, limit: int = 200) -> int:
    """The sweeper's check between polls (an overdue review is noticed within a minute, not at the next
    4-hourly query). Each application is flagged and notified once."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.ALIPAY_AUDIT_OVERDUE_HOURS)
    ids = list(FacetofaceApplication.objects.filter(
        status__in=[A.SUBMITTED, A.AUDITING], submitted_at__lt=cutoff, overdue_notified_at__isnull=True)
        .values_list("pk", flat=True)[:limit])
    flagged = 0
    for pk in ids:
        with transaction.atomic():
            app = lock_one(_queryset(), pk=pk, skip_locked=True)
            if app is not None and _check_overdue(app, now):
                app.save(update_fields=["needs_attention", "overdue_notified_at", "attention_reason", "updated_at"])
                flagged += 1
    return flagged


def applications_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    return APPLICATION_WORK.due_ids(now=now, limit=limit)
