"""Every management command refuses what it cannot do with a plain message and a non-zero exit, never a
traceback: unknown items and statuses, NUL bytes, bytes that are not UTF-8, over-long and out-of-range
values, contradictory options. And --help lists the allowed values."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from django.core.management import call_command, execute_from_command_line
from django.core.management.base import CommandError

from accounts.models import Shop
from accounts.services import shop_upsert
from orders.models import Order, OrderInboxEvent, Product, SandboxOrder

pytestmark = pytest.mark.django_db(transaction=True)

NUL = "bad\x00value"
NOT_UTF8 = "bad\udcffvalue"  # how Python hands over a command-line byte that is not UTF-8


def cli(*argv) -> tuple[int, str, str]:
    """Run a command as `manage.py …` would: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            execute_from_command_line(["manage.py", *argv])
        except SystemExit as exc:
            code = exc.code or 0
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def sandbox():
    shop = shop_upsert(platform="sandbox", name="命令沙箱", app_key="cmd-sbx", app_secret="s")[0]
    Product.objects.create(shop=shop, item_id="card-a", title="卡 A", auto_ship=False)
    Product.objects.create(shop=shop, item_id="card-b", title="卡 B", auto_ship=False)
    return shop


# --- sandbox_order -------------------------------------------------------------------------------------


def test_sandbox_order_refuses_an_unknown_item_naming_the_shops_items(sandbox):
    code, out, err = cli("sandbox_order", "--shop", "cmd-sbx", "--item", "nosuchitem")
    assert code == 1 and "nosuchitem" in err and "card-a, card-b" in err and "Traceback" not in err
    assert not SandboxOrder.objects.exists() and not OrderInboxEvent.objects.exists()


def test_sandbox_order_refuses_an_unknown_status_and_help_lists_the_statuses(sandbox):
    code, out, err = cli("sandbox_order", "--shop", "cmd-sbx", "--item", "card-a", "--status", "bogus")
    assert code == 2 and "invalid choice: 'bogus'" in err and "'refunding'" in err
    assert not SandboxOrder.objects.exists()
    code, out, _ = cli("sandbox_order", "--help")
    assert code == 0
    assert "{pending_payment,paid,shipped,completed,refunding,closed,refunded}" in "".join(out.split())


@pytest.mark.parametrize("args, message", [
    (["--quantity", "0"], "--quantity: must be between 1 and 999"),
    (["--quantity", "many"], "--quantity: must be a whole number"),
    (["--amount-fen", "-1"], "--amount-fen: must be between 0"),
    (["--order-no", NUL], "--order-no: contains a NUL byte"),
    (["--order-no", "9" * 65], "--order-no: is longer than 64 characters"),
    (["--item", NOT_UTF8], "--item: is not valid UTF-8 text"),
])
def test_sandbox_order_refuses_bad_values(sandbox, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("sandbox_order", "--shop", "cmd-sbx", "--item", "card-a", *args)
    assert not SandboxOrder.objects.exists()


def test_sandbox_order_refuses_a_real_platforms_shop(sandbox):
    shop_upsert(platform="xianguanjia", name="真店", app_key="real", app_secret="s")
    with pytest.raises(CommandError, match="只有沙箱店铺"):
        call_command("sandbox_order", "--shop", "real", "--item", "card-a")


def test_sandbox_order_sends_a_good_order(sandbox):
    out = io.StringIO()
    call_command("sandbox_order", "--shop", "cmd-sbx", "--item", "card-b", "--quantity", "2", stdout=out)
    assert "sent as paid" in out.getvalue()
    assert SandboxOrder.objects.get().quantity == 2
    assert Order.objects.get().status == "ready_to_ship"  # the message went through the inbox


# --- shop_add ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--name", NUL], "--name: contains a NUL byte"),
    (["--name", "店" * 101], "--name: is longer than 100 characters"),
    (["--name", "   "], "--name: is empty"),
    (["--app-key", NOT_UTF8], "--app-key: is not valid UTF-8 text"),
    (["--app-secret", NUL], "--app-secret: contains a NUL byte"),
    (["--seller-id", "x" * 65], "--seller-id: is longer than 64 characters"),
    (["--platform", "taobao"], "invalid choice: 'taobao'"),
])
def test_shop_add_refuses_bad_values(args, message):
    base = {"--platform": "sandbox", "--name": "店", "--app-key": "k", "--app-secret": "s"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    with pytest.raises(CommandError, match=message):
        call_command("shop_add", *[part for pair in base.items() for part in pair])
    assert not Shop.objects.exists()


def test_shop_add_creates_then_updates():
    out = io.StringIO()
    call_command("shop_add", "--platform", "sandbox", "--name", " 店 ", "--app-key", "k", "--app-secret", "s",
                 stdout=out)
    call_command("shop_add", "--platform", "sandbox", "--name", "新名", "--app-key", "k", "--app-secret", "s2",
                 stdout=out)
    assert "created shop" in out.getvalue() and "updated shop" in out.getvalue()
    shop = Shop.objects.get()
    assert (shop.name, shop.app_secret) == ("新名", "s2")


# --- sync_order ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("order_id, message", [
    (NUL, "ORDER_ID: contains a NUL byte"),
    ("1" * 65, "ORDER_ID: is longer than 64 characters"),
    (NOT_UTF8, "ORDER_ID: is not valid UTF-8 text"),
])
def test_sync_order_refuses_bad_order_ids(sandbox, order_id, message):
    with pytest.raises(CommandError, match=message):
        call_command("sync_order", "--shop", "cmd-sbx", order_id)


def test_sync_order_reports_an_order_the_platform_does_not_know(sandbox):
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 orders could not be synced"):
        call_command("sync_order", "--shop", "cmd-sbx", "NOPE-1", stderr=err)
    assert "NOPE-1" in err.getvalue() and not Order.objects.exists()


def test_an_unknown_shop_is_named(sandbox):
    for command in (["sync_order", "1"], ["sandbox_order", "--item", "card-a"], ["backfill_orders"]):
        with pytest.raises(CommandError, match="no shop matches 'nope'"):
            call_command(command[0], "--shop", "nope", *command[1:])
    with pytest.raises(CommandError, match="--shop: contains a NUL byte"):
        call_command("backfill_orders", "--shop", NUL)


# --- replay_events, reencrypt_fields, seed_demo, setup_roles ----------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--limit", "0"], "--limit: must be between 1"),
    (["--limit", "-5"], "--limit: must be between 1"),
    (["--id", "abc"], "--id: must be a whole number"),
    (["--failed", "--all"], "not allowed with argument"),
    (["--source", NUL], "--source: contains a NUL byte"),
])
def test_replay_events_refuses_bad_options(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("replay_events", *args)


def test_replay_events_says_when_nothing_matches():
    out = io.StringIO()
    call_command("replay_events", "--source", "nowhere", stdout=out)
    assert "no stored events match (source 'nowhere')" in out.getvalue()


def test_reencrypt_fields_refuses_a_bad_batch_and_names_a_row_it_cannot_decrypt(settings):
    with pytest.raises(CommandError, match="--batch: must be between 1"):
        call_command("reencrypt_fields", "--batch", "0")
    shop = shop_upsert(platform="sandbox", name="密钥店", app_key="rk", app_secret="secret")[0]
    from cryptography.fernet import Fernet

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key that encrypted it is gone
    with pytest.raises(CommandError, match=f"accounts.Shop #{shop.pk}: a value cannot be decrypted"):
        call_command("reencrypt_fields", stdout=io.StringIO())
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]
    with pytest.raises(CommandError, match="FIELD_ENCRYPTION_KEYS is not usable"):
        call_command("reencrypt_fields", stdout=io.StringIO())


def test_seed_demo_refuses_an_unusable_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_ADMIN_PASSWORD", "pass\udcffword")
    with pytest.raises(CommandError, match="DEMO_ADMIN_PASSWORD is not valid UTF-8 text"):
        call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.exists()


def test_setup_roles_runs_twice_and_refuses_arguments_it_does_not_take():
    out = io.StringIO()
    call_command("setup_roles", stdout=out, stderr=io.StringIO())
    call_command("setup_roles", stdout=out, stderr=io.StringIO())
    assert "created role operator" in out.getvalue() and "updated role operator" in out.getvalue()
    code, _, err = cli("setup_roles", "--everyone")
    assert code == 2 and "unrecognized arguments: --everyone" in err
