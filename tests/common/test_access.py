"""Who may see what outside the admin pages (DESIGN.md §6): admin logins are throttled (django-axes) with a
lockout staff can clear; /healthz/ tells anonymous callers only whether we are up; the API schema is for
staff."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

pytestmark = pytest.mark.django_db

PASSWORD = "pw-operator-12345"


@pytest.fixture
def operator():
    return get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)


def login(ip: str, password: str, username: str = "operator"):
    client = Client(REMOTE_ADDR=ip)
    resp = client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
    return client, resp


def test_admin_login_locks_an_address_out_after_repeated_failures_until_staff_clear_it(operator, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        _client, resp = login("203.0.113.50", "wrong-password")
    assert resp.status_code == 429  # the third failure locks the address

    client, resp = login("203.0.113.50", PASSWORD)  # even the right password is refused now
    assert resp.status_code == 429 and "_auth_user_id" not in client.session
    _other, resp = login("198.51.100.7", PASSWORD)  # another address is not affected
    assert resp.status_code == 302 and resp["Location"] == "/admin/"

    # A staff member with the right to clear lockouts does it from the admin.
    clerk = get_user_model().objects.create_user("security", password="pw-security-1", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(
        codename__in=["view_accessattempt", "delete_accessattempt"]))
    admin = Client(REMOTE_ADDR="198.51.100.8")
    admin.force_login(clerk)
    attempt = AccessAttempt.objects.get(ip_address="203.0.113.50")
    listing = admin.get("/admin/axes/accessattempt/?locked_out=yes").content.decode()
    assert "203.0.113.50" in listing and 'value="clear_lockout"' in listing
    resp = admin.post("/admin/axes/accessattempt/", {"action": "clear_lockout", "_selected_action": [attempt.pk]},
                      follow=True)
    assert resp.status_code == 200
    assert not AccessAttempt.objects.filter(ip_address="203.0.113.50").exists()

    client, resp = login("203.0.113.50", PASSWORD)
    assert resp.status_code == 302 and client.session["_auth_user_id"] == str(operator.pk)


def test_staff_without_the_delete_right_cannot_clear_a_lockout(operator, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        login("203.0.113.60", "wrong-password")
    viewer = get_user_model().objects.create_user("viewer", password="pw-viewer-1", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_accessattempt"))
    admin = Client()
    admin.force_login(viewer)
    attempt = AccessAttempt.objects.get(ip_address="203.0.113.60")
    assert 'value="clear_lockout"' not in admin.get("/admin/axes/accessattempt/").content.decode()
    admin.post("/admin/axes/accessattempt/", {"action": "clear_lockout", "_selected_action": [attempt.pk]})
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()
    assert login("203.0.113.60", PASSWORD)[1].status_code == 429


def test_the_address_behind_the_proxy_is_the_one_locked(operator, settings):
    """Behind nginx (TRUSTED_PROXY_COUNT=1) every request comes from 127.0.0.1: the client is the address
    nginx saw, not a value the client wrote into X-Forwarded-For itself."""
    settings.AXES_FAILURE_LIMIT = 2
    settings.TRUSTED_PROXY_COUNT = 1

    def via_proxy(claimed: str, real: str, password: str):
        client = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"{claimed}, {real}")
        return client.post("/admin/login/?next=/admin/", {"username": "operator", "password": password})

    via_proxy("1.1.1.1", "203.0.113.70", "wrong")
    via_proxy("2.2.2.2", "203.0.113.70", "wrong")  # a different claim does not escape the count
    assert via_proxy("3.3.3.3", "203.0.113.70", PASSWORD).status_code == 429
    assert via_proxy("203.0.113.70", "198.51.100.9", PASSWORD).status_code == 302
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.70"}


# --- /healthz/ ---------------------------------------------------------------------------------------


def test_healthz_tells_anonymous_callers_only_the_status(settings):
    settings.HEALTHZ_TOKEN = "monitor-token-123"
    resp = Client().get("/healthz/")
    assert resp.status_code == 503  # no worker heartbeat in tests
    assert resp.json() == {"ok": False}
    wrong = Client().get("/healthz/", HTTP_X_HEALTHZ_TOKEN="monitor-token-12")
    assert wrong.json() == {"ok": False}


def test_healthz_details_need_the_token_or_a_staff_session(settings, operator):
    settings.HEALTHZ_TOKEN = "monitor-token-123"
    with_token = Client().get("/healthz/", HTTP_X_HEALTHZ_TOKEN="monitor-token-123").json()
    assert with_token["checks"]["database"] == {"ok": True} and with_token["checks"]["worker"]["ok"] is False
    staff = Client()
    staff.force_login(operator)
    assert "checks" in staff.get("/healthz/").json()

    settings.HEALTHZ_TOKEN = ""  # no token configured: an empty header is not a match
    assert Client().get("/healthz/", HTTP_X_HEALTHZ_TOKEN="").json() == {"ok": False}


# --- /api/schema/ ------------------------------------------------------------------------------------


def test_the_api_schema_needs_a_staff_login(operator):
    assert Client().get("/api/schema/").status_code == 403
    buyer = get_user_model().objects.create_user("someone", password="pw-someone-1", is_staff=False)
    client = Client()
    client.force_login(buyer)
    assert client.get("/api/schema/").status_code == 403
    client.force_login(operator)
    resp = client.get("/api/schema/")
    assert resp.status_code == 200 and b"/api/v1/orders/" in resp.content
