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

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from common.due import Claim, DueWork
from common.locks import lock_one

from ..models import (
    PICTURE_FIELDS,
    POLLED,
    RESUBMITTABLE,
    ApplicationStatus,
    FacetofaceApplication,
    Merchant,
    SubmitStep,
    Work,
)
from .base import LEASE, PaymentsError
from .polling import applications_flag_overdue, status_notice, with_merchant  # noqa: F401 (re-exported)
from .submission import perform, plan, record

A, Step = ApplicationStatus, SubmitStep
APPLICATION_WORK = DueWork(FacetofaceApplication, waiting=(Work.WAITING,), busy=Work.BUSY, status_field="work_state",
                           due_field="due_at", lease_field="lease_until", attempts_field="work_attempts", lease=LEASE)


class OnboardingError(PaymentsError):
    pass


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
        app = lock_one(with_merchant(), pk=application_id)
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
    return with_merchant().get(pk=application_id)


def application_run_now(*, application_id: int, now: datetime | None = None) -> FacetofaceApplication:
    """Staff ("query now", poll_facetoface): query a submitted application, or carry on a submission, now."""
    now = now or timezone.now()
    with transaction.atomic():
        app = lock_one(with_merchant(), pk=application_id)
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
    return with_merchant().get(pk=application_id)


def application_cancel_submission(*, application_id: int, now: datetime | None = None) -> FacetofaceApplication:
    """Staff: stop a submission in progress. An open batch is cancelled first; the application is a draft."""
    now = now or timezone.now()
    with transaction.atomic():
        app = lock_one(with_merchant(), pk=application_id)
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
    return with_merchant().get(pk=application_id)


def application_withdraw(*, application_id: int) -> FacetofaceApplication:
    """Staff: close a draft or held application that will not be submitted (again)."""
    with transaction.atomic():
        app = lock_one(with_merchant(), pk=application_id)
        if app is None or app.status not in (A.INIT, A.HELD):
            raise OnboardingError(_("Only a draft or held application can be withdrawn."))
        old = app.get_status_display()
        app.close()
        app.work_state, app.due_at, app.finished_at = Work.IDLE, None, timezone.now()
        app.save()
        status_notice(app, old, _("Withdrawn by staff."))
    return app


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
        claim: Claim | None = APPLICATION_WORK.lock(pk, now=now, queryset=with_merchant())
        if claim is None:
            row = FacetofaceApplication.objects.filter(pk=pk).values_list("status", "work_state").first()
            if row is None:
                return "missing", False
            return ("busy" if row[1] == Work.BUSY else row[0]), False
        app = claim.row
        if claim.reclaimed and app.status == A.SUBMITTING:
            app.step_outcome_unknown = True   # the worker that held it died: its call may have gone through
        job = plan(app, now)
        if job is None:
            app.work_state, app.due_at, app.lease_until = Work.IDLE, None, None
            app.save()
            return app.status, False
        app.save()   # the plan may have rewritten the step (batch too old, unknown outcome)
        APPLICATION_WORK.mark(app, now=now)
        job.attempt = app.work_attempts
    answer, error = perform(app, job)
    with transaction.atomic():
        app = lock_one(with_merchant(), pk=pk)
        if app.work_state != Work.BUSY or app.work_attempts != job.attempt:
            return app.status, False   # our lease ran out and another worker took over: it records
        more = record(app, job, answer, error, now)
        if app.work_state == Work.BUSY:   # the next step may run at once
            app.work_state, app.due_at = Work.WAITING, now
        app.lease_until = None
        app.save()
        return app.status, more


def applications_due(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    return APPLICATION_WORK.due_ids(now=now, limit=limit)
