"""`make demo` as a newcomer meets it: the real command in a terminal, the reviewer URL it prints opened in
chromium, a decision, and the demo reporting the finished execution with that decision.

Nothing is scripted: the real detector analyses the shipped sample video, the stack comes from
template.yaml, and the reviewer works in the portal the demo started.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from browser import launch_chromium
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.browser, pytest.mark.workflow, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
VIDMOD = Path(sys.executable).with_name("vidmod")


class Output:
    """The demo's output, read as it comes (a thread drains the pipe so the demo never blocks on it)."""

    def __init__(self, process: subprocess.Popen):
        self.text, self._changed = "", threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in iter(stream.readline, ""):
            with self._changed:
                self.text += line
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (match := re.search(pattern, self.text)):
                if not self._changed.wait(max(0.0, deadline - time.monotonic())) and time.monotonic() >= deadline:
                    raise AssertionError(f"no {pattern!r} after {timeout:.0f} s; the demo printed:\n{self.text}")
            return match


@pytest.fixture
def demo():
    """``vidmod demo`` with a terminal on stdin (it waits for the reviewer only then), as `make demo` runs it."""
    terminal, keyboard = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "VIDMOD_ENDPOINT"}}
    env |= {"COLUMNS": "240", "TERM": "dumb"}  # no line wrapping inside URLs
    process = subprocess.Popen(
        [str(VIDMOD), "demo"],
        cwd=ROOT,
        env=env,
        stdin=keyboard,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(keyboard)
    yield process, Output(process)
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=60)
    os.close(terminal)


def test_make_demo_reaches_review_and_finishes_with_the_reviewers_decision(demo, tmp_path):
    process, output = demo
    portal = output.wait_for(r"reviewer portal at (http://127\.0\.0\.1:\d+)/?", timeout=300)[1]
    output.wait_for(r"Waiting for a human reviewer after \d+ s", timeout=300)
    assert output.wait_for(r"Open (http://\S+?)/?,", timeout=30)[1] == portal
    assert "Not waiting" not in output.text
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.goto(portal)  # the printed URL: not logged in yet, so the portal asks who is reviewing
        assert page.url.endswith("/login")
        page.fill("input[name=reviewer]", "newcomer")
        with page.expect_navigation():
            page.click("button[type=submit]")
        tasks = page.locator("a[href^='/tasks/']")
        assert tasks.count() == 1 and page.locator("td.video").inner_text() == "bigbuckbunny.mp4"
        tasks.first.click()
        page.wait_for_selector("#player")
        page.wait_for_function("document.getElementById('player').readyState >= 1")  # the video really plays
        page.keyboard.press("r")  # reject the whole video (the page's keyboard shortcut)
        page.locator("crowd-text-area[name=comment] textarea").fill("demo: checked by a newcomer")
        with page.expect_navigation():
            page.click("button.crowd-submit")
        assert "Thank you" in page.locator(".flash").inner_text()
        browser.close()
    finished = output.wait_for(r"Finished in \d+ s: (\w+) by reviewer (\S+), recorded at", timeout=120)
    assert finished.groups() == ("REJECT", "newcomer")
    assert process.wait(timeout=120) == 0
    assert "(execution SUCCEEDED)" in output.text
    entered = re.findall(r"^  \d\d:\d\d:\d\d  → (\w+)$", output.text, flags=re.MULTILINE)
    assert entered.count("ValidateInput") == 1 and entered.count("HumanReview") == 1  # each state printed once
    assert "RecordDecision" in entered[entered.index("HumanReview") :]  # and the follow went on after review
