"""KYC in the admin, as the KYC reviewer sees it: every page renders, the link comes with a copy button,
results are overridden only with a written reason, which lands in the order's event log."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from kyc.models import BuyerMessage, KycApplicant, KycPolicy, SumsubInboxEvent, Verification, VerificationEvent
from orders.models import Order, OrderEvent

from .conftest import kyc_product, sandbox_paid, verification_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer():
    call_command("setup_roles", verbosity=0)
    user = get_user_model().objects.create_user("kyc-reviewer", password="reviewer-pass-123", is_staff=True)
    user.groups.add(Group.objects.get(name="kyc_reviewer"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def v(no_sumsub, sandbox_shop, django_capture_on_commit_callbacks):
    product = kyc_product(sandbox_shop)
    KycPolicy.objects.create(product=product, level_name="basic-kyc-level")
    v = verification_of(sandbox_paid(sandbox_shop, "A1"))
    SumsubInboxEvent.objects.create(source="sumsub", key="sha256:x", topic="applicantPending", body="{}")
    assert BuyerMessage.objects.filter(verification=v, kind="link").count() == 1  # the sandbox chat carried the link
    return v


@pytest.mark.parametrize("model", ["verification", "kycpolicy", "kycapplicant", "sumsubinboxevent", "buyermessage",
                                   "verificationevent"])
def test_every_kyc_admin_page_renders_for_the_reviewer(v, reviewer, model):
    objects = {"verification": v, "kycpolicy": KycPolicy.objects.get(), "kycapplicant": KycApplicant.objects.get(),
               "sumsubinboxevent": SumsubInboxEvent.objects.get(), "buyermessage": BuyerMessage.objects.get(),
               "verificationevent": VerificationEvent.objects.first()}
    assert reviewer.get(reverse(f"admin:kyc_{model}_changelist")).status_code == 200
    assert reviewer.get(reverse(f"admin:kyc_{model}_change", args=[objects[model].pk])).status_code == 200


def test_the_detail_shows_the_link_with_a_copy_button_and_the_log(v, reviewer):
    html = reviewer.get(reverse("admin:kyc_verification_change", args=[v.pk])).content.decode()
    assert f'value="{v.url}"' in html and "navigator.clipboard.writeText" in html
    assert "认证链接已发送" in html  # the verification's own log
    assert reviewer.get(reverse("admin:kyc_verification_add")).status_code == 403


def test_override_without_a_reason_changes_nothing(v, reviewer):
    url = reverse("admin:kyc_verification_changelist")
    resp = reviewer.post(url, {"action": "override_approve", "_selected_action": [v.pk], "apply": "1", "reason": ""})
    assert resp.status_code == 200 and "reason" in resp.content.decode()
    assert Verification.objects.get(pk=v.pk).status == "link_sent"
    assert Order.objects.get(pk=v.order_id).status == "awaiting_kyc"


def test_override_with_a_reason_releases_the_order_and_logs_it(v, reviewer, django_capture_on_commit_callbacks):
    url = reverse("admin:kyc_verification_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        resp = reviewer.post(url, {"action": "override_approve", "_selected_action": [v.pk], "apply": "1",
                                   "reason": "已电话核实买家身份"})
    assert resp.status_code == 302
    assert Verification.objects.get(pk=v.pk).status == "approved"
    assert Order.objects.get(pk=v.order_id).status == "shipped"
    note = OrderEvent.objects.get(order_id=v.order_id, actor="staff", kind="note")
    assert "已电话核实买家身份" in note.message and note.user.username == "kyc-reviewer"
    assert any("1" in str(m) for m in get_messages(resp.wsgi_request))


def test_sumsub_sandbox_actions_need_sandbox_credentials(v, reviewer):
    url = reverse("admin:kyc_verification_changelist")
    resp = reviewer.post(url, {"action": "sumsub_test_approve", "_selected_action": [v.pk]}, follow=True)
    assert "sbx:" in resp.content.decode()
    assert Verification.objects.get(pk=v.pk).status == "link_sent"
