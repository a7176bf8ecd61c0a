"""Submitting a face-to-face application: create → facetoface.sign → confirm against the fake Alipay gateway
(which verifies our RSA2 signatures and signs its answers), and a failure at each step and its recovery."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from payments.models import AlipayCall, FacetofaceApplication
from payments.services import onboarding
from payments.services.onboarding import (
    OnboardingError,
    application_cancel_submission,
    application_submit,
)
from payments.tasks import sweep_onboarding

from .conftest import STAFF_EMAIL, deliver_all, mails_to

pytestmark = pytest.mark.django_db

CREATE, SIGN, CONFIRM = "alipay.open.agent.create", "alipay.open.agent.facetoface.sign", "alipay.open.agent.confirm"
CANCEL, QUERY = "alipay.open.agent.cancel", "alipay.open.agent.order.query"


def get(app) -> FacetofaceApplication:
    return FacetofaceApplication.objects.get(pk=app.pk)


def methods(fake) -> list[str]:
    return list(fake.received)


def test_three_steps_submit_the_application_with_its_pictures(fake, application, channels, clock):
    app = application_submit(application_id=application.pk)

    assert app.status == "submitted"
    assert methods(fake) == [CREATE, SIGN, CONFIRM]
    batch = fake.batches[app.batch_no]
    assert batch["status"] == "submit" and app.order_no == batch["order_no"]
    assert batch["account"] == "owner@merchant.example" and batch["contact"]["contact_name"] == "张三"
    sign = fake.calls_of(SIGN)[0]
    assert set(sign["files"]) == {"business_license_pic", "shop_scene_pic", "shop_sign_board_pic"}
    assert all(size > 5 * 1024 for _name, size in sign["files"].values())
    assert sign["params"]["rate"] == "0.38" and sign["params"]["sign_and_auth"] == "true"
    assert json.loads(sign["params"]["shop_address"]) == {
        "country_code": "156", "province_code": "330000", "city_code": "330100", "district_code": "330110",
        "detail_address": "文一西路 969 号"}
    # the first status query is due five minutes later; every answer is kept on the application
    assert app.due_at == clock.t + timedelta(minutes=5)
    assert list(AlipayCall.objects.filter(application=app).order_by("pk").values_list("method", "outcome")) == [
        (CREATE, "ok"), (SIGN, "ok"), (CONFIRM, "ok")]
    deliver_all()
    [notice] = mails_to(STAFF_EMAIL, "状态变更")
    assert "已提交" in notice.body and app.order_no in notice.body


def test_only_a_draft_can_be_submitted(fake, application):
    application_submit(application_id=application.pk)
    with pytest.raises(OnboardingError):
        application_submit(application_id=application.pk)
    assert methods(fake) == [CREATE, SIGN, CONFIRM]


# --- create ---------------------------------------------------------------------------------------------


def test_create_refused_goes_back_to_draft_with_the_reason_then_resubmits(fake, application):
    fake.fail_next(CREATE, "refuse", sub_code="INVALID_PARAMETER")
    app = application_submit(application_id=application.pk)
    assert app.status == "init" and app.work_state == "idle"
    assert "INVALID_PARAMETER" in app.last_error and app.batch_no == ""
    assert fake.batches == {}

    app = application_submit(application_id=app.pk)
    assert app.status == "submitted" and methods(fake) == [CREATE, CREATE, SIGN, CONFIRM]


def test_create_failing_waits_and_the_sweeper_finishes_it(fake, application, clock):
    fake.fail_next(CREATE, "http500")
    app = application_submit(application_id=application.pk)
    assert (app.status, app.submit_step, app.work_state) == ("submitting", "create", "waiting")
    assert app.due_at == clock.t + timedelta(minutes=1)
    assert sweep_onboarding() == 0  # not yet due

    clock.advance(minutes=1)
    assert sweep_onboarding() == 1
    app = get(app)
    assert app.status == "submitted" and app.last_error == ""
    assert methods(fake) == [CREATE, CREATE, SIGN, CONFIRM]


# --- sign -------------------------------------------------------------------------------------------------


def test_sign_refused_cancels_the_batch_and_returns_to_draft(fake, application):
    fake.fail_next(SIGN, "refuse", sub_code="INVALID_PARAMETER")
    app = application_submit(application_id=application.pk)
    assert app.status == "init" and "INVALID_PARAMETER" in app.last_error
    assert methods(fake) == [CREATE, SIGN, CANCEL]
    assert [b["status"] for b in fake.batches.values()] == ["cancel"]
    assert app.batch_no == ""


def test_sign_outcome_unknown_cancels_and_sends_again_in_a_new_batch(fake, application):
    fake.fail_next(SIGN, "drop_after")  # Alipay took it, the answer was lost
    app = application_submit(application_id=application.pk)
    assert app.status == "submitted"
    assert methods(fake) == [CREATE, SIGN, CANCEL, CREATE, SIGN, CONFIRM]
    first, second = fake.batches.values()
    assert first["status"] == "cancel" and second["status"] == "submit" and app.batch_no == second["batch_no"]


def test_sign_rate_limited_is_retried_on_the_same_batch(fake, application, clock):
    fake.fail_next(SIGN, "refuse", sub_code="isp.call-limited")
    app = application_submit(application_id=application.pk)
    assert (app.status, app.submit_step, app.work_state) == ("submitting", "sign", "waiting")
    batch = app.batch_no

    clock.advance(minutes=1)
    sweep_onboarding()
    app = get(app)
    assert app.status == "submitted" and app.batch_no == batch
    assert methods(fake) == [CREATE, SIGN, SIGN, CONFIRM]


def test_a_batch_near_its_hour_is_abandoned_for_a_new_one(fake, application, clock):
    fake.fail_next(SIGN, "refuse", sub_code="isp.call-limited", times=8)
    app = application_submit(application_id=application.pk)
    old_batch = app.batch_no
    clock.advance(minutes=56)  # the batch has less than five minutes left
    fake.faults.clear()
    sweep_onboarding()
    app = get(app)
    assert app.status == "submitted" and app.batch_no != old_batch
    assert methods(fake) == [CREATE, SIGN, CREATE, SIGN, CONFIRM]
    assert app.submit_rounds == 2


# --- confirm ------------------------------------------------------------------------------------------------


def test_confirm_answer_lost_is_reconciled_by_query_without_a_second_confirm(fake, application):
    fake.fail_next(CONFIRM, "drop_after")
    app = application_submit(application_id=application.pk)
    assert app.status == "auditing"  # the reconciling query saw MERCHANT_AUDITING
    assert methods(fake) == [CREATE, SIGN, CONFIRM, QUERY]
    assert app.order_no == fake.batches[app.batch_no]["order_no"]


def test_confirm_that_never_arrived_is_sent_again(fake, application):
    fake.fail_next(CONFIRM, "drop_before")
    app = application_submit(application_id=application.pk)
    assert app.status == "submitted"
    assert methods(fake) == [CREATE, SIGN, CONFIRM, QUERY, CONFIRM]


def test_confirm_refused_starts_over_in_a_new_batch(fake, application):
    fake.fail_next(CONFIRM, "refuse", sub_code="BATCH_STATUS_ERROR")
    app = application_submit(application_id=application.pk)
    assert app.status == "submitted"
    assert methods(fake) == [CREATE, SIGN, CONFIRM, QUERY, CANCEL, CREATE, SIGN, CONFIRM]
    assert sorted(b["status"] for b in fake.batches.values()) == ["cancel", "submit"]


def test_gives_up_after_the_configured_number_of_batches(fake, application, settings):
    settings.ALIPAY_SUBMIT_MAX_BATCHES = 2
    fake.fail_next(CONFIRM, "refuse", sub_code="BATCH_STATUS_ERROR", times=5)
    app = application_submit(application_id=application.pk)
    assert app.status == "init" and app.needs_attention
    assert "2" in app.last_error and len(fake.calls_of(CREATE)) == 2
    assert all(b["status"] == "cancel" for b in fake.batches.values())


def test_a_worker_killed_after_sign_is_taken_over_and_starts_a_clean_batch(fake, application, clock, monkeypatch):
    real = onboarding.record

    def killed(app, job, answer, error, now):
        if job.action == "sign":
            raise SystemExit("worker killed")
        return real(app, job, answer, error, now)

    monkeypatch.setattr(onboarding, "record", killed)
    with pytest.raises(SystemExit):
        application_submit(application_id=application.pk)
    monkeypatch.setattr(onboarding, "record", real)  # (undo() would also stop the clock's time travel)
    app = get(application)
    assert (app.status, app.work_state, app.submit_step) == ("submitting", "busy", "sign")

    clock.advance(minutes=4)
    assert sweep_onboarding() == 0  # the lease still runs
    clock.advance(minutes=2)
    assert sweep_onboarding() == 1
    app = get(application)
    assert app.status == "submitted"
    assert methods(fake) == [CREATE, SIGN, CANCEL, CREATE, SIGN, CONFIRM]


def test_staff_cancel_a_submission_waiting_to_retry(fake, application):
    fake.fail_next(SIGN, "refuse", sub_code="isp.call-limited")
    app = application_submit(application_id=application.pk)
    app = application_cancel_submission(application_id=app.pk)
    assert app.status == "init" and app.work_state == "idle" and app.batch_no == ""
    assert methods(fake) == [CREATE, SIGN, CANCEL]
    assert [b["status"] for b in fake.batches.values()] == ["cancel"]


def test_our_signature_is_checked_by_the_gateway(fake, application, settings):
    from payments.fake_gateway import generate_key_pair

    settings.ALIPAY_APP_PRIVATE_KEY = generate_key_pair()[0]  # not the key Alipay knows
    app = application_submit(application_id=application.pk)
    assert (app.status, app.submit_step, app.needs_attention) == ("submitting", "create", True)
    assert "验签出错" in app.last_error
    assert fake.calls == [] and fake.refused_calls[0]["problem"] == "isv.invalid-signature"
    call = AlipayCall.objects.get(application=app)
    assert (call.outcome, call.sub_code) == ("config", "isv.invalid-signature")
