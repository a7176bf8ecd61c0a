"""common/: encrypted fields and key rotation, health, periodic tasks declared in code, the API."""

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts.models import Shop
from accounts.services import shop_upsert
from common import fields

pytestmark = pytest.mark.django_db


def raw_secret(pk):
    with connection.cursor() as cur:
        cur.execute("SELECT app_secret FROM accounts_shop WHERE id = %s", [pk])
        return cur.fetchone()[0]


def test_secrets_are_encrypted_at_rest_and_rotate_to_the_newest_key(settings):
    old = settings.FIELD_ENCRYPTION_KEYS[0]
    shop, _ = shop_upsert(platform="xianguanjia", name="s", app_key="k", app_secret="top-secret")
    token = raw_secret(shop.pk)
    assert "top-secret" not in token

    new = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("reencrypt_fields")
    rotated = raw_secret(shop.pk)
    assert rotated != token
    assert Fernet(new.encode()).decrypt(rotated.encode()) == b"top-secret"

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key can now be retired
    assert Shop.objects.get(pk=shop.pk).app_secret == "top-secret"


def test_mask_keeps_a_phone_s_last_four_digits_and_nothing_of_anything_else():
    assert fields.mask("13800138000") == "*******8000"
    assert fields.mask("+86 138-0013-8000") == "*********8000"
    for value in ("VIP-AAAA-1111", "张小明", "浙江省杭州市余杭区文一西路969号", "buyer@example.cn", "1234", "a"):
        assert fields.mask(value) == fields.HIDDEN
    assert fields.mask("") == ""
    assert fields.mask_secret("sk-live-abcdef") == str(fields.mask_secret("x")) != fields.mask_secret("")


def test_shop_add_command_creates_then_updates_without_prompts():
    call_command("shop_add", "--platform", "goofish", "--name", "A", "--app-key", "k1", "--app-secret", "s1",
                 "--session", "tok")
    call_command("shop_add", "--platform", "goofish", "--name", "B", "--app-key", "k1", "--app-secret", "s2")
    shop = Shop.objects.get()
    assert (shop.name, shop.app_secret, shop.session_token) == ("B", "s2", "tok")


def test_shop_add_refuses_an_unknown_platform():
    from django.core.management.base import CommandError

    with pytest.raises((CommandError, SystemExit)):
        call_command("shop_add", "--platform", "ebay", "--name", "A", "--app-key", "k", "--app-secret", "s")
    assert Shop.objects.count() == 0


def test_setup_roles_creates_the_four_roles_twice_safely():
    from django.contrib.auth.models import Group

    call_command("setup_roles")
    call_command("setup_roles")
    assert set(Group.objects.values_list("name", flat=True)) >= {"operator", "kyc_reviewer", "finance", "admin"}
    assert Group.objects.get(name="kyc_reviewer").permissions.filter(codename="view_pii").exists()


def test_periodic_tasks_declared_in_code_are_installed_on_migrate():
    from django_celery_beat.models import PeriodicTask

    names = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {"common.tasks.heartbeat", "orders.tasks.sweep_inbox"} <= names


def test_healthz_reports_stale_worker_and_beat_as_unhealthy(admin_client):
    resp = admin_client.get("/healthz/")
    assert resp.status_code == 503
    body = resp.json()
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["worker"]["ok"] is False


def test_healthz_is_green_after_a_heartbeat(admin_client):
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    from common.tasks import heartbeat

    heartbeat()
    PeriodicTask.objects.filter(task="common.tasks.heartbeat").update(last_run_at=timezone.now())
    resp = admin_client.get("/healthz/")
    assert resp.json()["checks"]["worker"]["ok"] and resp.json()["checks"]["beat"]["ok"]


def test_api_needs_staff_and_lists_orders(admin_client):
    assert Client().get("/api/v1/orders/").status_code in (401, 403)
    assert admin_client.get("/api/v1/orders/").status_code == 200
    assert admin_client.get("/api/schema/").status_code == 200
