"""Review time limits: heartbeats keep a live review waiting; a review past its timeout escalates."""

from __future__ import annotations

import time

import pytest
from harness import WEAPON, Workflow, start_stack

from vidmod.audit.cli import audit
from vidmod.local.scripted import Script

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def short_reviews(tmp_path_factory):
    # Heartbeats every 3 s (the 10-minute schedule scaled down), heartbeat limit 6 s, review limit 20 s.
    stack, scripted = start_stack(
        tmp_path_factory, ReviewTimeoutSeconds="20", ReviewHeartbeatSeconds="6", HeartbeatSchedule="rate(10 minutes)"
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
    report = audit(workflow.sfn, workflow.ddb, workflow.stack.decisions_table, arn)
    assert report.status == "FAILED" and report.final["decision"] == "ESCALATED" and report.integrity == []
