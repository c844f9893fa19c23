"""Review time limits: heartbeats keep a live review waiting; a review past its timeout escalates."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

import pytest
from audit.golden import check_run
from harness import WEAPON, Workflow, start_stack
from scripted_rekognition import Script

from vidmod.audit.sources import AuditSources, audit

pytestmark = pytest.mark.workflow


# Heartbeats every 3 s (the 10-minute schedule scaled down) against a 12 s heartbeat limit: three in a row may
# be late on a loaded 2-core machine before the task would fail. The review limit (30 s) ends it.
HEARTBEAT_LIMIT, REVIEW_LIMIT = 12, 30


@pytest.fixture(scope="module")
def short_reviews(tmp_path_factory):
    stack, scripted = start_stack(
        tmp_path_factory,
        parameter_ranges=False,  # limits below the template's MinValue (60 s), so the test takes seconds
        ReviewTimeoutSeconds=str(REVIEW_LIMIT),
        ReviewHeartbeatSeconds=str(HEARTBEAT_LIMIT),
        HeartbeatSchedule="rate(10 minutes)",
    )
    yield Workflow(stack, scripted)
    stack.stop()


def test_heartbeats_keep_an_open_review_alive_then_the_timeout_escalates(short_reviews):
    workflow = short_reviews
    workflow.scripted.script("slow-review.mp4", Script(labels=[WEAPON]))
    workflow.upload("slow-review.mp4")
    arn = workflow.execution_for("slow-review.mp4")
    loop = workflow.wait_for_review(arn)
    waiting_since = time.monotonic()
    while time.monotonic() - waiting_since < HEARTBEAT_LIMIT + 3:  # past the heartbeat limit: only heartbeats
        assert workflow.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"  # keep the task alive
        time.sleep(1)
    result = workflow.wait(arn, timeout=REVIEW_LIMIT + 60)
    assert (result["status"], result["error"]) == ("FAILED", "ReviewTimedOut")
    states = workflow.states(arn)
    assert states[states.index("HumanReview") :] == [
        "HumanReview", "StopHumanLoop", "Escalated", "BuildRecord", "RecordNamesError", "SealRecord", "RecordDecision",
        "TagVideo", "ReadVersionTags", "KeepOtherTags", "MergeTags", "WriteTags", "WriteVersionTags", "PublishDecision",
        "Outcome", "ReviewTimedOut",
    ]  # fmt: skip
    record = workflow.decision(arn)
    assert (record["decision"], record["source"]) == ("ESCALATED", "system")
    assert json.loads(record["detail"])["Error"] == "States.Timeout"  # the review limit, not a missed heartbeat
    assert workflow.stack.a2i.describe(loop)["HumanLoopStatus"] in {"Stopped", "Stopping"}
    # the audit explains the escalation: no reviewer, why it was flagged, when it gave up
    sources = AuditSources(workflow.sfn, workflow.ddb, workflow.s3, workflow.stack.decisions_table)
    report = audit(sources, arn)
    assert (report.status, report.integrity, report.review, report.answers) == ("FAILED", [], None, [])
    assert report.failure["error"] == "ReviewTimedOut" and report.submitted["trigger"]["type"] == "s3-upload"
    final = report.final
    assert (final["decision"], final["source"], final["reviewer"]) == ("ESCALATED", "system", "")
    assert final["humanLoopName"] == loop and json.loads(final["detail"])["Error"] == "States.Timeout"
    assert report.rules["outcome"] == "REVIEW" and [r["label"] for r in report.rules["reasons"]] == ["Weapons"]
    assert [(s["name"], s["verdicts"]) for s in report.segments] == [("Weapons", [])]
    assert report.evidence["segments"]["status"] == "verified" and "reviewOutput" not in report.evidence
    described = workflow.sfn.describe_execution(executionArn=arn)
    decided = datetime.fromisoformat(final["decidedAt"].replace("Z", "+00:00"))
    assert described["startDate"] + timedelta(seconds=REVIEW_LIMIT) <= decided <= described["stopDate"]
    check_run("timed_out", workflow, report)  # the golden files of a timed-out review (tests/audit)
