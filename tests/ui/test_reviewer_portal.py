"""The reviewer's experience in a real chrome (Debian chromium via Playwright), end to end.

The portal renders the same ui/ template A2I renders; the submission is checked against A2I's output
format and fed through complete_human_review's parser (the contract), and the execution must resume.
The crowd elements are the portal's offline polyfill (the real ones load from assets.crowd.aws); like the
real ones, its text inputs live in shadow DOM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from harness import WEAPON, Workflow, start_stack
from scripted_rekognition import Script, detection

from vidmod.detector.samples import sample_video_path
from vidmod.detector.synthetic import make_test_video

pytestmark = [pytest.mark.browser, pytest.mark.workflow]
ROOT = Path(__file__).resolve().parents[2]
DOCS_IMG = ROOT / "docs" / "img"
EVIL = '<img src=x onerror="window.__pwned=1;alert(1)">'
SCRIPT_BREAK = "</script><script>window.__pwned=1;alert(2)</script>"
PLAYER = "document.getElementById('player')"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory)
    url = stack.start_portal(0)
    yield Workflow(stack, scripted), url.rstrip("/")
    stack.stop()


@pytest.fixture
def tab(chrome):
    """A fresh browser context (its own cookies); dialogs (alert) are recorded in tab.dialogs and dismissed."""
    context = chrome.new_context(viewport={"width": 1280, "height": 1200})
    opened = context.new_page()
    opened.dialogs = []
    opened.on("dialog", lambda dialog: (opened.dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()


def start_review(workflow: Workflow, video: Path, key: str, labels: list[dict], millis: int) -> tuple[str, str]:
    workflow.scripted.script(key, Script(labels=labels, duration_millis=millis))
    workflow.s3.upload_file(str(video), workflow.stack.media_bucket, key)
    arn = workflow.execution_for(key)
    return arn, workflow.wait_for_review(arn)


def start_loop(workflow: Workflow, tmp_path: Path, name: str, content: dict) -> None:
    """A human loop started directly (no execution waits on it): for page behaviour only."""
    from vidmod.emulator.stack import FLOW_DEFINITION_ARN

    key = "ui/direct-loops.mp4"  # one 6-second clip for all of them
    if not workflow.s3.list_objects_v2(Bucket=workflow.stack.media_bucket, Prefix=key).get("KeyCount"):
        clip = make_test_video(tmp_path / "direct-loops.mp4", seconds=6, fps=10)
        workflow.s3.upload_file(str(clip), workflow.stack.media_bucket, key)
    video = {"uri": f"s3://{workflow.stack.media_bucket}/{key}", "name": f"{name}.mp4", "durationMillis": 6000}
    base = {"schemaVersion": "1", "video": video, "decision": {"ruleSetVersion": "test", "reasons": []}}
    workflow.stack.a2i.start_human_loop(name, FLOW_DEFINITION_ARN, json.dumps(base | content))


def segment(i: int, name: str, start: int, parent: str = "Violence", length: int = 500) -> dict:
    return {
        "index": i,
        "id": f"seg-{i}",
        "name": name,
        "parentName": parent,
        "category": "Violence",
        "taxonomyLevel": 2,
        "startMillis": start,
        "endMillis": start + length,
        "maxConfidence": 70.0 + i,
        "detections": 1,
    }


def screenshot(page, tmp_path: Path, name: str, rows: int | None = None, docs: bool = True) -> None:
    """Check the page shows what it should, then screenshot it; VIDMOD_UPDATE_DOCS=1 refreshes the docs copy."""
    if rows is not None:
        assert page.locator("tr.segment").count() == rows and page.locator(".marker").count() == rows
        assert page.evaluate(f"{PLAYER}.readyState") >= 2 and page.evaluate(f"{PLAYER}.duration") > 0
        assert page.evaluate(f"{PLAYER}.videoWidth") > 0  # a decoded picture, not a black box
        page.wait_for_function(f"!{PLAYER}.seeking && {PLAYER}.readyState == 4")  # the frame, not a spinner
        page.wait_for_timeout(2000)
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    if docs and os.environ.get("VIDMOD_UPDATE_DOCS") == "1":
        shutil.copyfile(path, DOCS_IMG / name)


def login(page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=reviewer]", name)
    with page.expect_navigation():
        page.click("button[type=submit]")


def read_output(workflow: Workflow, uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def task_token(workflow: Workflow, loop: str) -> str:
    table = workflow.stack.resources.tables["ReviewTasksTable"]["TableName"]
    item = workflow.ddb.get_item(TableName=table, Key={"humanLoopName": {"S": loop}})["Item"]
    return item["taskToken"]["S"]


def checked(page, name: str) -> bool:
    return page.locator(f"crowd-radio-button[name='{name}']").evaluate("el => el.checked")


def test_reviewer_watches_segments_decides_and_the_workflow_resumes(portal, tab, tmp_path):
    workflow, base = portal
    labels = [
        detection("Weapons", "Violence", 2, 81.04, 800),
        detection("Weapons", "Violence", 2, 84.16, 1600),
        detection("Drinking", "Alcohol Use", 3, 88.0, 3500),
        detection("Gambling", "", 1, 82.46, 4200),
    ]
    video = sample_video_path("bigbuckbunny.mp4")  # real footage (CC-BY Blender Foundation)
    arn, loop = start_review(workflow, video, "ui/bigbuckbunny.mp4", labels, 5280)
    token = task_token(workflow, loop)
    assert len(token) > 20 and token not in json.dumps(workflow.stack.a2i.input_content(loop))
    login(tab, base, "dana")
    with tab.expect_navigation():
        tab.click(f"a[href='/tasks/{loop}']")
    tab.wait_for_selector("#player")
    tab.wait_for_function(f"{PLAYER}.readyState >= 2")
    assert token not in tab.content()
    version = workflow.stack.a2i.input_content(loop)["video"]["versionId"]
    assert version and tab.locator(".version-id").inner_text() == version
    # The player plays start_human_review's copy of the analysed version (unversioned: no ?versionId).
    results = workflow.stack.resources.bucket_name("ResultsBucket")
    assert tab.locator("#player").get_attribute("src") == f"/media/{results}/review-media%2F{loop}%2Fbigbuckbunny.mp4"
    rows = tab.locator("tr.segment")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td.label").inner_text() for i in range(3)] == [
        "Violence / Weapons",
        "Alcohol Use / Drinking",
        "Gambling",  # a top-level label: no "/ " in front
    ]
    assert [rows.nth(i).locator("td.time").inner_text() for i in range(3)] == [
        "0:00.800–0:01.600",
        "0:03.500",
        "0:04.200",
    ]
    assert rows.nth(0).locator("td.confidence").inner_text() == "84.2%"
    assert rows.nth(2).locator("td.confidence").inner_text() == "82.5%"
    assert tab.locator(".marker").count() == 3 and tab.locator("#playhead").count() == 1
    tab.locator(".marker").nth(1).click()  # clicking a timeline marker seeks
    tab.wait_for_function(f"Math.abs({PLAYER}.currentTime - 3.5) < 0.3")
    assert tab.locator("tr.segment.active").get_attribute("data-index") == "1"
    rows.nth(0).locator("td.label").click()  # clicking a segment seeks the video
    tab.wait_for_function(f"Math.abs({PLAYER}.currentTime - 0.8) < 0.3")
    tab.wait_for_function("parseFloat(document.getElementById('playhead').style.left) > 0")
    screenshot(tab, tmp_path, "reviewer-task.png", rows=3)

    # mouse: segment 0 is a true positive: clicking the words chooses, like the label of AWS's radio button,
    # and makes it the current row
    rows.nth(2).locator("td.label").click()
    words = rows.nth(0).get_by_text("true positive", exact=True)
    words.click(position={"x": words.bounding_box()["width"] - 4, "y": words.bounding_box()["height"] / 2})
    assert checked(tab, "seg-0-tp") and not checked(tab, "seg-0-fp")
    assert tab.locator("tr.segment.active").get_attribute("data-index") == "0"
    # keyboard: the next segment is the wrong category
    tab.keyboard.press("j")
    tab.keyboard.press("w")
    assert checked(tab, "seg-1-wrong") and not checked(tab, "seg-0-wrong")
    tab.click("button.crowd-submit")  # neither an overall decision nor the category yet: blocked
    assert tab.locator("#decision-error").is_visible() and tab.locator("#category-error").is_visible()
    assert tab.locator("tr.segment[data-index='1'] .category-error").is_visible()
    tab.keyboard.press("Escape")
    tab.locator("body").click(position={"x": 5, "y": 5})
    tab.keyboard.press("r")
    tab.click("button.crowd-submit")  # the decision is there, the category still missing: blocked
    assert tab.locator("#category-error").is_visible() and not tab.locator("#decision-error").is_visible()
    tab.select_option("select.category-picker[data-index='1']", "Gambling")
    # typing a comment that is full of shortcut letters must not touch the decision or the verdicts
    tab.click("crowd-text-area[name=comment] textarea")
    tab.keyboard.type("approve later, really")
    assert checked(tab, "decision-reject") and not checked(tab, "decision-approve")
    assert checked(tab, "seg-1-wrong") and checked(tab, "seg-0-tp") and not checked(tab, "seg-2-tp")
    with tab.expect_navigation():
        tab.click("button.crowd-submit")
    assert "Submitted" in tab.content()
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED"
    record = workflow.decision(arn)
    assert (record["decision"], record["source"], record["reviewer"]) == ("REJECT", "human", "dana")

    uri = workflow.stack.a2i.describe(loop)["HumanLoopOutput"]["OutputS3Uri"]
    assert "/vidmod-local-review/" in uri and uri.endswith(f"/{loop}/output.json")
    output = read_output(workflow, uri)
    assert token not in json.dumps(output)
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
    assert answer["acceptanceTime"] < answer["submissionTime"] and answer["timeSpentInSeconds"] > 0
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
        "seg-2-tp": {"value": False},
        "seg-2-fp": {"value": False},
        "seg-2-wrong": {"value": False},
        "comment": "approve later, really",
    }
    # the contract: complete_human_review's parser reads exactly what the template submitted
    sys.path.insert(0, str(ROOT / "layers" / "contracts"))  # the function reads it from its layer (/opt/python)
    try:
        from vidmod_contracts import review_answers as a2i_output
    finally:
        sys.path.pop(0)
    parsed = a2i_output.parse_output(output, uri)
    assert parsed.decision == "REJECT" and [v.verdict for v in parsed.verdicts][:2] == [
        "true-positive",
        "wrong-category",
    ]
    assert parsed.verdicts[1].category == "Gambling"
    # a loop is submitted once: the task page now says so, and a second post (from the portal's origin) is a 409
    tab.goto(f"{base}/tasks/{loop}")
    assert "This task is Completed" in tab.content()
    again = tab.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                       body: JSON.stringify({'decision-approve': {value: true}})})).status""",
        f"{base}/tasks/{loop}/submit",
    )
    assert again == 409 and read_output(workflow, uri) == output


def test_the_demos_zero_segment_review_says_what_was_and_was_not_checked(portal, tab, tmp_path):
    """The real detector on the demo video: nothing flagged, but categories it cannot see send it to review."""
    workflow, base = portal
    key = "ui/demo-bigbuckbunny.mp4"
    workflow.s3.upload_file(str(sample_video_path("bigbuckbunny.mp4")), workflow.stack.media_bucket, key)
    arn = workflow.execution_for(key)
    loop = workflow.wait_for_review(arn)
    content = workflow.stack.a2i.input_content(loop)
    assert content["segments"] == [] and content["coverage"]
    login(tab, base, "gus")
    tab.goto(f"{base}/tasks/{loop}")
    tab.wait_for_function(f"{PLAYER}.readyState >= 1")
    text = tab.locator("#vidmod").inner_text()
    assert "(uncovered)" not in text and " / " not in text
    assert "because the detector cannot check every label (below)" in text
    seen = tab.locator(".checked")
    assert seen.inner_text().startswith("Checked by the detector — nothing flagged:")
    assert seen.locator("li").all_inner_texts() == [
        "Explicit: Exposed Male Genitalia, Exposed Female Genitalia, Exposed Buttocks or Anus, Exposed Female Nipple",
        "Non-Explicit Nudity of Intimate parts and Kissing: Exposed Male Nipple",
    ]
    not_checked = tab.locator(".uncovered")
    assert not_checked.inner_text().startswith("Not checked — watch the whole video for these:")
    items = not_checked.locator("li").all_inner_texts()
    assert items[:2] == [
        "Explicit: Explicit Sexual Activity, Sex Toys",
        "Non-Explicit Nudity of Intimate parts and Kissing: Bare Back, Partially Exposed Buttocks, Partially Exposed"
        " Female Breast, Implied Nudity, Obstructed Female Nipple, Obstructed Male Genitalia, Kissing on the Lips",
    ]
    # every other category once, with all of its labels to watch for
    assert items[2:] == [
        f"{entry['category']}: every label ({', '.join(entry['notChecked'])})" for entry in content["coverage"][2:]
    ]
    assert [entry["category"] for entry in content["coverage"]][2:5] == [
        "Swimwear or Underwear",
        "Violence",
        "Visually Disturbing",
    ]
    assert tab.locator("#timeline").count() == 0 and tab.locator("tr.segment").count() == 0
    keys = tab.locator(".keys").inner_text()
    assert "a approve video" in keys and "r reject video" in keys and "space play/pause" in keys
    tab.keyboard.press(" ")
    tab.wait_for_function(f"!{PLAYER}.paused")
    tab.keyboard.press(" ")
    tab.wait_for_function(f"{PLAYER}.paused")
    tab.keyboard.press("a")
    assert checked(tab, "decision-approve")
    screenshot(tab, tmp_path, "reviewer-task-nothing-flagged.png", docs=False)
    with tab.expect_navigation():
        tab.click("button.crowd-submit")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    assert (workflow.decision(arn)["decision"], workflow.decision(arn)["reviewer"]) == ("APPROVE", "gus")


def test_html_and_script_in_names_and_labels_render_as_text(portal, tab, tmp_path):
    workflow, base = portal
    labels = [detection(EVIL, "Hate Symbols", 2, 80.0, 1000), detection(SCRIPT_BREAK, "Drugs & Tobacco", 1, 75.0, 3000)]
    clip = make_test_video(tmp_path / "clip.mp4", seconds=8, fps=10)
    arn, loop = start_review(workflow, clip, f"ui/{EVIL}.mp4", labels, 8000)
    token = task_token(workflow, loop)
    login(tab, base, "<b>eve</b>")
    # the queue lists the hostile video name as text
    tab.goto(f"{base}/")
    row = tab.locator("tr", has=tab.locator(f"a[href='/tasks/{loop}']"))
    assert row.locator("td.video").inner_text() == f"{EVIL}.mp4"
    assert tab.locator("img[src=x]").count() == 0
    tab.wait_for_timeout(200)
    assert tab.evaluate("window.__pwned") is None and tab.dialogs == []
    tab.goto(f"{base}/tasks/{loop}")
    tab.wait_for_selector("#player")
    tab.wait_for_timeout(300)
    assert tab.evaluate("window.__pwned") is None and tab.dialogs == []
    assert EVIL in tab.locator(".video-name").inner_text()
    labels_text = tab.locator("td.label").all_inner_texts()
    assert any(EVIL in text for text in labels_text) and any(SCRIPT_BREAK in text for text in labels_text)
    assert tab.locator("img[src=x]").count() == 0
    assert "<b>eve</b>" in tab.locator("header").inner_text()
    assert token not in tab.content()
    tab.keyboard.press("a")
    with tab.expect_navigation():
        tab.click("button.crowd-submit")
    assert tab.evaluate("window.__pwned") is None and tab.dialogs == []
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    assert workflow.decision(arn)["reviewer"] == "<b>eve</b>"


def test_audit_pages_need_a_login_and_render_in_the_browser(portal, tab, tmp_path):
    """Its own execution (a hostile video name, rejected by a reviewer with a hostile name): passes alone."""
    workflow, base = portal
    clip = make_test_video(tmp_path / "audited.mp4", seconds=4, fps=10)
    arn, loop = start_review(workflow, clip, f"ui/audit-{EVIL}.mp4", [WEAPON], 4000)
    workflow.review(loop, "REJECT", reviewer="<b>hal</b>")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    name = arn.rsplit(":", 1)[-1]
    tab.goto(f"{base}/audit")
    assert tab.url == f"{base}/login"
    login(tab, base, "hal")
    tab.goto(f"{base}/audit")
    row = tab.locator("tr", has=tab.locator(f"a[href='/audit/{name}']"))
    cells = row.locator("td").all_inner_texts()
    assert cells[1:5] == ["SUCCEEDED", "REJECT", "human", "<b>hal</b>"]
    tab.goto(f"{base}/audit/{name}")
    assert "The decision record matches the execution history" in tab.content()
    assert EVIL in tab.locator("body").inner_text() and tab.evaluate("window.__pwned") is None
    assert "<b>hal</b>" in tab.locator("body").inner_text() and tab.dialogs == []
    screenshot(tab, tmp_path, "audit-report.png")


def test_keyboard_navigation_apply_to_all_and_category_only_for_wrong(portal, tab, tmp_path):
    workflow, base = portal
    segments = [
        segment(i, name, start) for i, (name, start) in enumerate([("Weapons", 1000), ("Blood", 3000), ("Fight", 4000)])
    ]
    content = {
        "uncoveredCategories": ["Alcohol", "Gambling"],
        "segments": segments,
        "segmentsTruncated": True,
        "segmentsTotal": 412,
    }
    start_loop(workflow, tmp_path, "keys-only", content)
    login(tab, base, "kim")
    tab.goto(f"{base}/tasks/keys-only")
    tab.wait_for_function(f"{PLAYER}.readyState >= 1")
    assert "Alcohol, Gambling" in tab.locator(".uncovered").inner_text()
    assert tab.locator(".truncated").inner_text() == "Only the 3 strongest of 412 segments are listed."

    tab.click("button.apply-all[data-verdict='fp']")
    assert all(checked(tab, f"seg-{i}-fp") for i in range(3))
    tab.keyboard.press("j")
    tab.keyboard.press("j")  # second row is active and the video is at its start
    assert tab.locator("tr.segment.active").get_attribute("data-index") == "1"
    tab.wait_for_function(f"Math.abs({PLAYER}.currentTime - 3) < 0.6")
    tab.keyboard.press("t")
    assert checked(tab, "seg-1-tp") and not checked(tab, "seg-1-fp")
    tab.keyboard.press("k")
    tab.keyboard.press("w")
    picker = tab.locator("select.category-picker[data-index='0']")
    assert picker.is_enabled()
    picker.select_option("Hate Symbols")
    field = "document.querySelector('crowd-input[name=\"seg-0-category\"]').value"
    assert tab.evaluate(field) == "Hate Symbols"
    tab.locator("tr.segment[data-index='0'] td.label").click()  # focus leaves the picker
    tab.keyboard.press("f")  # leaving "wrong" clears and disables the category again
    assert tab.evaluate(field) == "" and picker.is_disabled()
    options = picker.locator("option").all_inner_texts()[1:]
    assert len(options) == 10 and "Drugs & Tobacco" in options
    # clicking a verdict radio makes its row current: t/f/w now apply to it, and the video stays where it is
    position = tab.evaluate(f"{PLAYER}.currentTime")
    tab.locator("crowd-radio-button[name='seg-2-tp'] input").check()
    assert tab.locator("tr.segment.active").get_attribute("data-index") == "2"
    assert abs(tab.evaluate(f"{PLAYER}.currentTime") - position) < 0.01
    tab.keyboard.press("f")
    assert checked(tab, "seg-2-fp") and not checked(tab, "seg-2-tp")
    # space on a focused radio presses the radio; it does not start the video
    tab.locator("crowd-radio-button[name='seg-2-wrong'] input").focus()
    tab.keyboard.press(" ")
    assert checked(tab, "seg-2-wrong") and tab.evaluate(f"{PLAYER}.paused")
    # the hidden category field sits in a display:none wrapper
    assert tab.locator("crowd-input[name='seg-2-category']").evaluate("el => el.getBoundingClientRect().height") == 0


def test_typing_in_the_comment_never_triggers_shortcuts(portal, tab, tmp_path):
    """The crowd text area keeps its textarea in shadow DOM: the key events' target is the crowd-text-area."""
    workflow, base = portal
    start_loop(workflow, tmp_path, "typing", {"segments": [segment(0, "Weapons", 1000)], "uncoveredCategories": []})
    login(tab, base, "ida")
    tab.goto(f"{base}/tasks/typing")
    tab.wait_for_function(f"{PLAYER}.readyState >= 1")
    assert tab.locator("crowd-text-area[name=comment]").evaluate("el => !!el.shadowRoot")
    assert tab.locator("crowd-text-area[name=comment]").evaluate("el => el.querySelector('textarea') === null")
    tab.keyboard.press("j")
    tab.keyboard.press("r")
    tab.click("crowd-text-area[name=comment] textarea")
    text = "approve later, really; fine wrong take: j k t f w a r"
    tab.keyboard.type(text)
    assert tab.locator("crowd-text-area[name=comment]").evaluate("el => el.value") == text
    assert checked(tab, "decision-reject") and not checked(tab, "decision-approve")
    assert not any(checked(tab, f"seg-0-{v}") for v in ("tp", "fp", "wrong"))
    assert tab.evaluate(f"{PLAYER}.paused")  # the spaces typed did not start the video
    submitted = []
    tab.route("**/submit", lambda route: (submitted.append(route.request.post_data_json), route.continue_()))
    with tab.expect_navigation():
        tab.click("button.crowd-submit")
    assert submitted[0]["comment"] == text and submitted[0]["decision-reject"] == {"value": True}
    output = read_output(workflow, workflow.stack.a2i.describe("typing")["HumanLoopOutput"]["OutputS3Uri"])
    assert output["humanAnswers"][0]["answerContent"]["comment"] == text


def test_submit_is_disabled_while_in_flight_and_errors_are_shown(portal, tab, tmp_path):
    workflow, base = portal
    start_loop(workflow, tmp_path, "flaky", {"segments": [], "uncoveredCategories": ["Alcohol"]})
    login(tab, base, "jo")
    tab.goto(f"{base}/tasks/flaky")
    tab.wait_for_selector("button.crowd-submit")
    tab.keyboard.press("a")
    held = []
    tab.route("**/submit", lambda route: held.append(route))
    tab.click("button.crowd-submit")
    tab.wait_for_function("document.querySelector('button.crowd-submit').disabled")
    tab.locator("button.crowd-submit").dispatch_event("click")  # a second click while in flight: nothing sent
    tab.wait_for_timeout(200)
    assert len(held) == 1
    held[0].fulfill(status=500, body="Internal Server Error", content_type="text/plain")
    tab.wait_for_function("!document.querySelector('button.crowd-submit').disabled")
    assert "HTTP 500" in tab.locator("#crowd-status").inner_text()
    tab.unroute("**/submit")

    tab.route("**/submit", lambda route: route.abort("connectionrefused"))
    tab.click("button.crowd-submit")
    tab.wait_for_function("document.getElementById('crowd-status').textContent.includes('could not be reached')")
    assert tab.locator("button.crowd-submit").is_enabled()
    tab.unroute("**/submit")

    workflow.stack.a2i.submit("flaky", {"decision-reject": {"value": True}}, "someone-else")
    tab.click("button.crowd-submit")
    tab.wait_for_function("document.getElementById('crowd-status').textContent.includes('already submitted')")
    assert tab.locator("button.crowd-submit").is_disabled() and tab.url.endswith("/tasks/flaky")
    output = read_output(workflow, workflow.stack.a2i.describe("flaky")["HumanLoopOutput"]["OutputS3Uri"])
    assert output["humanAnswers"][0]["workerId"] == "someone-else"


def test_second_reviewer_sees_who_else_has_the_task_open(portal, chrome, tab, tmp_path):
    workflow, base = portal
    start_loop(workflow, tmp_path, "shared", {"segments": [], "uncoveredCategories": []})
    login(tab, base, "kay")
    tab.goto(f"{base}/tasks/shared")
    other = chrome.new_context().new_page()
    login(other, base, "lee")
    other.goto(f"{base}/tasks/shared")
    assert re.match(
        r"Also being reviewed by kay since \d{4}-\d\d-\d\d \d\d:\d\d UTC", other.locator(".others").inner_text()
    )
    other.goto(f"{base}/")
    shared_row = other.locator("tr", has=other.locator("a[href='/tasks/shared']")).locator("td.reviewing")
    assert "kay since" in shared_row.inner_text() and "lee since" in shared_row.inner_text()
    other.context.close()


def test_many_open_tasks_in_one_session_keep_the_acceptance_time(portal, tab, tmp_path):
    """Acceptance times used to live in the session cookie; after ~45 task pages Chromium dropped it."""
    workflow, base = portal
    names = [f"many-{i:02d}" for i in range(62)]
    for name in names:
        start_loop(workflow, tmp_path, name, {"segments": [], "uncoveredCategories": []})
    login(tab, base, "max")
    tab.goto(f"{base}/tasks/{names[0]}")
    tab.wait_for_timeout(300)
    for name in names:
        assert tab.request.get(f"{base}/tasks/{name}").status == 200
    (cookie,) = [c for c in tab.context.cookies() if c["name"] == "session"]
    assert len(cookie["value"]) < 1024
    tab.goto(f"{base}/tasks/{names[0]}")  # a reload does not restart the clock
    tab.keyboard.press("a")
    with tab.expect_navigation():
        tab.click("button.crowd-submit")
    output = read_output(workflow, workflow.stack.a2i.describe(names[0])["HumanLoopOutput"]["OutputS3Uri"])
    (answer,) = output["humanAnswers"]
    assert answer["acceptanceTime"] < answer["submissionTime"] and answer["timeSpentInSeconds"] >= 0.3
    for name in names[1:]:  # out of the other tests' queue, without status events
        workflow.stack.a2i.delete(name)


def test_polyfill_crowd_classifier_answer_shape(portal, tab):
    """crowd-classifier is not used by the template, but the polyfill reproduces its documented shape."""
    _, base = portal
    login(tab, base, "ned")
    tab.goto(f"{base}/")
    tab.add_script_tag(url=f"{base}/static/crowd-polyfill.js")
    tab.evaluate(
        """() => {
            const form = document.createElement('crowd-form');
            form.innerHTML = `<crowd-classifier name="category" categories='["Violence", "Alcohol"]' header="Which?">
                              </crowd-classifier><crowd-input name="empty"></crowd-input>`;
            document.body.appendChild(form);
        }"""
    )
    tab.locator("crowd-classifier label", has_text="Alcohol").locator("input").check()
    assert tab.evaluate("document.querySelector('crowd-form').answer()") == {"category": {"label": "Alcohol"}}
