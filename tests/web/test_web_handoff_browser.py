"""Human handoff in a real browser: headless Chromium (Debian's) through Playwright, the
customer in the demo widget and a staff member on the conversation page, side by side."""

from __future__ import annotations

import mailbox
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect
from test_web_staff_browser import add_staff
from test_web_widget import open_chat, say
from web_support import (
    ASKS_FOR_A_PERSON,
    CHROMIUM,
    FAST_HASHER,
    POLICY_ANSWER,
    STAFF_PASSWORD,
    TEST_WEB,
    Escalates,
    serve_in_thread,
    services_for_tests,
)

from shopbot.web import create_app
from tests.plugin import settings_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium"),
]


async def test_a_person_takes_over_from_the_widget_and_hands_back(
    browser: Browser, sqlite_url: str, tmp_path: Path
) -> None:
    await add_staff(sqlite_url, "Sam")
    settings = settings_for(sqlite_url, tmp_path, support_email="support@shop.example")
    app = create_app(
        settings,
        model=Escalates(),
        services=services_for_tests,
        web=TEST_WEB,
        password_hasher=FAST_HASHER,
    )
    with serve_in_thread(app) as url:
        staff = await (await browser.new_context()).new_page()
        await staff.goto(f"{url}/staff")
        await staff.get_by_label("Name").fill("Sam")
        await staff.get_by_label("Password").fill(STAFF_PASSWORD)
        await staff.get_by_role("button", name="Sign in").click()
        await expect(staff.get_by_role("heading", name="Live conversations")).to_be_visible()

        customer = await (await browser.new_context()).new_page()
        await open_chat(customer, url)
        chat = customer.get_by_role("log", name="Conversation")
        await say(customer, ASKS_FOR_A_PERSON)
        # Sam is signed in: the customer is told a person joins here, not "by email".
        await expect(chat.get_by_text("who will join you here shortly")).to_be_visible()

        await staff.reload()
        await staff.get_by_role("link", name=ASKS_FOR_A_PERSON).click()
        await expect(staff.get_by_text("ShopBot answers this conversation.")).to_be_visible()
        await expect(staff.get_by_text("escalate", exact=True)).to_be_visible()
        await staff.get_by_role("button", name="Take over").click()
        await expect(staff.get_by_text("You hold this conversation")).to_be_visible()
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
        await say(customer, "My parcel never arrived.")
        await expect(staff.locator("#messages")).to_contain_text("My parcel never arrived.")
        await expect(customer.get_by_role("button", name="Send")).to_be_enabled()
        await staff.screenshot(path=tmp_path / "staff-conversation.png", full_page=True)

        await staff.get_by_role("button", name="Hand back to ShopBot").click()
        await expect(staff.get_by_text("ShopBot answers this conversation.")).to_be_visible()
        await expect(chat.get_by_text("Sam left the conversation. ShopBot is back")).to_be_visible()
        await say(customer, "How long do I have to return something?")
        await expect(chat.get_by_text(POLICY_ANSWER)).to_be_visible()
        await customer.screenshot(path=tmp_path / "widget-handoff.png")

    # The escalation reached the support address through the outbox, with the page's link.
    sent = [m for m in mailbox.Maildir(tmp_path / "maildir", create=False)]
    to_support = [m for m in sent if m["To"] == "support@shop.example"]
    assert len(to_support) == 1
    body = to_support[0].get_payload(decode=True)
    assert isinstance(body, bytes) and b"/staff/conversations/" in body
