"""Reaching the buyer through the platform's own chat (`adapter.message_buyer`, where the adapter says
`can_message_buyer`): the link, the retry request and the reminder go out as BuyerMessage due work, never
twice blindly."""

from __future__ import annotations

import pytest

from common.http import PlatformError
from kyc.models import BuyerMessage
from kyc.work import kyc_sweep
from orders.adapters import sandbox as sandbox_module
from orders.models import SandboxCall, SandboxMessage

from .conftest import kyc_product, sandbox_paid, verification_of, xgj_paid

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_sandbox_platform_chat_carries_the_link(no_sumsub, sandbox_shop):
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "MB1"))
    message = BuyerMessage.objects.get(verification=v)
    assert message.status == "sent" and message.kind == "link"
    assert SandboxCall.objects.filter(method="message_buyer").count() == 1
    received = list(SandboxMessage.objects.filter(order__order_no="MB1").values_list("text", flat=True))
    assert len(received) == 1 and v.url in received[0]  # the sandbox buyer read the link


def test_a_platform_without_a_chat_api_gets_no_message_rows(sumsub, xgj, xgj_shop):
    kyc_product(xgj_shop)
    v = verification_of(xgj_paid(xgj, xgj_shop, "MB2"))
    assert v.status == "link_sent" and not BuyerMessage.objects.exists()


class ChattySandbox(sandbox_module.SandboxAdapter):
    """The sandbox with a buyer chat (this test's stand-in until the real one lands): every message is recorded
    as the platform's log would show it; `failures` makes the next calls fail the way a platform can."""

    can_message_buyer = True
    failures: list[PlatformError] = []

    def message_buyer(self, platform_order_id: str, text: str) -> None:
        if self.failures:
            exc = self.failures.pop(0)
            self._record("message_buyer", {"order_no": platform_order_id, "text": text}, {"error": str(exc)})
            raise exc
        self._record("message_buyer", {"order_no": platform_order_id, "text": text}, {"ok": True})


@pytest.fixture
def chatty(monkeypatch):
    ChattySandbox.failures = []
    monkeypatch.setattr(sandbox_module, "SandboxAdapter", ChattySandbox)
    return ChattySandbox


def sent_texts() -> list[str]:
    return [c.params["text"] for c in SandboxCall.objects.filter(method="message_buyer", response__ok=True)
            .order_by("pk")]


def test_link_retry_and_reminder_reach_the_buyer_in_chat(no_sumsub, sandbox_shop, chatty, clock):
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "MB3"))
    texts = sent_texts()
    assert len(texts) == 1 and "「需实名商品」" in texts[0] and v.url in texts[0]

    clock.advance(hours=36, minutes=1)
    kyc_sweep()
    texts = sent_texts()
    assert len(texts) == 2 and "过期" in texts[1] and v.url in texts[1]


def test_a_retryable_failure_is_retried_and_an_unknown_outcome_is_never_resent(no_sumsub, sandbox_shop, chatty,
                                                                                clock):
    chatty.failures = [PlatformError("busy", retryable=True)]
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "MB4"))
    message = BuyerMessage.objects.get(verification=v)
    assert message.status == "retry_wait" and sent_texts() == []
    clock.advance(minutes=2)
    kyc_sweep()
    assert BuyerMessage.objects.get(pk=message.pk).status == "sent" and len(sent_texts()) == 1

    chatty.failures = [PlatformError("read timeout", retryable=True, outcome_unknown=True)]
    order = sandbox_paid(sandbox_shop, "MB5")
    lost = BuyerMessage.objects.get(verification__order=order)
    assert lost.status == "unknown"
    clock.advance(hours=1)
    kyc_sweep()
    assert BuyerMessage.objects.get(pk=lost.pk).status == "unknown"
    assert SandboxCall.objects.filter(method="message_buyer", params__order_no="MB5").count() == 1
