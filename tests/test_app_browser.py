"""A real headless Chromium (Debian's, driven by Playwright) uses the app like a person: it
sends a prompt, sees each call's parsed-JSON panel and the tool's result, and saves a
screenshot to tests/artifacts/app.png."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.test_app_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, app_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
SCREENSHOT = ARTIFACTS / "app.png"


@contextmanager
def opened_page(url: str) -> Iterator:
    """Headless Chromium on the app, once the offline banner shows the page is ready."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            # The offline fallback is announced where everyone sees it.
            expect(page.locator("#st-banner")).to_contain_text("tiny offline test model", timeout=60_000)
            yield page
        finally:
            browser.close()


def test_browser_sees_parsed_calls_and_results(app_server) -> None:
    from playwright.sync_api import expect

    SCREENSHOT.unlink(missing_ok=True)
    with opened_page(app_server.url) as page:
        page.locator("#st-msg textarea").fill("Compare the weather in Tokyo and Lima.")
        page.locator("#st-send").click()

        chat = page.locator("#st-chat")
        expect(chat).to_contain_text("Round 1 · 2 parallel tool calls", timeout=60_000)
        # The turn is over once round 2 (the answer) has its row in the metrics table.
        expect(page.locator("#st-metrics")).to_contain_text("1.2", timeout=60_000)
        cards = chat.locator(".st-calls .st-call")
        expect(cards).to_have_count(2, timeout=30_000)
        for card, city in zip((cards.nth(0), cards.nth(1)), ("Tokyo", "Lima")):
            expect(card).to_contain_text("Parsed call (JSON)")
            expect(card).to_contain_text("✓ schema ok")
            expect(card).to_contain_text(f'"city": "{city}"')  # the parsed JSON, pretty-printed
            expect(card).to_contain_text("<tool_call>")  # the raw text, shown literally
            expect(card).to_contain_text("Result")
            expect(card).to_contain_text("temperature_c")  # the tool's result
        # Side by side: both cards start on the same line.
        boxes = [cards.nth(i).bounding_box() for i in range(2)]
        assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 2
        assert boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"] - 1
        # The context meter moved off zero.
        expect(page.locator("#st-metrics")).to_contain_text(re.compile(r"\b[1-9][\d,]* / 4,096 tokens"))

        page.wait_for_timeout(1000)  # let Gradio's open/slide transitions settle
        # Show the round from its title: raw text, parsed JSON and results in one picture.
        chat.locator(".title").first.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 1400 and height >= 900 and len(data) > 50_000


def test_tool_choice_set_in_the_page_governs_the_next_turn(app_server) -> None:
    """The Tool choice widget is the session's setting (issue 19 §1): a name that is not one of
    the session's tools is refused in the page, and "none" makes the next turn call nothing."""
    from playwright.sync_api import expect

    with opened_page(app_server.url) as page:
        choice = page.locator("#st-tool-choice input")
        choice.fill("no_such_tool")
        choice.press("Enter")
        expect(page.locator("#st-policy")).to_contain_text("Not applied", timeout=30_000)
        choice.fill("none")
        choice.press("Enter")
        expect(page.locator("#st-policy")).not_to_contain_text("Not applied", timeout=30_000)
        page.wait_for_timeout(1000)  # the change event is applied before the message is sent
        page.locator("#st-msg textarea").fill("What is the weather in Paris?")
        page.locator("#st-send").click()
        expect(page.locator("#st-metrics")).to_contain_text("1.1", timeout=60_000)
        page.wait_for_timeout(2000)
        chat = page.locator("#st-chat")
        expect(chat.locator(".st-calls .st-call")).to_have_count(0)
        expect(chat).not_to_contain_text("<tool_call>")
