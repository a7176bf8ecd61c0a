"""Each channel against a fake that checks the request as the real service does."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from notifications.models import Delivery
from notifications.services import deliveries_sweep, notify
from tests.fakes.notify import (
    FakeAliyunSms,
    FakeDingTalk,
    FakeFeishu,
    FakeSmtp,
    FakeWebhookReceiver,
    FakeWeCom,
)
from tests.fakes.server import Response

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.Status


def only_delivery() -> Delivery:
    return Delivery.objects.get()


def sweep_later(clock, **delta):
    clock.advance(**delta)
    return deliveries_sweep()


# --- WeCom ---------------------------------------------------------------------------------------------


def test_wecom_text_with_mentions_and_key_in_url(clock, subscribe):
    with FakeWeCom(keys={"robot-key"}, clock=clock) as fake:
        subscribe("wecom", secret="robot-key", base_url=fake.url, mentioned_list=["zhangsan", "@all"],
                  mentioned_mobile_list=["13800000000"])
        notify("order.paid", order="3001", item="激活码", quantity=2, amount="19.99")

        d = only_delivery()
        assert d.status == S.SENT and d.attempts == 1 and d.sent_at == clock()
        [(_, doc)] = fake.accepted
        assert doc["msgtype"] == "text"
        assert doc["text"]["content"] == "【订单 3001 已付款】\n订单 3001 已付款：激活码 × 2，金额 19.99 元。"
        assert doc["text"]["mentioned_list"] == ["zhangsan", "@all"]
        assert doc["text"]["mentioned_mobile_list"] == ["13800000000"]
        assert fake.requests[0].query == {"key": "robot-key"}


def test_wecom_long_text_is_cut_to_2048_bytes(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url)
        notify("order.paid", order="3002", item="长" * 3000, quantity=1, amount="1.00")

        assert only_delivery().status == S.SENT
        content = fake.accepted[0][1]["text"]["content"]
        assert len(content.encode()) <= 2048 and content.endswith("…")


def test_wecom_wrong_key_fails_with_reason_and_is_not_retried(clock, subscribe):
    with FakeWeCom(keys={"right"}, clock=clock) as fake:
        subscribe("wecom", secret="wrong", base_url=fake.url)
        notify("order.paid", order="3003", item="x", quantity=1, amount="1")

        d = only_delivery()
        assert d.status == S.FAILED and d.attempts == 1
        assert "93000" in d.last_error and "配置错误" in d.last_error
        for _ in range(3):
            sweep_later(clock, hours=2)
        assert len(fake.requests) == 1 and only_delivery().attempts == 1


def test_wecom_5xx_is_retried_with_backoff(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url)
        fake.force(Response(502, "bad gateway"), Response(503, "unavailable"))
        notify("order.paid", order="3004", item="x", quantity=1, amount="1")

        d = only_delivery()
        assert d.status == S.RETRY_WAIT and d.due_at == clock() + timedelta(minutes=1) and "502" in d.last_error
        assert sweep_later(clock, seconds=30) == 0  # not due yet
        sweep_later(clock, seconds=30)
        d = only_delivery()
        assert d.status == S.RETRY_WAIT and d.due_at == clock() + timedelta(minutes=2)
        sweep_later(clock, minutes=2)
        d = only_delivery()
        assert d.status == S.SENT and d.attempts == 3 and len(fake.accepted) == 1


def test_wecom_rate_limit_answer_waits_and_retries(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url)
        fake.force(Response(200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
        notify("order.paid", order="3005", item="x", quantity=1, amount="1")
        d = only_delivery()
        assert d.status == S.RETRY_WAIT and "45009" in d.last_error
        sweep_later(clock, minutes=1)
        assert only_delivery().status == S.SENT


# --- DingTalk ------------------------------------------------------------------------------------------


def test_dingtalk_signed_request_is_accepted(clock, subscribe):
    secret = "SECabc+/=中"  # characters that need encoding in the signature's base64 and the key
    with FakeDingTalk(robots={"tok": secret}, keyword="告警", clock=clock) as fake:
        subscribe("dingtalk", secret=secret, base_url=fake.url, access_token="tok", at_mobiles=["13800000000"],
                  keyword="告警")
        for i in range(6):  # several timestamps, so signatures with '+' and '/' occur
            clock.advance(milliseconds=137)
            notify("order.paid", order=f"40{i}", item="x", quantity=1, amount="1")

        assert set(Delivery.objects.values_list("status", flat=True)) == {S.SENT}
        assert len(fake.accepted) == 6
        doc = fake.accepted[0][1]
        assert doc["text"]["content"].startswith("告警 ") and doc["at"] == {"atMobiles": ["13800000000"],
                                                                           "isAtAll": False}
        assert fake.requests[0].query["timestamp"] == str(int(fake.accepted[0][0].timestamp() * 1000))


def test_dingtalk_wrong_secret_fails_not_retried(clock, subscribe):
    with FakeDingTalk(robots={"tok": "SECright"}, clock=clock) as fake:
        subscribe("dingtalk", secret="SECwrong", base_url=fake.url, access_token="tok")
        notify("order.paid", order="4100", item="x", quantity=1, amount="1")
        d = only_delivery()
        assert d.status == S.FAILED and "310000" in d.last_error and "sign not match" in d.last_error
        sweep_later(clock, hours=1)
        assert len(fake.requests) == 1


def test_dingtalk_throttling_waits_ten_minutes(clock, subscribe):
    with FakeDingTalk(robots={"tok": "SEC1"}, clock=clock) as fake:
        subscribe("dingtalk", secret="SEC1", base_url=fake.url, access_token="tok")
        fake.force(Response(200, {"errcode": 130101, "errmsg": "send too fast"}))
        notify("order.paid", order="4200", item="x", quantity=1, amount="1")
        d = only_delivery()
        assert d.status == S.RETRY_WAIT and d.due_at == clock() + timedelta(minutes=10)
        sweep_later(clock, minutes=10)
        assert only_delivery().status == S.SENT


# --- Feishu --------------------------------------------------------------------------------------------


def test_feishu_signed_body_is_accepted_and_cut_to_20kb(clock, subscribe):
    with FakeFeishu(bots={"hook-1": "fs-secret"}, clock=clock) as fake:
        subscribe("feishu", secret="fs-secret", base_url=fake.url, token="hook-1")
        notify("order.paid", order="5001", item="x", quantity=1, amount="1")
        notify("order.paid", order="5002", item='"长\n' * 9000, quantity=1, amount="1")

        assert list(Delivery.objects.order_by("pk").values_list("status", flat=True)) == [S.SENT, S.SENT]
        assert fake.accepted[0][1]["content"]["text"].startswith("【订单 5001 已付款】")
        assert fake.accepted[0][1]["timestamp"] == str(int(clock().timestamp()))
        assert len(fake.requests[1].body) <= 20 * 1024


def test_feishu_wrong_secret_fails_not_retried(clock, subscribe):
    with FakeFeishu(bots={"hook-1": "right"}, clock=clock) as fake:
        subscribe("feishu", secret="wrong", base_url=fake.url, token="hook-1")
        notify("order.paid", order="5003", item="x", quantity=1, amount="1")
        d = only_delivery()
        assert d.status == S.FAILED and "19021" in d.last_error
        sweep_later(clock, hours=1)
        assert len(fake.requests) == 1


# --- Aliyun SMS ----------------------------------------------------------------------------------------

SMS = {"access_key_id": "LTAI-test", "sign_name": "闲鱼助手", "template_code": "SMS_1"}


def test_sms_full_signature_is_recomputed_by_the_fake(clock, subscribe):
    with FakeAliyunSms(keys={"LTAI-test": "ak secret*~ 1"}, clock=clock) as fake:
        subscribe("sms", secret="ak secret*~ 1", base_url=fake.url, phone_numbers=["13800000000", "13900000000"],
                  **SMS)
        notify("order.paid", order="6001", item="激活码 (A*B~C)", quantity=1, amount="9.90")

        d = only_delivery()
        assert d.status == S.SENT, d.last_error
        [(_, params)] = fake.accepted
        assert params["PhoneNumbers"] == "13800000000,13900000000"
        assert params["OutId"] == f"ntf-{d.pk}" and d.external_id == params["BizId"]
        assert params["TemplateParam"] == {"content": "订单 6001 已付款：激活码 (A*B~C) × 1，金额 9.90 元。"}


def test_sms_buyer_event_goes_to_the_recipient_with_mapped_params(clock, subscribe):
    with FakeAliyunSms(keys={"LTAI-test": "s"}, clock=clock) as fake:
        subscribe("sms", events=("kyc.link_ready",), secret="s", base_url=fake.url, phone_numbers=["13800000000"],
                  template_params={"url": "url"}, **SMS)
        n = notify("kyc.link_ready", recipient="13700000000", order="6002", url="https://x.test/verify/t/",
                   expires="明天")
        assert only_delivery().status == S.SENT
        params = fake.accepted[0][1]
        assert params["PhoneNumbers"] == "13700000000"
        assert params["TemplateParam"] == {"url": "https://x.test/verify/t/"}
        assert "13700000000" not in json.dumps(n.context)


def test_sms_with_unknown_outcome_is_never_resent(clock, subscribe):
    with FakeAliyunSms(keys={"LTAI-test": "s"}, clock=clock) as fake:
        subscribe("sms", secret="s", base_url=fake.url, phone_numbers=["13800000000"], **SMS)
        fake.drop_after_accepting(1)
        notify("order.paid", order="6003", item="x", quantity=1, amount="1")

        d = only_delivery()
        assert d.status == S.UNKNOWN and "不会自动重发" in d.last_error
        for _ in range(3):
            sweep_later(clock, hours=1)
        assert len(fake.accepted) == 1 and only_delivery().status == S.UNKNOWN


def test_sms_wrong_secret_is_a_configuration_error(clock, subscribe):
    with FakeAliyunSms(keys={"LTAI-test": "right"}, clock=clock) as fake:
        subscribe("sms", secret="wrong", base_url=fake.url, phone_numbers=["13800000000"], **SMS)
        notify("order.paid", order="6004", item="x", quantity=1, amount="1")
        d = only_delivery()
        assert d.status == S.FAILED and "SignatureDoesNotMatch" in d.last_error
        sweep_later(clock, hours=1)
        assert len(fake.requests) == 1


# --- signed webhook ------------------------------------------------------------------------------------


def test_webhook_signature_and_retry_after_5xx(clock, subscribe):
    with FakeWebhookReceiver("hook-secret", clock=clock) as fake:
        ch = subscribe("webhook", secret="hook-secret", url=f"{fake.url}/hooks/xianyu")
        fake.force(Response(500, "boom"))
        n = notify("order.paid", order="7001", item="x", quantity=1, amount="1")
        assert only_delivery().status == S.RETRY_WAIT
        sweep_later(clock, minutes=1)

        d = only_delivery()
        assert d.status == S.SENT and d.attempts == 2 and d.channel == ch
        [(_, doc)] = fake.accepted
        assert doc["event"] == "order.paid" and doc["notification_id"] == n.pk and doc["delivery_id"] == d.pk
        assert doc["context"] == {"order": "7001", "item": "x", "quantity": 1, "amount": "1"}
        assert doc["_headers"]["x-delivery-id"] == str(d.pk)
        assert fake.requests[1].path == "/hooks/xianyu"


def test_webhook_refused_signature_is_a_configuration_error(clock, subscribe):
    with FakeWebhookReceiver("their-secret", clock=clock) as fake:
        subscribe("webhook", secret="our-secret", url=fake.url)
        notify("order.paid", order="7002", item="x", quantity=1, amount="1")
        d = only_delivery()
        assert d.status == S.FAILED and "401" in d.last_error
        sweep_later(clock, hours=1)
        assert len(fake.requests) == 1


# --- e-mail --------------------------------------------------------------------------------------------


@pytest.fixture
def smtp(settings):
    with FakeSmtp(refuse={"nobody@example.com"}) as server:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_TIMEOUT = 5
        yield server


def test_email_through_smtp(clock, subscribe, smtp):
    subscribe("email", to=["ops@example.com", "boss@example.com"], subject_prefix="[闲鱼] ")
    notify("order.paid", order="8001", item="x", quantity=1, amount="1")
    assert only_delivery().status == S.SENT
    [(mail_from, rcpts, data)] = smtp.messages
    assert rcpts == ["ops@example.com", "boss@example.com"] and mail_from == "xianyu-ops@localhost"
    assert "Subject: =?utf-8?" in data  # the Chinese subject, MIME-encoded


def test_email_refused_recipient_is_a_configuration_error(clock, subscribe, smtp):
    subscribe("email", to=["nobody@example.com"])
    notify("order.paid", order="8002", item="x", quantity=1, amount="1")
    d = only_delivery()
    assert d.status == S.FAILED and "SMTPRecipientsRefused" in d.last_error
