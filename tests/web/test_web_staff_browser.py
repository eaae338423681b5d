"""The staff pages and /docs in a real browser: headless Chromium (Debian's) through Playwright."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from web_support import (
    ASKS_FOR_A_PERSON,
    CHROMIUM,
    ESCALATION_REASON,
    FAST_HASHER,
    STAFF_PASSWORD,
    TEST_WEB,
    Escalates,
    escalating_app,
    serve_in_thread,
    services_for_tests,
)

from db.engine import create_engine, session_factory
from shopbot.web import create_app
from shopbot.web.accounts import StaffAccounts
from tests.plugin import settings_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"),
]


async def add_staff(url: str, name: str) -> None:
    engine = create_engine(url)
    await StaffAccounts(session_factory(engine), FAST_HASHER).add(name, STAFF_PASSWORD)
    await engine.dispose()


async def sign_in_staff(page: Page, url: str, name: str = "Sam") -> None:
    """Sign `name` in on the staff pages; returns once the inbox follows its event stream."""
    await page.goto(f"{url}/staff")
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(STAFF_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#inbox-live")).to_have_text("Live")


def escalate_a_conversation(url: str) -> str:
    """A customer asks for a person through the widget's API; returns the conversation id."""
    created = httpx.post(f"{url}/v1/conversations", json={}).json()
    cid, auth = created["conversation_id"], {"Authorization": f"Bearer {created['token']}"}
    sent = httpx.post(
        f"{url}/v1/conversations/{cid}/messages", json={"text": ASKS_FOR_A_PERSON}, headers=auth
    )
    assert sent.status_code == 202
    give_up = time.monotonic() + 30
    while httpx.get(f"{url}/v1/conversations/{cid}", headers=auth).json()["busy"]:
        assert time.monotonic() < give_up, "the turn did not end"
        time.sleep(0.05)
    return cid


async def test_a_staff_member_signs_in_and_sees_the_escalation(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    await add_staff(sqlite_url, "Sam")
    app = escalating_app(settings_for(sqlite_url, tmp_path))
    with serve_in_thread(app) as url:
        cid = escalate_a_conversation(url)
        page = await browser.new_page()
        await page.goto(f"{url}/staff")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        await page.get_by_label("Name").fill("sam")
        await page.get_by_label("Password").fill("not the password")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("do not match a staff account")

        await page.get_by_label("Password").fill(STAFF_PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Live conversations")).to_be_visible()
        await expect(page.get_by_text("Signed in as")).to_contain_text("Sam")
        row = page.locator(f'tr[data-conversation="{cid}"]')
        await expect(row).to_contain_text("Escalated")
        await expect(row).to_contain_text(ESCALATION_REASON)
        await page.screenshot(path=tmp_path / "staff-inbox.png", full_page=True)

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_role("status")).to_have_text("You have signed out.")
        await page.goto(f"{url}/staff")
        await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_the_api_docs_render_with_nothing_from_outside(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    settings = settings_for(sqlite_url, tmp_path)
    app = create_app(settings, model=Escalates(), services=services_for_tests, web=TEST_WEB)
    with serve_in_thread(app) as url:
        page = await browser.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        await page.goto(f"{url}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text("ShopBot")
        await expect(
            page.get_by_text("/v1/conversations/{conversation_id}/messages")
        ).to_be_visible()
    assert requested and all(u.startswith(url) for u in requested), requested
