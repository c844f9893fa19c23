"""No task token in any log the local stack writes (issue 16: whoever reads a token can forge a verdict).

The stack runs as a user runs it (``vidmod local up``, the real detector, the portal over HTTP); a video goes
to human review and a reviewer decides it. Every log it wrote is then searched for the execution's task
tokens, as they are and URL-encoded: the process's stdout and stderr (the CLI, the emulator's and the
engine's logging), each Lambda function's log (the handlers' Powertools lines, START/END/REPORT) and the
event log. The state files (tables, journals, the archived history in the audit bucket) hold the tokens by
design, as DynamoDB and Step Functions do in AWS: they are not logs.
"""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

import pytest
from local_process import MEDIA, LocalProcess

from vidmod.detector.synthetic import make_test_video

pytestmark = pytest.mark.workflow


def callback_payloads(history: list[dict]) -> list[dict]:
    """The Lambda payloads of the execution's callback tasks (HumanReview's among them), each with its token."""
    payloads = []
    for event in history:
        if details := event.get("taskScheduledEventDetails"):
            payload = json.loads(details["parameters"]).get("Payload")
            if isinstance(payload, dict) and payload.get("taskToken"):
                payloads.append(payload)
    return payloads


def test_a_reviewed_execution_leaves_no_task_token_in_any_log(tmp_path):
    video = make_test_video(tmp_path / "clip.mp4", seconds=3, fps=24)
    stack = LocalProcess(tmp_path / "state").start()
    try:
        stack.s3.put_object(Bucket=MEDIA, Key="clip.mp4", Body=video.read_bytes())
        arn = stack.execution_for("clip.mp4")
        loop = stack.wait_for_review(arn)
        stack.answer(loop, "REJECT")
        assert stack.wait_until_ended(arn)["status"] == "SUCCEEDED"
        history = stack.history(arn)
    finally:
        stack.stop()  # flushes every log

    payloads = callback_payloads(history)
    assert [p["humanLoopName"] for p in payloads if "humanLoopName" in p] == [loop]  # HumanReview's token is here
    tokens = {p["taskToken"] for p in payloads}
    forms = {form for token in tokens for form in (token, quote(token, safe=""), quote_plus(token))}

    state = tmp_path / "state"
    logs = {"stdout/stderr": stack.output(), "events.jsonl": (state / "events.jsonl").read_text()}
    logs |= {path.name: path.read_text() for path in sorted((state / "logs").glob("*.log"))}
    # the logs are really captured: the review function logged the loop it started, the stack its own lines
    assert loop in logs["vidmod-StartHumanReviewFunction.log"]
    assert "vidmod local stack is up" in logs["stdout/stderr"]
    leaks = [
        f"{name}:{number}: {line[:200]}"
        for name, text in logs.items()
        for number, line in enumerate(text.splitlines(), 1)
        if any(form in line for form in forms)
    ]
    assert leaks == [], "task token in the logs:\n" + "\n".join(leaks)
