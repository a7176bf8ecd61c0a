"""The three submission steps as due work: plan the next call from the application's row, perform it outside
any transaction, record its outcome (see the recovery rules in payments.services.onboarding)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePath

from django.conf import settings
from django.utils.translation import gettext as _

from common.http import ConfigurationError, PlatformError

from ..client import Answer, sub_code_of
from ..models import PICTURE_FIELDS, POLLED, ApplicationStatus, FacetofaceApplication, SubmitStep, Work
from . import calls
from .base import retry_in
from .polling import record_query, seconds, status_notice

log = logging.getLogger(__name__)
A, Step = ApplicationStatus, SubmitStep
BATCH_MARGIN = timedelta(minutes=5)     # do not start a step on a batch this close to its hour
NOT_SUBMITTED = {"BATCH_STATUS_NOT_SUBMIT", "BATCH_IS_NOT_EXIST"}
CONTENT_TYPES = {".png": "image/png", ".bmp": "image/bmp", ".gif": "image/gif", ".jpg": "image/jpeg",
                 ".jpeg": "image/jpeg"}


@dataclass
class Job:
    action: str                     # create | sign | confirm | reconcile | cancel | query
    attempt: int
    batch_no: str = ""
    params: dict = field(default_factory=dict)
    pictures: dict = field(default_factory=dict)   # field -> stored file name


def plan(app: FacetofaceApplication, now: datetime) -> Job | None:
    """What the application needs next (may rewrite its step); None: nothing to do."""
    if app.status in POLLED:
        return Job("query", 0, batch_no=app.batch_no)
    if app.status != A.SUBMITTING:
        return None
    ttl = seconds("ALIPAY_BATCH_TTL_SECONDS")
    young = app.batch_created_at is not None and now < app.batch_created_at + ttl - BATCH_MARGIN
    step = app.submit_step
    if step == Step.CONFIRM and app.step_outcome_unknown:
        return Job("reconcile", 0, batch_no=app.batch_no)
    if step == Step.RECONCILE:
        return Job("reconcile", 0, batch_no=app.batch_no)
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
            give_up(app, _("Gave up after %(n)s batches: %(error)s") % {"n": app.submit_rounds,
                                                                         "error": app.last_error})
            return None
        m = app.merchant
        return Job("create", 0, params={"account": m.alipay_account, "contact_name": m.contact_name,
                                         "contact_mobile": m.contact_mobile, "contact_email": m.contact_email})
    if step == Step.SIGN:
        return Job("sign", 0, batch_no=app.batch_no, params=_sign_params(app),
                    pictures={n: getattr(app, n).name for n in PICTURE_FIELDS if getattr(app, n)})
    if step == Step.CONFIRM:
        return Job("confirm", 0, batch_no=app.batch_no)
    if step in (Step.CANCEL_RESTART, Step.CANCEL_ABANDON):
        if step == Step.CANCEL_ABANDON and not app.batch_no:
            back_to_draft(app)
            return None
        return Job("cancel", 0, batch_no=app.batch_no)
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


def perform(app: FacetofaceApplication, job: Job) -> tuple[Answer | None, PlatformError | None]:
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


def record(app: FacetofaceApplication, job: Job, answer: Answer | None, error: PlatformError | None,
            now: datetime) -> bool:
    """Store a call's outcome; True when the next step may run at once."""
    if job.action == "query":
        record_query(app, answer, error, now)
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
    app.due_at = now + retry_in(app.failures, cap=seconds("ALIPAY_POLL_INTERVAL_SECONDS"))
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
        back_to_draft(app)
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
        record_query(app, answer, None, now, count=False)
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
        back_to_draft(app)
        return False
    app.submit_step = Step.CREATE
    return True


def _submitted(app: FacetofaceApplication, node: dict, now: datetime) -> None:
    old = app.get_status_display()
    app.mark_submitted()
    app.order_no = str(node.get("order_no") or app.order_no)
    app.submit_step, app.step_outcome_unknown, app.failures = "", False, 0
    app.submitted_at, app.last_error = now, ""
    app.work_state, app.due_at = Work.WAITING, now + seconds("ALIPAY_POLL_FIRST_DELAY_SECONDS")
    if node.get("app_auth_token"):
        from .merchants import merchant_store_tokens

        merchant_store_tokens(merchant=app.merchant, node=node, now=now)
    status_notice(app, old, _("Alipay application no. %(no)s") % {"no": app.order_no})


def back_to_draft(app: FacetofaceApplication) -> None:
    old = app.get_status_display()
    app.back_to_draft()
    app.submit_step, app.step_outcome_unknown = "", False
    app.work_state, app.due_at = Work.IDLE, None
    status_notice(app, old, app.last_error)


def give_up(app: FacetofaceApplication, why: str) -> None:
    app.last_error = why[:4000]
    app.needs_attention, app.attention_reason = True, why[:255]
    back_to_draft(app)
