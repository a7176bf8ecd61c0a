"""`manage.py kyc_check` against the fake Sumsub, and `kyc_link`."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from kyc.models import KycPolicy

from .conftest import kyc_product, sandbox_paid, verification_of

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("kyc_check", *args, stdout=out)
    return out.getvalue()


def test_kyc_check_passes_with_good_credentials_and_known_levels(sumsub):
    out = run()
    assert "credentials accepted" in out and "KYC ready" in out
    assert [r.path for r in sumsub.requests] == ["/resources/applicants/-/levels"]
    assert sumsub.refused == []


def test_kyc_check_reports_a_refused_secret(sumsub, settings):
    settings.SUMSUB_SECRET_KEY = "wrong-secret"
    with pytest.raises(CommandError, match="refused our credentials"):
        run()
    assert sumsub.refused == [("/resources/applicants/-/levels", "Request signature mismatch")]


def test_kyc_check_reports_a_missing_level(sumsub, sandbox_shop):
    KycPolicy.objects.create(product=kyc_product(sandbox_shop), level_name="no-such-level")
    with pytest.raises(CommandError, match="no-such-level"):
        run()
    with pytest.raises(CommandError, match="other-level"):
        KycPolicy.objects.all().delete()
        run("--level", "other-level")


def test_kyc_check_needs_the_webhook_secret(sumsub, settings):
    settings.SUMSUB_WEBHOOK_SECRET = ""
    with pytest.raises(CommandError, match="SUMSUB_WEBHOOK_SECRET"):
        run()


def test_kyc_check_unreachable(settings, sumsub):
    settings.SUMSUB_BASE_URL = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match="could not be reached"):
        run()


def test_kyc_check_without_sumsub(no_sumsub, settings):
    assert "local KYC sandbox" in run()
    settings.KYC_SANDBOX = False
    with pytest.raises(CommandError, match="not configured"):
        run()


def test_kyc_link_prints_the_link(no_sumsub, sandbox_shop, django_capture_on_commit_callbacks):
    kyc_product(sandbox_shop)
    v = verification_of(sandbox_paid(sandbox_shop, "CL1"))
    out = StringIO()
    call_command("kyc_link", "CL1", stdout=out)
    assert v.url in out.getvalue()
    with pytest.raises(CommandError, match="NOPE"):
        call_command("kyc_link", "NOPE", stdout=StringIO())
