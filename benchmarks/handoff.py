"""How soon a staff member's open inbox shows a customer's request for a person (issue #20:
within a second), in Debian's headless Chromium through Playwright, on SQLite.

Each run: a fresh seeded database with the staff account Sam, `shopbot serve`'s app in a
thread with a model that hands "Can I talk to a human, please?" to a person, Sam signed in
on the inbox, a customer in the demo widget. Timed from just before the customer's send to
the escalated row in the inbox that stayed open (no reload): the turn, the inbox's event
stream and the page's script. The browser test (`tests/web/test_web_handoff_browser.py`)
checks that the row arrives; the time is measured here, not asserted in a test.

The page helpers are the browser tests' own (`tests/web/`), so both drive the pages alike.

    python benchmarks/handoff.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The browser tests import their helpers by bare name ("from web_support import ...").
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "web"))

from playwright.async_api import Browser, ViewportSize, async_playwright, expect

from benchmarks.common import machine, percentile, templates
from db.testing import cloned
from tests.plugin import settings_for
from tests.web.test_web_staff_browser import add_staff, sign_in_staff
from tests.web.test_web_widget import open_chat, say
from tests.web.web_support import (
    ASKS_FOR_A_PERSON,
    CHROMIUM,
    CHROMIUM_ARGS,
    ESCALATION_REASON,
    escalating_app,
    serve_in_thread,
)

VIEWPORT = ViewportSize(width=1280, height=800)


async def one_run(browser: Browser, url: str, tmp: Path) -> float:
    """Seconds from the customer's send to the escalated row in Sam's open inbox."""
    await add_staff(url, "Sam")
    with serve_in_thread(escalating_app(settings_for(url, tmp))) as base:
        staff = await (await browser.new_context(viewport=VIEWPORT)).new_page()
        await sign_in_staff(staff, base)
        customer = await (await browser.new_context(viewport=VIEWPORT)).new_page()
        await open_chat(customer, base)
        sent_at = time.monotonic()
        await say(customer, ASKS_FOR_A_PERSON)
        escalated = staff.locator("tr.escalated", has_text=ESCALATION_REASON)
        await expect(escalated).to_be_visible(timeout=30_000)
        took = time.monotonic() - sent_at
        await staff.context.close()
        await customer.context.close()
    return took


async def measure(runs: int) -> list[float]:
    times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for _, template in templates("sqlite", tmp):
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for i in range(runs):
                    with cloned(template) as url:
                        run_dir = tmp / f"run{i}"
                        run_dir.mkdir()
                        times.append(await one_run(browser, url, run_dir))
                await browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Request for a person -> escalated row in an open inbox."
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if shutil.which(CHROMIUM) is None:
        sys.exit(f"needs Debian's chromium ({CHROMIUM}): make browser")
    times = asyncio.run(measure(args.runs))
    print(machine())
    print(
        f"request for a person -> escalated row in the open inbox: n={len(times)} "
        f"median={statistics.median(times):.2f} s max={max(times):.2f} s "
        f"p90={percentile(times, 0.9):.2f} s; all: {', '.join(f'{t:.2f}' for t in times)}"
    )


if __name__ == "__main__":
    main()
