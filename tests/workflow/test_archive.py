"""Every finished execution is archived with its whole history (Step Functions keeps it only 90 days)."""

from __future__ import annotations

import json
import time

import pytest
from scripted_rekognition import Script, detection

pytestmark = pytest.mark.workflow
HATE = detection("Nazi Party", "Hate Symbols", 2, 99.0, 4000)


def archived(workflow, arn: str, timeout: float = 30) -> dict:
    bucket = workflow.stack.resources.bucket_name("AuditBucket")
    machine, name = arn.split(":")[-2:]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = workflow.s3.get_object(Bucket=bucket, Key=f"executions/{machine}/{name}.json")["Body"].read()
            return json.loads(body)
        except workflow.s3.exceptions.NoSuchKey:
            time.sleep(0.5)
    raise AssertionError(f"{arn} was not archived")


def test_a_finished_execution_is_archived_with_its_whole_history(workflow):
    workflow.scripted.script("archived.mp4", Script(labels=[HATE]))
    workflow.upload("archived.mp4")
    arn = workflow.execution_for("archived.mp4")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"

    archive = archived(workflow, arn)

    live = workflow.history(arn)
    assert archive["execution"]["status"] == "SUCCEEDED" and archive["execution"]["executionArn"] == arn
    assert [(e["id"], e["type"]) for e in archive["events"]] == [(e["id"], e["type"]) for e in live]
    assert archive["events"][-1]["type"] == "ExecutionSucceeded"
    assert json.loads(archive["execution"]["output"])["decision"] == "REJECT"


def test_a_failed_execution_is_archived_too(workflow):
    workflow.upload("notes.mp4", body=b"")
    arn = workflow.execution_for("notes.mp4")
    assert workflow.wait(arn)["status"] == "FAILED"
    archive = archived(workflow, arn)
    assert archive["execution"]["status"] == "FAILED" and archive["execution"]["error"] == "EmptyVideo"


def test_every_event_delivered_again_changes_nothing(workflow):
    """EventBridge delivers at least once, and the local stack redelivers what a crash cut short: each consumer
    (submit, complete_human_review, archive_execution, the review replay) must take a second delivery of any
    event of an execution's life as a no-op."""
    from harness import WEAPON

    workflow.scripted.script("again.mp4", Script(labels=[WEAPON]))
    version = workflow.upload("again.mp4")
    arn = workflow.execution_for("again.mp4")
    loop = workflow.wait_for_review(arn)
    workflow.review(loop, "REJECT", reviewer="carol")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    archived(workflow, arn)
    stack, media = workflow.stack, workflow.stack.media_bucket
    audit_bucket = stack.resources.bucket_name("AuditBucket")

    def state() -> tuple:
        return (
            workflow.executions_for("again.mp4"),
            workflow.decision(arn),
            workflow.s3.get_object_tagging(Bucket=media, Key="again.mp4", VersionId=version)["TagSet"],
            [v["VersionId"] for v in workflow.s3.list_object_versions(Bucket=audit_bucket).get("Versions", [])],
            workflow.history(arn)[-1]["type"],
        )

    before = state()
    log = stack.options.state_dir / "events.jsonl"

    def entries() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    name = arn.rsplit(":", 1)[-1]
    ours = [
        entry
        for entry in entries()
        if "event" in entry
        and entry["matchedRules"]
        and any(mark in json.dumps(entry["event"]) for mark in (name, loop, "again.mp4"))
    ]
    kinds = {entry["event"]["detail-type"] for entry in ours}
    lifecycle = {"Object Created", "SageMaker A2I HumanLoop Status Change", "Step Functions Execution Status Change"}
    assert lifecycle <= kinds
    ids = {entry["event"]["id"] for entry in ours}

    def finished() -> int:  # deliveries finished, as the router marks them in its log
        return sum(1 for entry in entries() if entry.get("delivered") in ids)

    already = finished()
    for entry in ours:
        stack.router.publish(dict(entry["event"]))  # the same event, the same id
    deadline = time.monotonic() + 60
    while finished() < already + sum(len(entry["matchedRules"]) for entry in ours):
        assert time.monotonic() < deadline, "the redelivered events were not all handled"
        time.sleep(0.2)
    assert state() == before
