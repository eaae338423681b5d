"""The live inbox and the numbers page in headless Chromium (Debian's, through Playwright):
the inbox's script runs under the pages' CSP and shows an escalation without a reload."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, expect
from test_web_staff_browser import add_staff, escalate_a_conversation
from web_support import CHROMIUM, ESCALATION_REASON, STAFF_PASSWORD, escalating_app, serve_in_thread

from tests.plugin import settings_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"),
]


async def test_an_escalation_appears_in_the_open_inbox_and_the_numbers_draw(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    await add_staff(sqlite_url, "Sam")
    with serve_in_thread(escalating_app(settings_for(sqlite_url, tmp_path))) as url:
        page = await browser.new_page()
        complaints: list[str] = []

        def heard(message: ConsoleMessage) -> None:
            if message.type in ("error", "warning"):
                complaints.append(message.text)

        page.on("console", heard)
        page.on("pageerror", lambda error: complaints.append(str(error)))
        failed: list[str] = []
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        await page.goto(f"{url}/staff")
        await page.get_by_label("Name").fill("sam")
        await page.get_by_label("Password").fill(STAFF_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_text("No live conversations")).to_be_visible()
        await expect(page.locator("#inbox-live")).to_have_text("Live")

        cid = await asyncio.to_thread(escalate_a_conversation, url)
        row = page.locator(f'tr[data-conversation="{cid}"]')
        await expect(row).to_contain_text(ESCALATION_REASON, timeout=2000)  # no reload
        await expect(row.get_by_role("link")).to_have_attribute(
            "href", f"/staff/conversations/{cid}"
        )
        await page.screenshot(path=tmp_path / "staff-inbox-live.png", full_page=True)

        await page.get_by_label("Search").fill("nobody")
        await page.get_by_label("Escalated").check()
        await page.get_by_role("button", name="Search").click()
        await expect(page).to_have_url(f"{url}/staff?q=nobody&escalated=1")
        await expect(page.get_by_text("No live conversation matches")).to_be_visible()

        await page.get_by_role("link", name="Numbers").click()
        await expect(page.get_by_role("heading", name="Numbers")).to_be_visible()
        await expect(page.locator("svg.chart")).to_have_count(5)
        await expect(page.locator("svg.chart rect.bar").last).to_be_visible()  # today
        await page.get_by_role("link", name="Last 7 days").click()
        await expect(page).to_have_url(f"{url}/staff/numbers?days=7")
        await page.screenshot(path=tmp_path / "staff-numbers.png", full_page=True)
    # Only the browser's own favicon request may fail: the pages name none.
    assert [u for u in failed if not u.endswith("/favicon.ico")] == []
    assert [c for c in complaints if "404" not in c] == [], "no CSP violation, no script error"
