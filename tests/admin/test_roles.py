"""Roles on every page: what each role sees in the navigation and may open (accounts.roles, setup_roles)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client

pytestmark = pytest.mark.django_db


def member(role: str) -> Client:
    call_command("setup_roles", verbosity=0)
    user = get_user_model().objects.create_user(f"u-{role}", password="pw-role-12345", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def test_an_operator_cannot_see_payments():
    client = member("operator")
    index = client.get("/admin/").content.decode()
    assert "/admin/orders/order/" in index and "/admin/payments/" not in index
    assert "商户进件" not in index  # no empty navigation group
    for url in ("/admin/payments/trade/", "/admin/payments/merchant/", "/admin/payments/facetofaceapplication/"):
        assert client.get(url).status_code == 403, url


def test_finance_cannot_see_kyc_reviews():
    client = member("finance")
    index = client.get("/admin/").content.decode()
    assert "/admin/payments/trade/" in index and "/admin/kyc/" not in index
    for url in ("/admin/kyc/verification/", "/admin/kyc/verificationevent/", "/admin/kyc/sumsubinboxevent/"):
        assert client.get(url).status_code == 403, url


def test_a_kyc_reviewer_sees_kyc_and_no_payments():
    client = member("kyc_reviewer")
    assert client.get("/admin/kyc/verification/").status_code == 200
    assert client.get("/admin/payments/trade/").status_code == 403


def test_the_beat_scheduler_and_the_operation_log_are_for_administrators_only():
    operator = member("operator")
    # Even given the beat tables' permissions, a non-administrator is refused them.
    group = Group.objects.get(name="operator")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="django_celery_beat"))
    group.permissions.add(Permission.objects.get(codename="view_logentry"))
    for url in ("/admin/django_celery_beat/periodictask/", "/admin/django_celery_beat/intervalschedule/",
                "/admin/admin/logentry/"):
        assert operator.get(url).status_code == 403, url
    assert "periodictask" not in operator.get("/admin/").content.decode()

    admin = member("admin")  # the administrators' role, not a superuser
    for url in ("/admin/django_celery_beat/periodictask/", "/admin/admin/logentry/"):
        assert admin.get(url).status_code == 200, url
    assert "/admin/django_celery_beat/periodictask/" in admin.get("/admin/").content.decode()


def test_the_failures_page_shows_each_role_only_its_lists():
    finance = member("finance")
    html = finance.get("/admin/failures/").content.decode()
    assert "block-inbox_alipayinboxevent" in html and "block-inbox_sumsubinboxevent" not in html


def test_row_and_page_buttons_run_the_services_and_respect_permissions(settings):
    """"Query onboarding now" on an application's row and page; "re-send the link" on a verification's: shown
    to staff who may change them, refused to others."""
    from payments.models import FacetofaceApplication, Merchant

    app = FacetofaceApplication.objects.create(merchant=Merchant.objects.create(name="按钮商户"),
                                               merchant_name="按钮商户", shop_name="一号店")
    finance = member("finance")
    listing = finance.get("/admin/payments/facetofaceapplication/").content.decode()
    row_url = f"/admin/payments/facetofaceapplication/{app.pk}/query_now_row/"
    assert row_url in listing.replace("&#x2F;", "/") or "query_now_row" in listing
    page = finance.get(f"/admin/payments/facetofaceapplication/{app.pk}/change/").content.decode()
    assert "query_now_detail" in page and "withdraw_detail" in page
    resp = finance.get(f"/admin/payments/facetofaceapplication/{app.pk}/query_now_detail/")
    assert resp.status_code == 302  # ran (a draft has nothing to query: the service says so in a message)

    operator = member("operator")
    assert operator.get(f"/admin/payments/facetofaceapplication/{app.pk}/query_now_detail/").status_code == 403
