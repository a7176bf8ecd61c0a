"""Polling a submitted application (seed 001's schedule, as settings) by time travel: first query five
minutes after submitting, then every four hours, stopping at a final state; the merchant's confirmation
link; an application under review for more than a day flagged with one notice to staff."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from payments.models import FacetofaceApplication
from payments.services.onboarding import (
    OnboardingError,
    application_run_now,
    application_submit,
    applications_due,
)
from payments.tasks import sweep_onboarding

from .conftest import MERCHANT_EMAIL, STAFF_EMAIL, deliver_all, mails_to

pytestmark = pytest.mark.django_db
QUERY = "alipay.open.agent.order.query"


def get(app) -> FacetofaceApplication:
    return FacetofaceApplication.objects.get(pk=app.pk)


def queries(fake) -> int:
    return len(fake.calls_of(QUERY))


def test_first_query_after_five_minutes_then_every_four_hours_until_final(fake, application, clock, channels):
    t0 = clock.t
    app = application_submit(application_id=application.pk)
    clock.advance(minutes=4, seconds=59)
    assert applications_due() == [] and sweep_onboarding() == 0 and queries(fake) == 0

    clock.advance(seconds=1)                                    # t0 + 5 min
    assert sweep_onboarding() == 1
    app = get(app)
    assert (app.status, app.query_count, app.last_query_at) == ("auditing", 1, t0 + timedelta(minutes=5))
    assert app.due_at == t0 + timedelta(minutes=5, hours=4)

    clock.advance(hours=3, minutes=59)
    assert sweep_onboarding() == 0 and queries(fake) == 1
    fake.set_order_status(app.batch_no, "MERCHANT_CONFIRM")
    clock.advance(minutes=1)                                    # t0 + 4 h 5 min
    assert sweep_onboarding() == 1
    app = get(app)
    assert app.status == "awaiting_confirmation" and app.query_count == 2
    assert app.confirm_url == f"{fake.url}/confirm/{app.order_no}"

    clock.advance(hours=4)                                      # the same link again: not sent twice
    sweep_onboarding()
    fake.set_order_status(app.batch_no, "MERCHANT_CONFIRM_SUCCESS")
    clock.advance(hours=4)
    sweep_onboarding()
    app = get(app)
    assert (app.status, app.query_count, app.work_state, app.due_at) == ("success", 4, "idle", None)
    assert app.finished_at == clock.t
    assert app.merchant.alipay_user_id == fake.batches[app.batch_no]["merchant_pid"]

    clock.advance(hours=8)                                      # final: no more queries
    assert sweep_onboarding() == 0 and queries(fake) == 4

    deliver_all()
    [link] = mails_to(MERCHANT_EMAIL)
    assert app.confirm_url in link.body and "杭州小店" in link.body
    moves = sorted(m.body.split("变为 ")[1].split("。")[0] for m in mails_to(STAFF_EMAIL, "状态变更"))
    assert moves == sorted(["待商户确认", "开通成功", "已提交", "审核中"])


@pytest.mark.parametrize("alipay_status, status, final", [
    ("MERCHANT_INFO_HOLD", "held", True),
    ("MERCHANT_APPLY_ORDER_CANCELED", "closed", True),
    ("MERCHANT_CONFIRM_TIME_OUT", "timed_out", True),
])
def test_other_answers_end_the_polling(fake, application, clock, alipay_status, status, final):
    app = application_submit(application_id=application.pk)
    fake.set_order_status(app.batch_no, "MERCHANT_CONFIRM" if status == "timed_out" else alipay_status,
                          reject_reason="营业执照不清晰")
    if status == "timed_out":
        clock.advance(minutes=5)
        sweep_onboarding()
        fake.set_order_status(app.batch_no, alipay_status)
    clock.advance(hours=5)
    sweep_onboarding()
    app = get(app)
    assert app.status == status and app.alipay_status == alipay_status and app.work_state == "idle"
    if status == "closed":
        assert app.reject_reason == "营业执照不清晰"
    if status == "held":
        assert app.needs_attention and "补充资料" in app.attention_reason


def test_a_held_application_is_fixed_and_submitted_again_in_a_new_batch(fake, application, clock):
    app = application_submit(application_id=application.pk)
    first = app.batch_no
    fake.set_order_status(first, "MERCHANT_INFO_HOLD")
    clock.advance(minutes=5)
    sweep_onboarding()
    assert get(app).status == "held"

    app = application_submit(application_id=app.pk)
    assert app.status == "submitted" and app.batch_no != first and not app.needs_attention
    assert app.query_count == 1  # the history is kept


def test_query_errors_retry_sooner_and_refusals_flag_the_application(fake, application, clock):
    app = application_submit(application_id=application.pk)
    clock.advance(minutes=5)
    fake.fail_next(QUERY, "busy")
    sweep_onboarding()
    app = get(app)
    assert app.status == "submitted" and app.due_at == clock.t + timedelta(minutes=1) and app.last_error

    clock.advance(minutes=1)
    fake.fail_next(QUERY, "refuse", sub_code="NO_APP_PERMISSION")
    sweep_onboarding()
    app = get(app)
    assert app.needs_attention and "NO_APP_PERMISSION" in app.attention_reason
    assert app.due_at == clock.t + timedelta(hours=4)


def test_auditing_over_a_day_is_flagged_and_staff_are_notified_once(fake, application, clock, channels):
    t0 = clock.t
    app = application_submit(application_id=application.pk)
    clock.advance(hours=23, minutes=59)
    sweep_onboarding()
    assert not get(app).needs_attention

    clock.advance(minutes=2)                                    # just over a day, between two polls
    sweep_onboarding()
    app = get(app)
    assert app.needs_attention and app.overdue_notified_at == t0 + timedelta(hours=24, minutes=1)
    for _ in range(3):                                          # more polls and sweeps: no second notice
        clock.advance(hours=4)
        sweep_onboarding()
    application_run_now(application_id=app.pk)
    deliver_all()
    [notice] = mails_to(STAFF_EMAIL, "审核超时")
    assert "杭州小店" in notice.body and "1.0 天" in notice.body
    assert get(app).status == "auditing"


def test_query_now_and_the_command(fake, application, clock, capsys):
    with pytest.raises(OnboardingError):
        application_run_now(application_id=application.pk)     # a draft has nothing to query
    app = application_submit(application_id=application.pk)
    app = application_run_now(application_id=app.pk)            # before the first scheduled query
    assert app.query_count == 1 and app.status == "auditing"

    call_command("poll_facetoface", "--id", str(app.pk))
    assert get(app).query_count == 2
    clock.advance(hours=5)
    call_command("poll_facetoface")                             # only what is due
    assert get(app).query_count == 3
    call_command("poll_facetoface", "--all")                    # every application still polled
    assert get(app).query_count == 4
    out = capsys.readouterr().out
    assert f"#{app.pk}" in out and "审核中" in out
