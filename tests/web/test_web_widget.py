"""The widget in a real browser: headless Chromium (Debian's) driven by Playwright."""

from __future__ import annotations

import mailbox
import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect
from web_support import (
    CHROMIUM,
    KEPT,
    LABEL_EMAILED,
    NEVER_MIND,
    POLICY_ANSWER,
    TEST_WEB,
    ShopModel,
    StreamingShopModel,
    reply,
    serve_in_thread,
    services_for_tests,
)

from shopbot.config import Settings
from shopbot.models.base import ModelRequest
from shopbot.web import WebConfig, create_app

RETURN_REQUEST = (
    "Hi, I'd like to return the jeans from order 482913. My email is jane.doe@example.com"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"),
]


def shop(model: ShopModel, sqlite_url: str, data_dir: Path, web: WebConfig = TEST_WEB) -> FastAPI:
    """The widget backend on the demo shop (SQLite), with `model` playing the agent."""
    settings = Settings(_env_file=None, database_url=sqlite_url, data_dir=data_dir)  # type: ignore[call-arg]
    return create_app(settings, model=model, services=services_for_tests, web=web)


async def open_chat(page: Page, url: str) -> None:
    await page.goto(f"{url}/demo")
    launcher = page.get_by_role("button", name="Chat with us")
    await expect(launcher).to_be_visible()
    # Keyboard only: Tab to the launcher, Enter opens the panel with the input focused.
    await launcher.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("region", name="Harbor & Pine help")).to_be_visible()
    await expect(page.get_by_label("Your message")).to_be_focused()


async def say(page: Page, text: str) -> None:
    await page.get_by_label("Your message").fill(text)
    await page.keyboard.press("Enter")


async def test_a_customer_returns_the_jeans_and_gets_the_label(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    app = shop(ShopModel(), sqlite_url, tmp_path)
    with serve_in_thread(app) as url:
        page = await browser.new_page()
        await open_chat(page, url)
        log = page.get_by_role("log", name="Conversation")
        await say(page, RETURN_REQUEST)
        await expect(log.get_by_text(RETURN_REQUEST)).to_be_visible()
        card = page.get_by_role("group", name="Confirmation needed")
        await expect(card).to_contain_text("Return Slim Fit Jeans (line 1) from order 482913")
        live = page.locator("[data-announcer]")
        await expect(live).to_contain_text("Please confirm")
        await expect(live).to_have_attribute("aria-live", "polite")
        await page.screenshot(path=tmp_path / "confirm.png")

        await card.get_by_role("button", name="Confirm").click()
        await expect(log.get_by_text(LABEL_EMAILED)).to_be_visible()
        await expect(card).to_contain_text("Confirmed")
        await expect(card.get_by_role("button")).to_have_count(0)
        await expect(page.get_by_role("button", name="Send")).to_be_enabled()
        await page.screenshot(path=tmp_path / "done.png")

        # A reload restores the conversation from its history, once, and keeps streaming.
        await page.reload()
        await open_chat(page, url)
        await expect(log.get_by_text(LABEL_EMAILED)).to_have_count(1)
        await expect(log.get_by_text(RETURN_REQUEST)).to_have_count(1)
        await say(page, "How long do I have to return something?")
        await expect(log.get_by_text(POLICY_ANSWER)).to_be_visible()
        await expect(log.locator("cite")).to_have_text(["Returns policy"])
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("button", name="Chat with us")).to_be_focused()
    # The label went out by email (the embedded Maildir), once.
    inbox = list(mailbox.Maildir(tmp_path / "maildir", create=False))
    assert [m["To"] for m in inbox] == ["jane.doe@example.com"]


async def test_the_widget_survives_dropped_streams(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    """Streams that end every 300 ms: the widget resumes each and shows every event once."""
    web = TEST_WEB.model_copy(update={"sse_max_seconds": 0.3, "sse_retry_ms": 100})
    app = shop(ShopModel(delay=0.15), sqlite_url, tmp_path, web)
    with serve_in_thread(app) as url:
        page = await browser.new_page()
        streams: list[str] = []
        page.on("request", lambda r: streams.append(r.url) if "/events" in r.url else None)
        await open_chat(page, url)
        await say(page, RETURN_REQUEST)
        card = page.get_by_role("group", name="Confirmation needed")
        await card.get_by_role("button", name="Confirm").click()
        log = page.get_by_role("log", name="Conversation")
        await expect(log.get_by_text(LABEL_EMAILED)).to_have_count(1)
        await expect(log.get_by_text(RETURN_REQUEST)).to_have_count(1)
        await expect(log.locator(".msg.card")).to_have_count(1)
        await page.wait_for_timeout(400)
        await expect(log.get_by_text(LABEL_EMAILED)).to_have_count(1)
    assert len(streams) >= 3


class LoopsOnce(StreamingShopModel):
    """Answers a greeting with a reply that loops, then, told so, with a proper one."""

    def decide(self, request: ModelRequest) -> str:
        if "(a reply saying one thing over and over)" in str(request.messages[-1].content):
            return reply("Hello! How can I help?")
        return reply("Sorry, " * 40)


async def test_a_customer_never_reads_a_looping_reply(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    app = shop(LoopsOnce(), sqlite_url, tmp_path)
    with serve_in_thread(app) as url:
        page = await browser.new_page()
        await open_chat(page, url)
        await say(page, "hello")
        log = page.get_by_role("log", name="Conversation")
        await expect(log.get_by_text("Hello! How can I help?")).to_have_count(1)
        await expect(page.get_by_role("button", name="Send")).to_be_enabled()
        # The greeting, "hello" and the retry's answer (the loop was cut off and not stored).
        await expect(log.locator(".msg")).to_have_count(3)
        await expect(log).not_to_contain_text("Sorry")


async def test_writing_instead_of_confirming_closes_the_card(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    app = shop(ShopModel(), sqlite_url, tmp_path)
    with serve_in_thread(app) as url:
        page = await browser.new_page()
        await open_chat(page, url)
        await say(page, RETURN_REQUEST)
        card = page.get_by_role("group", name="Confirmation needed")
        await expect(card.get_by_role("button", name="Confirm")).to_be_visible()
        await say(page, NEVER_MIND)
        log = page.get_by_role("log", name="Conversation")
        await expect(log.get_by_text(KEPT)).to_be_visible()
        await expect(card).to_contain_text("Withdrawn")
        await expect(card.get_by_role("button")).to_have_count(0)
        # After a reload the request is not offered again.
        await page.reload()
        await open_chat(page, url)
        await expect(log.get_by_text(KEPT)).to_have_count(1)
        await expect(page.get_by_role("button", name="Confirm")).to_have_count(0)


async def test_the_widget_says_what_shopbot_is_doing_and_starts_afresh(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    # Each step thinks for a second, so the status of the step before stays on screen.
    app = shop(ShopModel(delay=1.0), sqlite_url, tmp_path)
    with serve_in_thread(app) as url:
        page = await browser.new_page()
        created: list[str] = []
        page.on(
            "request",
            lambda r: (
                created.append(r.url)
                if r.method == "POST" and r.url.endswith("/v1/conversations")
                else None
            ),
        )
        await open_chat(page, url)
        restart = page.get_by_role("button", name="New conversation")
        await say(page, RETURN_REQUEST)
        status = page.get_by_role("status")
        await expect(status).to_have_text("Checking your details…")
        await expect(restart).to_be_disabled()  # a turn under way ends where it began
        card = page.get_by_role("group", name="Confirmation needed")
        await expect(card.get_by_role("button", name="Confirm")).to_be_visible()
        await expect(status).to_have_text("")

        await restart.click()
        log = page.get_by_role("log", name="Conversation")
        await expect(log.locator(".msg")).to_have_count(1)  # the greeting only
        await expect(log).not_to_contain_text(RETURN_REQUEST)
        await say(page, "hello")
        await expect(log.locator(".msg")).to_have_count(3)
        # A reload keeps the new conversation, not the old one.
        await page.reload()
        await open_chat(page, url)
        await expect(log).not_to_contain_text(RETURN_REQUEST)
        await expect(log.get_by_text("hello", exact=True)).to_have_count(1)
    assert len(created) == 2
