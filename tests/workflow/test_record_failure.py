"""A decision that cannot be recorded fails the execution by name, and the history alone says what was decided.

Its own module (and so its own local stack): the decisions table is removed for real, so RecordDecision's putItem
fails as it would in AWS, after its retries."""

from __future__ import annotations

import json

import pytest
from scripted_rekognition import Script

from vidmod_contracts.record_hash import record_hash

pytestmark = pytest.mark.workflow


def test_a_decision_the_table_refuses_fails_the_execution_and_says_what_was_decided(workflow):
    workflow.ddb.delete_table(TableName=workflow.stack.decisions_table)
    workflow.scripted.script("unrecorded.mp4", Script(labels=[]))
    version = workflow.upload("unrecorded.mp4")
    arn = workflow.execution_for("unrecorded.mp4")
    result = workflow.wait(arn)

    assert (result["status"], result["error"]) == ("FAILED", "DecisionNotRecorded")
    cause = result["cause"]
    uri = f"s3://{workflow.stack.media_bucket}/unrecorded.mp4"
    assert cause.startswith("Decision APPROVE (source rules, reviewer [], rule set ")
    assert f"for {uri} version {version} was NOT recorded in the decisions table" in cause
    assert "the video was not tagged and no decision event was published" in cause
    assert "ResourceNotFoundException" in cause  # the table's own error, as DynamoDB gave it

    history = workflow.history(arn)
    states = workflow.states(arn)
    assert states[-3:] == ["RecordDecision", "DescribeUnrecordedDecision", "DecisionNotRecorded"]
    assert not {"TagVideo", "PublishDecision", "Done"} & set(states)  # nothing announced a decision not on record
    failed = [e["taskFailedEventDetails"] for e in history if e["type"] == "TaskFailed"]
    assert [f["error"] for f in failed] == ["DynamoDB.ResourceNotFoundException"]  # not retried: it will not heal
    # the record that was not written is in the history: RecordDecision's input
    entered = next(
        e["stateEnteredEventDetails"]
        for e in history
        if e.get("stateEnteredEventDetails", {}).get("name") == "RecordDecision"
    )
    final = json.loads(entered["input"])["final"]
    assert (final["decision"], final["source"], final["versionId"]) == ("APPROVE", "rules", version)
    # sealed before the write failed: the hash it would have stored is beside it
    assert json.loads(entered["input"])["seal"] == {"recordSha256": record_hash(final, "3"), "hashVersion": "3"}
    assert states[-4] == "SealRecord"
    tags = workflow.s3.get_object_tagging(Bucket=workflow.stack.media_bucket, Key="unrecorded.mp4")["TagSet"]
    assert not [t for t in tags if t["Key"].startswith("vidmod-")]
