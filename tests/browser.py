"""The browser tests' one way to open a page: Playwright driving Debian's Chromium (`/usr/bin/chromium`,
headless; ./test and .ci/run install `chromium` and `fonts-noto-cjk`, never a downloaded browser).
Playwright's sync API keeps an event loop in this thread, so tests make no ORM calls inside the block (the live
server answers from its own threads)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import need_service

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


@contextmanager
def browser_page(*, locale: str, width: int, height: int, cookies: list[dict] | None = None) -> Iterator:
    """A new page in a new headless Chromium with this locale and window size (and cookies)."""
    need_service("Chromium", os.path.exists(CHROMIUM) or bool(shutil.which("chromium")),
                 "apt-get install chromium fonts-noto-cjk (./test does it when it may)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        if cookies:
            context.add_cookies(cookies)
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
