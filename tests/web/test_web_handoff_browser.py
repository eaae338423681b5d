"""Human handoff in a real browser, the whole story of issue #20's "Show it": headless
Chromium (Debian's) through Playwright, the customer in the demo widget and a staff member
on the inbox and the conversation page, side by side.

With `SHOPBOT_SCREENSHOTS` naming a folder, the README's screenshots are saved there
(`inbox.png`, `audit-trail.png`, `widget.png`); otherwise into the test's tmp_path."""

from __future__ import annotations

import json
import mailbox
import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect
from test_web_staff_browser import add_staff, sign_in_staff
from test_web_widget import open_chat, say
from web_support import (
    ASKS_FOR_A_PERSON,
    CHROMIUM,
    ESCALATION_REASON,
    POLICY_ANSWER,
    escalating_app,
    serve_in_thread,
)

from tests.plugin import settings_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"),
]

VIEWPORT = ViewportSize(width=1280, height=800)
PROVES_WHO = "My order is 482913 and my email is jane.doe@example.com."
ARRIVES_WITHIN = 10.0
"""Seconds the escalated row may take to reach the open inbox here: long enough for a loaded
test run. Issue #20's second is measured by `benchmarks/handoff.py`, not asserted."""


def screenshots_dir(tmp_path: Path) -> Path:
    named = os.environ.get("SHOPBOT_SCREENSHOTS")
    folder = Path(named) if named else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def run_tool(staff: Page, tool: str, args: str) -> None:
    """Run `tool` from the conversation page's tool form, as the signed-in staff member."""
    form = staff.locator("details.tools")
    if await form.get_attribute("open") is None:
        await form.locator("summary").click()
    await staff.get_by_label("Tool", exact=True).select_option(tool)
    await staff.get_by_label("Arguments (JSON)").fill(args)
    await form.get_by_role("button", name="Run").click()


async def test_a_person_takes_over_from_the_widget_returns_the_jeans_and_hands_back(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    shots = screenshots_dir(tmp_path)
    await add_staff(sqlite_url, "Sam")
    settings = settings_for(sqlite_url, tmp_path, support_email="support@shop.example")
    with serve_in_thread(escalating_app(settings)) as url:
        staff = await (await browser.new_context(viewport=VIEWPORT)).new_page()
        await sign_in_staff(staff, url)
        await expect(staff.get_by_role("heading", name="Live conversations")).to_be_visible()

        customer = await (await browser.new_context(viewport=VIEWPORT)).new_page()
        await open_chat(customer, url)
        chat = customer.get_by_role("log", name="Conversation")
        # The customer proves who they are first: the model verifies, then looks the order up.
        await say(customer, PROVES_WHO)
        await expect(chat.get_by_text("Order 482913 is")).to_be_visible()
        row = staff.locator("tr", has_text="482913")
        # The open inbox lists the conversation as the verified customer's, not escalated.
        await expect(row).to_contain_text("Jane Doe")
        await expect(row.locator(".badge.hot")).to_have_count(0)

        # The escalated row reaches the inbox that stayed open (no reload): the turn, the
        # inbox's event stream and the page's script.
        await say(customer, ASKS_FOR_A_PERSON)
        escalated = staff.locator("tr.escalated", has_text=ESCALATION_REASON)
        await expect(escalated).to_be_visible(timeout=ARRIVES_WITHIN * 1000)
        # Sam is signed in: the customer is told a person joins here, not "by email".
        await expect(chat.get_by_text("who will join you here shortly")).to_be_visible()
        await expect(escalated.locator(".badge.hot")).to_have_text("Escalated")
        await staff.screenshot(path=shots / "inbox.png", full_page=True)

        await escalated.get_by_role("link").click()
        await expect(staff.get_by_text("ShopBot answers this conversation.")).to_be_visible()
        await expect(staff.get_by_text("escalate", exact=True)).to_be_visible()
        await staff.get_by_role("button", name="Take over").click()
        await expect(staff.get_by_text("You hold this conversation")).to_be_visible()
        # The page's stylesheet reaches its own rules (an unclosed block once hid them).
        await expect(staff.locator("#messages li").first).to_have_css("display", "grid")
        await expect(
            chat.get_by_text("Sam from Harbor & Pine joined the conversation")
        ).to_be_visible()

        await staff.get_by_label("Message to the customer").fill("Hi, Sam here. How can I help?")
        await staff.get_by_role("button", name="Send").click()
        answer = chat.locator(".msg.staff")
        await expect(answer).to_contain_text("Sam, Harbor & Pine")
        await expect(answer).to_contain_text("Hi, Sam here. How can I help?")

        # A reload restores who answers, and what they wrote.
        await customer.reload()
        await open_chat(customer, url)
        await expect(
            chat.get_by_text("Sam from Harbor & Pine is in the conversation")
        ).to_be_visible()
        await expect(chat.locator(".msg.staff")).to_contain_text("Sam, Harbor & Pine")

        # The customer's words reach the staff page live (its stream), and no bot answers.
        await say(customer, "The jeans are too small, I'd like to return them.")
        await expect(staff.locator("#messages")).to_contain_text("I'd like to return them.")
        await expect(customer.get_by_role("button", name="Send")).to_be_enabled()

        # Sam creates the return for the jeans (line 1) and sends its label, from the page.
        await run_tool(
            staff, "create_return", '{"order_id": "482913", "lines": [1], "reason": "too small"}'
        )
        await expect(staff.get_by_text("Sam ran create_return (allowed): done.")).to_be_visible()
        created = staff.locator("table.steps tr", has_text="confirmed by Sam").filter(
            has_text="create_return"
        )
        observation = json.loads(await created.locator("td").nth(3).inner_text())
        return_id = observation["return_id"]
        assert isinstance(return_id, int)
        await run_tool(staff, "send_return_label", json.dumps({"return_id": return_id}))
        await expect(
            staff.get_by_text("Sam ran send_return_label (allowed): done.")
        ).to_be_visible()
        await staff.screenshot(path=shots / "audit-trail.png", full_page=True)

        await staff.get_by_role("button", name="Hand back to ShopBot").click()
        await expect(staff.get_by_text("ShopBot answers this conversation.")).to_be_visible()
        await expect(chat.get_by_text("Sam left the conversation. ShopBot is back")).to_be_visible()
        await say(customer, "How long do I have to return something?")
        # In view, not only in the log: the widget scrolled down to it.
        await expect(chat.get_by_text(POLICY_ANSWER)).to_be_in_viewport()
        await customer.screenshot(path=shots / "widget.png")

    sent = list(mailbox.Maildir(tmp_path / "maildir", create=False))
    # The label reached the customer, its PDF attached.
    to_jane = [m for m in sent if m["To"] == "jane.doe@example.com"]
    assert len(to_jane) == 1
    pdfs = [p for p in to_jane[0].walk() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    pdf = pdfs[0].get_payload(decode=True)
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
    # The escalation reached the support address through the outbox, with the page's link.
    to_support = [m for m in sent if m["To"] == "support@shop.example"]
    assert len(to_support) == 1
    body = to_support[0].get_payload(decode=True)
    assert isinstance(body, bytes) and b"/staff/conversations/" in body
