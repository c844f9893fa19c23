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
