"""Admin objects are shared by every thread of the server: masking must follow each request's own user.

Two staff members — one with `accounts.view_pii`, one without — load the same admin pages at the same time
through a real threaded server (pytest-django's `live_server`), many requests interleaved. The one without
the permission must never receive a card code, delivery content, delivery link or phone number in clear."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts.models import BuyerIdentity
from accounts.services import shop_upsert
from orders.models import Order, Product
from shipping.models import CardCode, Shipment

CODES = [f"VIP-CLEAR-{n:04d}-ZZ" for n in range(6)]
PHONE = "13911112222"
CONTENT = "您的激活码：VIP-CONTENT-7777-QQ"


def session_for(user) -> requests.Session:
    """A requests session carrying the Django session of `user` (logged in without the login form)."""
    client = Client()
    client.force_login(user)
    s = requests.Session()
    s.cookies.set(settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value)
    return s


@pytest.fixture
def pages(transactional_db):
    shop, _ = shop_upsert(platform="sandbox", name="并发店", app_key="conc-key", app_secret="conc-secret-1234567")
    product = Product.objects.create(shop=shop, item_id="card", title="激活码")
    buyer = BuyerIdentity.objects.create(platform="sandbox", platform_user_id="b1", nick="买家", phone=PHONE)
    order = Order.objects.create(shop=shop, platform_order_id="C0001", buyer=buyer, product=product,
                                 amount=Decimal("1.00"), receiver={"name": "收件人", "phone": PHONE})
    codes = [CardCode.objects.create(product=product, code=c, code_hash=f"h{n}") for n, c in enumerate(CODES)]
    shipment = Shipment.objects.create(order=order, due_at=timezone.now(), content=CONTENT)
    return [
        "/admin/shipping/cardcode/",
        f"/admin/shipping/cardcode/{codes[0].pk}/change/",
        f"/admin/shipping/shipment/{shipment.pk}/change/",
        "/admin/accounts/buyeridentity/",
        f"/admin/orders/order/{order.pk}/change/",
    ], shipment


def test_two_staff_at_once_each_see_what_their_permission_allows(live_server, pages):
    urls, shipment = pages
    User = get_user_model()
    view_all = Permission.objects.filter(codename__in=[
        "view_cardcode", "view_shipment", "view_buyeridentity", "view_order"])
    pii = Permission.objects.get(codename="view_pii", content_type__app_label="accounts")
    trusted = User.objects.create_user("trusted", password="x", is_staff=True)
    trusted.user_permissions.set([*view_all, pii])
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(view_all)
    sessions = {"trusted": session_for(trusted), "clerk": session_for(clerk)}
    secrets = [*CODES, CONTENT, "VIP-CONTENT-7777-QQ", shipment.token, PHONE]

    def fetch(job):
        who, url = job
        resp = sessions[who].get(live_server.url + url, timeout=30)
        return who, url, resp.status_code, resp.text

    jobs = list(itertools.islice(itertools.cycle(
        [(who, url) for url in urls for who in ("trusted", "clerk")]), 200))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(fetch, jobs))

    leaks, hidden = [], []
    for who, url, status, html in results:
        assert status == 200, (who, url, status)
        if who == "clerk":
            leaks += [(url, s) for s in secrets if s in html]
        elif url.startswith("/admin/shipping/cardcode/") and CODES[0] not in html:
            hidden.append(url)
    assert leaks == [], f"{len(leaks)} clear values reached the user without view_pii, e.g. {leaks[:3]}"
    assert hidden == [], f"the user with view_pii got {len(hidden)} card-code pages masked"
