"""The web UI's "Speak as it is made" in a real browser (headless Chromium): the page
streams the speech API and plays each piece with the Web Audio API as it arrives."""

from __future__ import annotations

import json

import pytest

from tests.browser import Page

pytestmark = pytest.mark.integration
TEXT = "Hello there. " + "The canary speaks sentence after sentence before it is promoted. " * 20
STATE = "window.voxfleetLastStream"
SHOWN = "document.querySelector('#voxfleet-stream-status').innerText"
STREAM_BUTTON = "[...document.querySelectorAll('button')].find(b => b.textContent.includes('Speak as it is made'))"


@pytest.fixture(scope="module")
def page(server):
    """One browser on the UI for the module; each test types and clicks anew."""
    opened = Page()
    try:
        opened.open(server.url + "/ui/")
        opened.wait_for(f"!!document.querySelector('textarea') && !!{STREAM_BUTTON}",
                        timeout_s=90)  # the UI is built on its first visit, then rendered by its scripts
        yield opened
    finally:
        opened.close()


def speak_streamed(page: Page, text: str) -> dict:
    page.evaluate(f"""(() => {{
        const box = document.querySelector('textarea');
        box.value = {json.dumps(text)};
        box.dispatchEvent(new Event('input', {{bubbles: true}}));
        window.voxfleetLastStream = undefined;
        {STREAM_BUTTON}.click();
    }})()""")
    page.wait_for(f"{STATE} && {STATE}.done")
    return page.evaluate(f"JSON.parse(JSON.stringify({STATE}))")  # type: ignore[return-value]


def test_the_page_plays_the_first_sentence_while_the_rest_is_made(page):
    state = speak_streamed(page, TEXT)
    assert state["error"] is None and state["rate"] == 44_100, state
    assert state["pieces"] > 1 and state["samples"] / state["rate"] > 50, state
    assert state["firstAudioMs"] < state["totalMs"] / 2, state  # buffered, they would be equal
    shown = page.wait_for(f"{SHOWN}.includes('Streamed') && {SHOWN}")
    assert "began playing after" in str(shown)


def test_a_refused_input_is_shown_naming_the_field(page):
    state = speak_streamed(page, "   ")
    assert state["error"] and state["error"].startswith("input:"), state
    shown = page.wait_for(f"{SHOWN}.includes('failed') && {SHOWN}")
    assert "Streaming failed: input:" in str(shown)
