"""The finance role's REST API for face-to-face applications (/api/v1/facetoface/…) and its OpenAPI schema."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client

from payments.fake_gateway import sample_png
from payments.models import FacetofaceApplication, Merchant
from payments.services.onboarding import application_submit

from .conftest import upload

pytestmark = pytest.mark.django_db


def client_in(role: str | None) -> Client:
    call_command("setup_roles", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    user = get_user_model().objects.create_user(f"user-{role}", password="pw-" + "x" * 10, is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    c = Client(HTTP_ACCEPT_LANGUAGE="en")
    c.force_login(user)
    return c


@pytest.fixture
def finance(db):
    return client_in("finance")


def apply_form(**overrides) -> dict:
    data = {"merchant_name": "杭州小店", "alipay_account": "owner@merchant.example", "contact_name": "张三",
            "contact_mobile": "13800138000", "shop_name": "文一西路店", "province_code": "330000",
            "city_code": "330100", "district_code": "330110", "shop_address": "文一西路 969 号",
            "mcc_code": "A0002_B0201", "rate": "0.38", "sign_and_auth": "true",
            "shop_scene_pic": upload("inside.png"), "shop_sign_board_pic": upload("sign.png")}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_apply_submits_and_answers_the_application(fake, finance):
    resp = finance.post("/api/v1/facetoface/apply/", apply_form())
    assert resp.status_code == 201, resp.content
    body = resp.json()
    app = FacetofaceApplication.objects.get()
    assert body["id"] == app.pk and body["status"] == "submitted" and body["order_no"] == app.order_no
    assert [c["method"] for c in body["alipay_calls"]] == [
        "alipay.open.agent.confirm", "alipay.open.agent.facetoface.sign", "alipay.open.agent.create"]
    assert Merchant.objects.get().contact_mobile == "13800138000"

    again = finance.post("/api/v1/facetoface/apply/", apply_form(shop_name="第二家店", submit="false"))
    assert again.json()["status"] == "init" and Merchant.objects.count() == 1   # same account: same merchant


@pytest.mark.parametrize("overrides, field", [
    ({"shop_scene_pic": upload("x.png", sample_png()[:2000])}, "shop_scene_pic"),
    ({"shop_sign_board_pic": upload("x.gif", b"GIF89a" + b"\x00" * 9000, "image/gif")}, None),
    ({"shop_scene_pic": None}, "shop_scene_pic"),
    ({"rate": "0.9"}, "rate"),
    ({"rate": None}, "rate"),
    ({"province_code": "abc"}, "province_code"),
    ({"shop_name": "a\x00b"}, "shop_name"),
    ({"shop_name": "x" * 129}, "shop_name"),
    ({"contact_mobile": "", "contact_email": ""}, "contact_mobile"),
    ({"sign_and_auth": "maybe"}, "sign_and_auth"),
])
def test_bad_applications_are_refused_with_the_field_and_reason(fake, finance, overrides, field):
    resp = finance.post("/api/v1/facetoface/apply/", apply_form(**overrides))
    if field is None:                                      # a valid GIF is accepted
        assert resp.status_code == 201
        return
    assert resp.status_code == 400 and field in resp.json(), resp.content
    assert FacetofaceApplication.objects.count() == 0 and fake.received == []


def test_json_body_without_pictures_is_a_plain_400(fake, finance):
    resp = finance.post("/api/v1/facetoface/apply/", {"shop_name": ["not", "a", "string"]},
                        content_type="application/json")
    assert resp.status_code == 400 and "shop_scene_pic" in resp.json()


def test_list_is_paged_and_filtered(fake, finance, application, merchant):
    from payments.services.onboarding import application_create

    from .conftest import application_fields

    other = application_create(merchant=merchant, **application_fields(shop_name="湖滨店"))
    application_submit(application_id=other.pk)
    FacetofaceApplication.objects.filter(pk=other.pk).update(needs_attention=True)

    body = finance.get("/api/v1/facetoface/").json()
    assert body["count"] == 2 and {r["shop_name"] for r in body["results"]} == {"文一西路店", "湖滨店"}
    assert [r["id"] for r in finance.get("/api/v1/facetoface/?status=init").json()["results"]] == [application.pk]
    assert [r["id"] for r in finance.get("/api/v1/facetoface/?attention=true").json()["results"]] == [other.pk]
    assert [r["id"] for r in finance.get("/api/v1/facetoface/?q=湖滨").json()["results"]] == [other.pk]
    assert finance.get("/api/v1/facetoface/?page=9").status_code == 404
    for bad in ("status=nope", "attention=maybe", "merchant=abc", "q=" + "x" * 101):
        assert finance.get(f"/api/v1/facetoface/?{bad}").status_code == 400, bad
    detail = finance.get(f"/api/v1/facetoface/{other.pk}/").json()
    assert detail["business_license_mobile"] == "*******9000" and detail["alipay_calls"]


def test_query_now(fake, finance, application):
    app = application_submit(application_id=application.pk)
    resp = finance.post(f"/api/v1/facetoface/{app.pk}/query/")
    assert resp.status_code == 200 and resp.json()["status"] == "auditing" and resp.json()["query_count"] == 1
    assert finance.post("/api/v1/facetoface/999999/query/").status_code == 404
    assert finance.post("/api/v1/facetoface/1x/query/").status_code == 404


def test_other_roles_and_anonymous_are_refused(fake, application):
    assert Client().get("/api/v1/facetoface/").status_code == 403
    operator = client_in("operator")
    assert operator.get("/api/v1/facetoface/").status_code == 403
    assert operator.post("/api/v1/facetoface/apply/", apply_form()).status_code == 403
    assert FacetofaceApplication.objects.count() == 1


def test_the_endpoints_are_in_the_schema(finance):
    schema = finance.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/facetoface/", "/api/v1/facetoface/apply/", "/api/v1/facetoface/{id}/",
                 "/api/v1/facetoface/{id}/query/"):
        assert path in schema, path
