"""Reviewer consensus in a real chrome (Debian chromium via Playwright) on a real local stack.

The stack runs with ``ReviewersPerVideo=3``: the local flow definition's TaskCount. Three reviewers, each in
their own browser context, answer the same task; the loop stays open until all three have, a reviewer who
answered no longer gets the task (queue, task page, a direct submit), and the execution records the
consolidated decision with every answer and the agreement.

The tie case uses the same stack: its flow definition's TaskCount is set to 2 before that video's loop starts
(what a redeployed flow definition with ``ReviewersPerVideo=2`` does; a loop keeps the count it started with),
which spares a second stack.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import WEAPON, Workflow, start_stack
from scripted_rekognition import Script

from vidmod.detector.synthetic import make_test_video
from vidmod.emulator.stack import FLOW_DEFINITION_ARN

pytestmark = [pytest.mark.browser, pytest.mark.workflow]
SUBMIT_AGAIN = """async (url) => (await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                   body: JSON.stringify({'decision-approve': {value: true}})})).status"""


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory, ReviewersPerVideo="3")
    url = stack.start_portal(0)
    yield Workflow(stack, scripted), url.rstrip("/")
    stack.stop()


@pytest.fixture
def reviewers(chrome):
    """Open a browser context (own cookies) per reviewer, logged in; dialogs are recorded and dismissed."""
    contexts = []

    def open_as(base: str, name: str):
        context = chrome.new_context(viewport={"width": 1280, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{base}/login")
        page.fill("input[name=reviewer]", name)
        with page.expect_navigation():
            page.click("button[type=submit]")
        return page

    yield open_as
    for context in contexts:
        context.close()


def review_started(workflow: Workflow, tmp_path: Path, key: str) -> tuple[str, str]:
    clip = make_test_video(tmp_path / "clip.mp4", seconds=4, fps=10)
    workflow.scripted.script(key, Script(labels=[WEAPON], duration_millis=4000))
    workflow.s3.upload_file(str(clip), workflow.stack.media_bucket, key)
    arn = workflow.execution_for(key)
    return arn, workflow.wait_for_review(arn)


def queue_row(page, base: str, loop: str):
    page.goto(f"{base}/")
    return page.locator("tr", has=page.locator(f"a[href='/tasks/{loop}']"))


def answer(page, base: str, loop: str, key: str, comment: str = "") -> str:
    """Open the task from the queue, decide with the keyboard (a/r), submit; returns the queue's flash."""
    with page.expect_navigation():
        queue_row(page, base, loop).locator(f"a[href='/tasks/{loop}']").click()
    page.wait_for_selector("button.crowd-submit")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press(key)
    if comment:
        page.click("crowd-text-area[name=comment] textarea")
        page.keyboard.type(comment)
    with page.expect_navigation():
        page.click("button.crowd-submit")
    return page.locator(".flash").inner_text()


def recorded_review(workflow: Workflow, arn: str) -> tuple[dict, dict]:
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    record = workflow.decision(arn)
    return record, json.loads(record["detail"])


def test_three_reviewers_two_reject_one_approves_and_nobody_answers_twice(portal, reviewers, tmp_path):
    workflow, base = portal
    arn, loop = review_started(workflow, tmp_path, "consensus/three.mp4")
    created = workflow.stack.a2i.describe(loop)["CreationTime"]
    ann, ben, cat = (reviewers(base, name) for name in ("ann", "ben", "cat"))

    assert queue_row(ann, base, loop).locator("td.answers").inner_text() == "0 of 3 answers"
    assert answer(ann, base, loop, "r", comment="a real weapon") == f"Saved: waiting for 2 more reviewers on {loop}."
    # ann answered: the task is gone from her queue, its page says so (no form), a direct submit is refused
    assert queue_row(ann, base, loop).count() == 0
    response = ann.goto(f"{base}/tasks/{loop}")
    assert response.status == 409 and "You have already answered this task" in ann.locator("body").inner_text()
    assert ann.locator("crowd-form").count() == 0 and ann.locator("button.crowd-submit").count() == 0
    assert ann.evaluate(SUBMIT_AGAIN, f"{base}/tasks/{loop}/submit") == 409
    assert workflow.stack.a2i.describe(loop)["HumanLoopStatus"] == "InProgress"

    assert queue_row(ben, base, loop).locator("td.answers").inner_text() == "1 of 3 answers"
    assert answer(ben, base, loop, "a") == f"Saved: waiting for 1 more reviewer on {loop}."
    assert ben.evaluate(SUBMIT_AGAIN, f"{base}/tasks/{loop}/submit") == 409
    assert queue_row(cat, base, loop).locator("td.answers").inner_text() == "2 of 3 answers"
    assert answer(cat, base, loop, "r") == f"Submitted {loop}. Thank you."
    assert all(page.dialogs == [] for page in (ann, ben, cat))

    record, review = recorded_review(workflow, arn)
    assert (record["decision"], record["source"], record["reviewer"]) == ("REJECT", "human", "ann,ben,cat")
    assert [(r["workerId"], r["decision"]) for r in review["reviewers"]] == [
        ("ann", "REJECT"),
        ("ben", "APPROVE"),
        ("cat", "REJECT"),
    ]
    assert review["reviewers"][0]["comment"] == "a real weapon"
    assert review["agreement"] == {"rule": "majority", "answers": 3, "agreeing": 2, "unanimous": False}
    assert review["requestedAt"] == created
    assert review["requestedAt"] < review["reviewers"][0]["submissionTime"] < review["submissionTime"]
    uri = workflow.stack.a2i.describe(loop)["HumanLoopOutput"]["OutputS3Uri"]
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    output = json.loads(workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert [a["workerId"] for a in output["humanAnswers"]] == ["ann", "ben", "cat"]
    assert output["inputContent"]["consensus"] == "majority"  # the rule set's rule, sent with the loop
    cat.goto(f"{base}/tasks/{loop}")
    assert "This task is Completed" in cat.locator("body").inner_text()


def test_a_tie_of_two_reviewers_rejects_under_majority(portal, reviewers, tmp_path):
    workflow, base = portal
    counts = workflow.stack.a2i.task_counts
    counts[FLOW_DEFINITION_ARN] = 2  # the next loop needs two answers (a flow definition with TaskCount 2)
    try:
        arn, loop = review_started(workflow, tmp_path, "consensus/tie.mp4")
    finally:
        counts[FLOW_DEFINITION_ARN] = 3
    dee, eli = reviewers(base, "dee"), reviewers(base, "eli")
    assert queue_row(eli, base, loop).locator("td.answers").inner_text() == "0 of 2 answers"
    assert answer(dee, base, loop, "a") == f"Saved: waiting for 1 more reviewer on {loop}."
    assert answer(eli, base, loop, "r") == f"Submitted {loop}. Thank you."
    record, review = recorded_review(workflow, arn)
    assert (record["decision"], record["reviewer"]) == ("REJECT", "dee,eli")
    assert review["agreement"] == {"rule": "majority", "answers": 2, "agreeing": 1, "unanimous": False}
