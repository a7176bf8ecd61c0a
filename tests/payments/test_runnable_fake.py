"""`manage.py fake_alipay` (the local stand-in a new user runs next to ./run) and `manage.py alipay_check`:
the keys and settings it writes, an application submitted against it and walked to success through its
pages, its state kept across restarts."""

from __future__ import annotations

import threading

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from payments.fake_gateway import generate_key_pair
from payments.management.commands.fake_alipay import build, merge_dotenv
from payments.services.onboarding import application_create, application_run_now, application_submit

from .conftest import application_fields

pytestmark = pytest.mark.django_db


@pytest.fixture
def runnable(tmp_path, settings):
    folder = tmp_path / "fake_alipay"
    server, gateway, env = build(folder=folder, port=0, audit_seconds=0, confirm_seconds=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for key, value in env.items():
        setattr(settings, key, int(value) if value.isdigit() and key.endswith("SECONDS") else value)
    settings.MEDIA_ROOT = tmp_path / "media"
    yield folder, gateway, env
    server.shutdown()
    server.server_close()


def test_walks_an_application_to_success(runnable, merchant, capsys, tmp_path):
    folder, gateway, env = runnable
    assert env["ALIPAY_POLL_INTERVAL_SECONDS"] == "30" and env["ALIPAY_GATEWAY_URL"].endswith("/gateway.do")
    assert (folder / "alipay.env").read_text().splitlines()[0] == f"ALIPAY_GATEWAY_URL={env['ALIPAY_GATEWAY_URL']}"
    assert oct((folder / "app_private.pem").stat().st_mode)[-3:] == "600"

    call_command("alipay_check")
    assert "ok: the gateway answered with a signed, verified refusal" in capsys.readouterr().out

    pictures = {name: SimpleUploadedFile(file, (folder / "pictures" / file).read_bytes())
                for name, file in (("business_license_pic", "licence.png"), ("shop_scene_pic", "shop-inside.png"),
                                   ("shop_sign_board_pic", "shop-sign.png"))}
    app = application_create(merchant=merchant, **application_fields(**pictures))
    assert application_submit(application_id=app.pk).status == "submitted"
    app = application_run_now(application_id=app.pk)
    assert app.status == "awaiting_confirmation" and app.confirm_url.startswith(gateway.base_url)

    page = requests.get(app.confirm_url, timeout=5)
    assert "确认开通" in page.text and merchant.alipay_account in page.text
    confirmed = requests.post(app.confirm_url, data={"back": "/"}, timeout=5)
    assert confirmed.status_code == 200 and "MERCHANT_CONFIRM_SUCCESS" in confirmed.text
    assert application_run_now(application_id=app.pk).status == "success"

    # a restart forgets nothing
    server, again, _env = build(folder=folder, port=0)
    server.server_close()
    assert again.batches[app.batch_no]["order_status"] == "MERCHANT_CONFIRM_SUCCESS"


def test_alipay_check_fails_plainly(runnable, settings):
    settings.ALIPAY_PUBLIC_KEY = generate_key_pair(1024)[1]
    with pytest.raises(CommandError, match="ALIPAY_PUBLIC_KEY"):
        call_command("alipay_check")
    settings.ALIPAY_APP_PRIVATE_KEY = "/nowhere/key.pem"
    with pytest.raises(CommandError, match="FAIL keys"):
        call_command("alipay_check")


def test_write_dotenv_keeps_other_lines(tmp_path):
    env = tmp_path / ".env"
    env.write_text("DJANGO_DEBUG=1\nALIPAY_APP_ID=old\n")
    merge_dotenv(env, {"ALIPAY_APP_ID": "new", "ALIPAY_GATEWAY_URL": "http://127.0.0.1:8766/gateway.do"})
    assert env.read_text().splitlines() == ["DJANGO_DEBUG=1", "ALIPAY_APP_ID=new",
                                            "ALIPAY_GATEWAY_URL=http://127.0.0.1:8766/gateway.do"]


def test_bad_options_are_refused():
    with pytest.raises(CommandError, match="port"):
        call_command("fake_alipay", "--port", "70000")
    with pytest.raises(CommandError, match="negative"):
        call_command("fake_alipay", "--audit-seconds", "-1")
