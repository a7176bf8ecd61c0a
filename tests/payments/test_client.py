"""The Alipay client against the fake gateway: Beijing-time timestamps whatever the host's zone, every answer
sorted into success / retryable / outcome unknown / refused / our configuration, keys in every form Alipay's
tools produce, notification signatures."""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alipay import AliPay

from common.http import ConfigurationError, PlatformError, RateLimited
from payments.client import BEIJING, AlipayClient, load_key
from payments.fake_gateway import generate_key_pair
from tests.fakes.alipay import APP_ID, keys

CREATE = "alipay.open.agent.create"


def client_for(fake, **overrides) -> AlipayClient:
    k = keys()
    args = dict(app_id=APP_ID, app_private_key=k["app_private"], alipay_public_key=k["alipay_public"],
                gateway=fake.gateway_url, timeout=(2.0, 2.0))
    args.update(overrides)
    return AlipayClient(**args)


def create(client):
    return client.agent_create(account="a@b.example", contact_name="张三", contact_mobile="13800138000")


@pytest.fixture
def host_zone():
    """Run the body with the process in another time zone (as on a server set to New York)."""
    old = os.environ.get("TZ")

    def switch(zone: str):
        os.environ["TZ"] = zone
        time.tzset()

    yield switch
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_timestamps_are_beijing_time_whatever_the_host_zone(fake, host_zone):
    host_zone("America/New_York")
    assert create(client_for(fake)).node["batch_status"] == "init"
    stamp = fake.calls_of(CREATE)[0]["params"]["timestamp"]

    # The SDK on its own stamps the host's local time, which Alipay refuses from a host outside UTC+8.
    k = keys()
    sdk = AliPay(appid=APP_ID, app_private_key_string=k["app_private"], alipay_public_key_string=k["alipay_public"])
    import requests

    body = sdk.sign_data(sdk.build_body(CREATE, {"account": "a@b.example",
                                                 "contact_info": {"contact_name": "x", "contact_mobile": "1"}}))
    raw = requests.post(fake.gateway_url, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"}, timeout=5).json()
    assert raw["alipay_open_agent_create_response"]["sub_code"] == "isv.invalid-timestamp"
    sent = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60


@pytest.mark.parametrize("kind, sub_code, error, retryable, unknown", [
    ("busy", "", PlatformError, True, True),
    ("system_error", "", PlatformError, True, True),
    ("http500", "", PlatformError, True, True),
    ("drop_before", "", PlatformError, True, True),
    ("refuse", "INVALID_PARAMETER", PlatformError, False, False),
    ("refuse", "isp.call-limited", RateLimited, True, False),
    ("refuse", "isv.insufficient-isv-permissions", PlatformError, False, False),
    ("bad_sign", "", ConfigurationError, False, True),
])
def test_answers_are_sorted(fake, kind, sub_code, error, retryable, unknown):
    fake.fail_next(CREATE, kind, sub_code=sub_code)
    with pytest.raises(error) as caught:
        create(client_for(fake))
    exc = caught.value
    assert type(exc) is error and (exc.retryable, exc.outcome_unknown) == (retryable, unknown)


def test_our_side_problems_are_configuration_errors(fake):
    with pytest.raises(ConfigurationError, match="无效的AppID"):
        create(client_for(fake, app_id="2021000000009999"))
    with pytest.raises(ConfigurationError, match="验签出错"):
        create(client_for(fake, app_private_key=generate_key_pair(1024)[0]))
    with pytest.raises(ConfigurationError, match="ALIPAY_PUBLIC_KEY"):
        create(client_for(fake, alipay_public_key=generate_key_pair(1024)[1]))
    token_call = client_for(fake)
    with pytest.raises(ConfigurationError) as caught:
        token_call.trade_query(app_auth_token="not-a-token", out_trade_no="X")
    assert caught.value.code == "aop.invalid-app-auth-token"


def test_a_closed_port_is_retryable_and_never_reached(fake):
    with pytest.raises(PlatformError) as caught:
        create(client_for(fake, gateway="http://127.0.0.1:9/gateway.do"))
    assert caught.value.retryable and not caught.value.outcome_unknown


def test_keys_as_pem_file_or_bare_base64(tmp_path, settings):
    private, public = generate_key_pair(1024)
    path = tmp_path / "app.pem"
    path.write_text(private)
    assert load_key(str(path), what="ALIPAY_APP_PRIVATE_KEY") == private.strip()
    bare = "".join(line for line in public.splitlines() if "-----" not in line)
    pem = load_key(bare, what="ALIPAY_PUBLIC_KEY")
    assert pem.startswith("-----BEGIN PUBLIC KEY-----") and base64.b64decode(bare)
    AlipayClient(app_id="1", app_private_key=str(path), alipay_public_key=bare, gateway="http://x/gateway.do")
    for bad in ("", "not a key!", "/nonexistent/key.pem"):
        with pytest.raises(ConfigurationError):
            AlipayClient(app_id="1", app_private_key=bad, alipay_public_key=public, gateway="http://x/gateway.do")
    with pytest.raises(ConfigurationError, match="ALIPAY_APP_ID"):
        AlipayClient(app_id="", app_private_key=private, alipay_public_key=public)


def test_notification_signatures(fake, onboarded):
    client = client_for(fake)
    answer = client.trade_precreate(app_auth_token=onboarded.app_auth_token, out_trade_no="XO-1",
                                    total_amount=Decimal("12.30"), subject="测试", timeout_express="120m")
    assert answer.node["qr_code"]
    params = fake.pay("XO-1", send=False)
    assert client.verify_notification(params)
    assert not client.verify_notification({**params, "total_amount": "1.00"})
    assert not client.verify_notification({**params, "sign_type": "RSA"})
    assert not client.verify_notification({**params, "sign": "%%%"})
    assert not client.verify_notification({k: v for k, v in params.items() if k != "sign"})
