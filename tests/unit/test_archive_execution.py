"""archive_execution keeps a finished execution's whole history in the audit bucket, once."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

ARN = "arn:aws:states:us-east-1:123456789012:execution:vidmod-Moderation:clip-abc"


def status_change(execution_arn: str, status: str = "SUCCEEDED") -> dict:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "us-east-1",
        "resources": [execution_arn],
        "detail": {"executionArn": execution_arn, "status": status, "name": execution_arn.rsplit(":", 1)[-1]},
    }


@pytest.fixture
def finished_execution(aws):
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="vidmod-Moderation",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )
    return sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="clip-abc", input='{"video": 1}')


@pytest.fixture
def archiver(aws, load_function, monkeypatch):
    """archive_execution with its audit bucket, and an S3 client to read what it wrote."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="audit")
    monkeypatch.setenv("AUDIT_BUCKET", "audit")
    return load_function("archive_execution"), s3


def test_the_archive_holds_the_description_and_every_event_with_iso_times(
    aws, archiver, lambda_context, finished_execution
):
    app, s3 = archiver
    arn = finished_execution["executionArn"]

    result = app.lambda_handler(status_change(arn), lambda_context)

    assert result == {"archived": True, "key": "executions/vidmod-Moderation/clip-abc.json"}
    archive = json.loads(s3.get_object(Bucket="audit", Key=result["key"])["Body"].read())
    live = aws.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    assert archive["format"] == 1
    assert archive["execution"]["executionArn"] == arn and archive["execution"]["input"] == '{"video": 1}'
    assert [e["id"] for e in archive["events"]] == [e["id"] for e in live] and len(live) > 1
    assert archive["events"][0]["timestamp"].endswith("Z")
    assert datetime.fromisoformat(archive["archivedAt"]) <= datetime.now(UTC)


def test_a_duplicate_event_never_replaces_the_archive(archiver, lambda_context, finished_execution):
    app, s3 = archiver
    arn = finished_execution["executionArn"]
    first = app.lambda_handler(status_change(arn), lambda_context)
    original = s3.get_object(Bucket="audit", Key=first["key"])["Body"].read()

    again = app.lambda_handler(status_change(arn), lambda_context)

    assert again == {"archived": False, "key": first["key"]}
    assert s3.get_object(Bucket="audit", Key=first["key"])["Body"].read() == original


def test_every_history_page_is_archived(aws, load_function):
    app = load_function("archive_execution")
    import execution_archive

    moment = datetime(2026, 11, 25, tzinfo=UTC)
    page = [{"id": i, "timestamp": moment, "type": "PassStateEntered"} for i in (1, 2)]
    with Stubber(app.sfn) as stub:
        stub.add_response("get_execution_history", {"events": page, "nextToken": "p2"}, {"executionArn": ARN})
        stub.add_response(
            "get_execution_history",
            {"events": [{"id": 3, "timestamp": moment, "type": "ExecutionSucceeded"}]},
            {"executionArn": ARN, "nextToken": "p2"},
        )
        assert [e["id"] for e in execution_archive.history(app.sfn, ARN)] == [1, 2, 3]


def test_only_execution_arns_have_an_archive_key(aws, load_function):
    load_function("archive_execution")
    from vidmod_contracts.archive import archive_key

    assert archive_key(ARN) == "executions/vidmod-Moderation/clip-abc.json"
    with pytest.raises(ValueError, match="not a Step Functions execution ARN"):
        archive_key("arn:aws:states:us-east-1:123456789012:stateMachine:vidmod-Moderation")
