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


@pytest.fixture(scope="module")
def short_reviews(tmp_path_factory):
    # Heartbeats every 3 s (the 10-minute schedule scaled down), heartbeat limit 6 s, review limit 20 s.
    stack, scripted = start_stack(
        tmp_path_factory,
        parameter_ranges=False,  # limits below the template's MinValue (60 s), so the test takes seconds
        ReviewTimeoutSeconds="20",
        ReviewHeartbeatSeconds="6",
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
    time.sleep(10)  # past the 6 s heartbeat limit: only the heartbeats keep the task alive
    assert workflow.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    result = workflow.wait(arn, timeout=60)
    assert (result["status"], result["error"]) == ("FAILED", "ReviewTimedOut")
    states = workflow.states(arn)
    assert states[-4:] == ["StopHumanLoop", "Escalated", "RecordDecision", "TagVideo"] or "Escalated" in states
    record = workflow.decision(arn)
    assert (record["decision"], record["source"]) == ("ESCALATED", "system")
    assert "States.Timeout" in record["detail"] or "HeartbeatTimeout" in record["detail"]
    assert workflow.stack.a2i.describe(loop)["HumanLoopStatus"] in {"Stopped", "Stopping"}
    # the audit explains the escalation: no reviewer, why it was flagged, when it gave up
    sources = AuditSources(workflow.sfn, workflow.ddb, workflow.s3, workflow.stack.decisions_table)
    report = audit(sources, arn)
    assert (report.status, report.integrity, report.review, report.answers) == ("FAILED", [], None, [])
    assert report.failure["error"] == "ReviewTimedOut" and report.submitted["trigger"]["type"] == "s3-upload"
    final = report.final
    assert (final["decision"], final["source"], final["reviewer"]) == ("ESCALATED", "system", "")
    assert final["humanLoopName"] == loop and json.loads(final["detail"])["Error"] in {
        "States.Timeout",
        "States.HeartbeatTimeout",
    }
    assert report.rules["outcome"] == "REVIEW" and [r["label"] for r in report.rules["reasons"]] == ["Weapons"]
    assert [(s["name"], s["verdicts"]) for s in report.segments] == [("Weapons", [])]
    assert report.evidence["segments"]["status"] == "verified" and "reviewOutput" not in report.evidence
    described = workflow.sfn.describe_execution(executionArn=arn)
    decided = datetime.fromisoformat(final["decidedAt"].replace("Z", "+00:00"))
    assert described["startDate"] + timedelta(seconds=6) <= decided <= described["stopDate"]
    check_run("timed_out", workflow, report)  # the golden files of a timed-out review (tests/audit)
