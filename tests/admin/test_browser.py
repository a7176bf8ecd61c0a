"""The dashboard in a real browser: Playwright driving Debian's Chromium (headless, as tests/kyc/test_browser.py)
against the live server. Staff log in through the login form and land on the dashboard, which shows the seeded
figures in Chinese and draws its charts. With ADMIN_SCREENSHOT=<path> the page is saved there (1366 px wide):
docs/admin-dashboard.png is made this way."""

from __future__ import annotations

import os

import pytest
from django.contrib.auth import get_user_model

from tests.browser import browser_page

from .seed import seed_dashboard

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_log_in_and_the_dashboard_shows_figures_and_a_chart(live_server, tmp_path):
    seed_dashboard(orders_today=3, orders_before=2)
    get_user_model().objects.create_superuser("boss", password="pw-boss-browser-1")
    shot = os.environ.get("ADMIN_SCREENSHOT") or str(tmp_path / "dashboard.png")
    errors: list[str] = []
    # No ORM calls inside this block (tests.browser).
    with browser_page(locale="en-US", width=1366, height=900) as page:
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.goto(f"{live_server.url}/admin/")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", "pw-boss-browser-1")
        page.locator("button[type=submit], input[type=submit]").first.click()
        page.wait_for_selector("#dashboard")
        # Chinese for an English browser (no Accept-Language), the navigation grouped by work.
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        sidebar = page.locator("#nav-sidebar-inner").inner_text()
        assert "今日工作台" in sidebar and "商品与卡密" in sidebar
        assert page.locator("#figure-orders_today .figure-value").inner_text().strip() == "3"
        assert page.locator("#figure-amount_today .figure-value").inner_text().strip() == "59.70"
        assert page.locator("#figure-awaiting_manual .figure-value").inner_text().strip() == "1"
        assert "今日订单" in page.locator("#figure-orders_today").inner_text()
        assert page.locator(".language-switch button[lang=en]").inner_text() == "English"
        # The charts are drawn: Chart.js attached to both canvases and painted something.
        page.wait_for_function("() => [...document.querySelectorAll('#charts canvas')]"
                               ".every(c => window.Chart && Chart.getChart(c))")
        painted = page.evaluate("""() => [...document.querySelectorAll('#charts canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })""")
        assert len(painted) == 2 and all(n > 100 for n in painted), painted
        page.wait_for_timeout(600)  # the charts' animation
        page.screenshot(path=shot, full_page=True)
        # A figure leads to its list.
        page.click("#figure-awaiting_manual")
        page.wait_for_url("**/admin/shipping/shipment/?status__exact=awaiting_staff")
    assert errors == []
    assert os.path.getsize(shot) > 10_000
