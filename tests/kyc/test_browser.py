"""A real browser on the verify page: Playwright driving Debian's Chromium (headless; ./test and .ci/run install
the `chromium` and `fonts-noto-cjk` packages) against the live server, in sandbox mode (no Sumsub
credentials). The buyer presses the sandbox's approve button; the server signs and posts the webhooks to its
own endpoint, the inbox is processed (tasks run in-process), and the order ships on the sandbox platform."""

from __future__ import annotations

import pytest

from orders.models import Order, SandboxOrder
from tests.browser import browser_page

from .conftest import kyc_product, sandbox_paid, verification_of

pytestmark = pytest.mark.django_db(transaction=True)


def phone_browser():
    """A headless Chromium page the size of a phone (no ORM calls inside the block: tests.browser)."""
    return browser_page(locale="zh-CN", width=390, height=844)


def test_sandbox_approve_in_the_browser_ships_the_order(no_sumsub, sandbox_shop, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "B1")
    v = verification_of(order)
    assert order.status == "awaiting_kyc"

    url = v.url
    errors: list[str] = []
    with phone_browser() as page:
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto(url)
        assert page.locator("#kyc-state").inner_text() == "请完成实名认证"
        assert page.locator("#kyc-sandbox").is_visible()

        page.get_by_role("button", name="模拟审核通过").click()

        page.wait_for_selector("#kyc-state[data-state='approved']")
        assert "认证已通过" in page.locator("#kyc-state").inner_text()
    assert errors == []  # nothing blocked by the page's CSP, no script errors

    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert SandboxOrder.objects.get(order_no="B1").status == "shipped"


def test_sandbox_retry_then_reject_in_the_browser_closes_the_order(no_sumsub, sandbox_shop, live_server, settings):
    settings.PUBLIC_BASE_URL = live_server.url
    kyc_product(sandbox_shop)
    order = sandbox_paid(sandbox_shop, "B2")
    v = verification_of(order)

    url = v.url
    with phone_browser() as page:
        page.goto(url)
        page.fill("#kyc-comment", "请上传清晰的身份证正面照片")
        page.get_by_role("button", name="模拟要求重新提交").click()
        page.wait_for_selector("#kyc-state[data-state='retry']")
        assert "请上传清晰的身份证正面照片" in page.content()

        page.get_by_role("button", name="模拟最终拒绝").click()
        page.wait_for_selector("#kyc-state[data-state='rejected']")

    assert Order.objects.get(pk=order.pk).status == "closed"
    assert SandboxOrder.objects.get(order_no="B2").status == "closed"
