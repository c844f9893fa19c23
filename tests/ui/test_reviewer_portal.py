"""The reviewer's experience in a real chrome (Debian chromium via Playwright), end to end.

The portal renders the same ui/ template A2I renders; the submission is checked against A2I's output
format and fed through complete_human_review's parser (the contract), and the execution must resume.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from harness import Workflow, start_stack
from playwright.sync_api import sync_playwright

from vidmod.detector.testing import make_test_video
from vidmod.local.scripted import Script, detection

pytestmark = [pytest.mark.browser, pytest.mark.workflow]
ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = ROOT / "docs" / "img"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
EVIL = '<img src=x onerror="window.__pwned=1">'
SCRIPT_BREAK = "</script><script>window.__pwned=1</script>"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory)
    url = stack.start_portal(0)
    yield Workflow(stack, scripted), url.rstrip("/")
    stack.stop()


@pytest.fixture(scope="module")
def chrome():
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def start_review(workflow: Workflow, tmp_path: Path, key: str, labels: list[dict]) -> tuple[str, str]:
    video = make_test_video(tmp_path / "clip.mp4", seconds=8, fps=10)
    workflow.scripted.script(key, Script(labels=labels, duration_millis=8000))
    workflow.s3.upload_file(str(video), workflow.stack.media_bucket, key)
    arn = workflow.execution_for(key)
    return arn, workflow.wait_for_review(arn)


def screenshot(page, tmp_path: Path, name: str) -> None:
    """Every run takes the screenshot; VIDMOD_UPDATE_DOCS=1 also refreshes the one the README shows."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("VIDMOD_UPDATE_DOCS") == "1":
        shutil.copyfile(path, DOCS_IMG / name)


def login(page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=reviewer]", name)
    page.click("button[type=submit]")


def read_output(workflow: Workflow, uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_reviewer_watches_segments_decides_and_the_workflow_resumes(portal, chrome, tmp_path):
    workflow, base = portal
    labels = [
        detection("Weapons", "Violence", 2, 81.0, 2000),
        detection("Weapons", "Violence", 2, 84.0, 3000),
        detection("Drinking", "Alcohol Use", 3, 88.0, 5000),
    ]
    arn, loop = start_review(workflow, tmp_path, "ui/clip.mp4", labels)
    page = chrome.new_page()
    login(page, base, "dana")
    page.goto(f"{base}/")
    page.click(f"a[href='/tasks/{loop}']")
    page.wait_for_selector("#player")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    rows = page.locator("tr.segment")
    assert rows.count() == 2
    assert "Alcohol Use / Drinking" in rows.nth(1).inner_text() and "0:05–0:05" in rows.nth(1).inner_text()
    assert page.locator(".marker").count() == 2
    rows.nth(1).locator("td.label").click()  # clicking a segment seeks the video
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 5) < 0.6")
    screenshot(page, tmp_path, "reviewer-task.png")
    # mouse: segment 0 is a true positive; keyboard: segment 1 (selected) is the wrong category
    rows.nth(0).locator("crowd-radio-button[name='seg-0-tp'] input").check()
    page.keyboard.press("w")
    page.select_option("select.category-picker[data-index='1']", "Gambling")
    page.click("button.crowd-submit")  # no overall decision yet: blocked with a message
    assert page.locator("#decision-error").is_visible()
    page.keyboard.press("r")
    page.fill("crowd-text-area[name=comment] textarea", "real weapon; drinking is a card game")
    with page.expect_navigation():
        page.click("button.crowd-submit")
    assert "Submitted" in page.content()
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED"
    record = workflow.decision(arn)
    assert (record["decision"], record["source"], record["reviewer"]) == ("REJECT", "human", "dana")

    uri = workflow.stack.a2i.describe(loop)["HumanLoopOutput"]["OutputS3Uri"]
    assert "/vidmod-local-review/" in uri and uri.endswith(f"/{loop}/output.json")
    output = read_output(workflow, uri)
    assert set(output) == {"flowDefinitionArn", "humanLoopName", "inputContent", "humanAnswers"}
    (answer,) = output["humanAnswers"]
    assert set(answer) == {
        "acceptanceTime",
        "submissionTime",
        "timeSpentInSeconds",
        "workerId",
        "workerMetadata",
        "answerContent",
    }
    assert answer["workerId"] == "dana" and answer["workerMetadata"]["identityData"]["sub"] == "dana"
    assert answer["answerContent"] == {
        "decision-approve": {"value": False},
        "decision-reject": {"value": True},
        "seg-0-tp": {"value": True},
        "seg-0-fp": {"value": False},
        "seg-0-wrong": {"value": False},
        "seg-1-tp": {"value": False},
        "seg-1-fp": {"value": False},
        "seg-1-wrong": {"value": True},
        "seg-1-category": "Gambling",
        "comment": "real weapon; drinking is a card game",
    }
    # the contract: complete_human_review's parser reads exactly what the template submitted
    sys.path.insert(0, str(ROOT / "functions" / "complete_human_review"))
    try:
        import a2i_output
    finally:
        sys.path.pop(0)
    parsed = a2i_output.parse_output(output, uri)
    assert parsed.decision == "REJECT" and [v.verdict for v in parsed.verdicts] == ["true-positive", "wrong-category"]
    assert parsed.verdicts[1].category == "Gambling"
    # a loop is submitted once
    again = page.request.post(
        f"{base}/tasks/{loop}/submit",
        data=json.dumps({"decision-approve": {"value": True}}),
        headers={"Content-Type": "application/json"},
    )
    assert again.status == 409 and read_output(workflow, uri) == output
    page.close()


def test_html_and_script_in_names_and_labels_render_as_text(portal, chrome, tmp_path):
    workflow, base = portal
    labels = [detection(EVIL, "Hate Symbols", 2, 80.0, 1000), detection(SCRIPT_BREAK, "Drugs & Tobacco", 1, 75.0, 3000)]
    arn, loop = start_review(workflow, tmp_path, f"ui/{EVIL}.mp4", labels)
    page = chrome.new_page()
    login(page, base, "<b>eve</b>")
    page.goto(f"{base}/tasks/{loop}")
    page.wait_for_selector("#player")
    page.wait_for_timeout(300)
    assert page.evaluate("window.__pwned") is None
    assert EVIL in page.locator(".video-name").inner_text()
    labels_text = page.locator("td.label").all_inner_texts()
    assert any(EVIL in text for text in labels_text) and any(SCRIPT_BREAK in text for text in labels_text)
    assert page.locator("img[src=x]").count() == 0
    assert "<b>eve</b>" in page.locator("header").inner_text()
    assert "taskToken" not in page.content()
    page.keyboard.press("a")
    with page.expect_navigation():
        page.click("button.crowd-submit")
    assert page.evaluate("window.__pwned") is None
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    assert workflow.decision(arn)["reviewer"] == "<b>eve</b>"
    page.close()


def test_audit_pages_render_in_the_browser(portal, chrome, tmp_path):
    workflow, base = portal
    page = chrome.new_page()
    page.goto(f"{base}/audit")
    links = page.locator("a[href^='/audit/']")
    assert links.count() >= 2
    assert "human" in page.content() and "REJECT" in page.content()
    arn = workflow.execution_for(f"ui/{EVIL}.mp4")
    page.goto(f"{base}/audit/{arn.rsplit(':', 1)[-1]}")
    assert "The decision record matches the execution history" in page.content()
    assert EVIL in page.locator("body").inner_text() and page.evaluate("window.__pwned") is None
    assert "<b>eve</b>" in page.locator("body").inner_text()
    screenshot(page, tmp_path, "audit-report.png")
    page.close()


def test_keyboard_navigation_apply_to_all_and_category_only_for_wrong(portal, chrome, tmp_path):
    from vidmod.local.stack import FLOW_DEFINITION_ARN

    workflow, base = portal
    video = make_test_video(tmp_path / "keys.mp4", seconds=6, fps=10)
    workflow.s3.upload_file(str(video), workflow.stack.media_bucket, "ui/keys.mp4")
    segments = [
        {
            "index": i,
            "id": f"seg-{i}",
            "name": name,
            "parentName": "Violence",
            "category": "Violence",
            "taxonomyLevel": 2,
            "startMillis": start,
            "endMillis": start + 500,
            "maxConfidence": 70.0 + i,
            "detections": 1,
        }
        for i, (name, start) in enumerate([("Weapons", 1000), ("Blood", 3000), ("Fight", 4000)])
    ]
    content = {
        "schemaVersion": "1",
        "video": {"uri": f"s3://{workflow.stack.media_bucket}/ui/keys.mp4", "name": "keys.mp4", "durationMillis": 6000},
        "decision": {"ruleSetVersion": "test", "reasons": []},
        "uncoveredCategories": ["Alcohol", "Gambling"],
        "segments": segments,
        "segmentsTruncated": False,
    }
    workflow.stack.a2i.start_human_loop("keys-only", FLOW_DEFINITION_ARN, json.dumps(content))
    page = chrome.new_page()
    login(page, base, "kim")
    page.goto(f"{base}/tasks/keys-only")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert "Alcohol, Gambling" in page.locator(".uncovered").inner_text()
    checked = "el => el.checked"

    def verdict(i: int, v: str) -> bool:
        return page.locator(f"crowd-radio-button[name='seg-{i}-{v}']").evaluate(checked)

    page.click("button.apply-all[data-verdict='fp']")
    assert all(verdict(i, "fp") for i in range(3))
    page.keyboard.press("j")
    page.keyboard.press("j")  # second row is active and the video is at its start
    assert page.locator("tr.segment.active").get_attribute("data-index") == "1"
    page.wait_for_function("Math.abs(document.getElementById('player').currentTime - 3) < 0.6")
    page.keyboard.press("t")
    assert verdict(1, "tp") and not verdict(1, "fp")
    page.keyboard.press("k")
    page.keyboard.press("w")
    picker = page.locator("select.category-picker[data-index='0']")
    assert picker.is_enabled()
    picker.select_option("Hate Symbols")
    field = "document.querySelector('crowd-input[name=\"seg-0-category\"]').value"
    assert page.evaluate(field) == "Hate Symbols"
    page.keyboard.press("f")  # leaving "wrong" clears and disables the category again
    assert page.evaluate(field) == "" and picker.is_disabled()
    options = picker.locator("option").all_inner_texts()[1:]
    assert len(options) == 10 and "Drugs & Tobacco" in options
    page.close()
