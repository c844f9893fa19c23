"""store_labels keeps pages in S3; review_heartbeat keeps live review tasks alive."""

from __future__ import annotations

import json

import pytest


def test_pages_are_stored_in_order_and_only_a_summary_is_returned(aws, load_function, lambda_context):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="results")
    app = load_function("store_labels")
    results = {"bucket": "results", "prefix": "moderations/x/"}
    page1 = {
        "JobStatus": "SUCCEEDED",
        "ModerationLabels": [{"Timestamp": i} for i in range(100)],
        "NextToken": "t2",
        "ModerationModelVersion": "7.0",
        "VideoMetadata": {"DurationMillis": 5000},
    }
    first = app.lambda_handler(
        {"page": page1, "previous": {"pages": 0, "detections": 0}, "results": results}, lambda_context
    )
    assert first == {
        "pages": 1,
        "detections": 100,
        "modelVersion": "7.0",
        "statusMessage": "",
        "videoMetadata": {"DurationMillis": 5000},
        "hasMore": True,
        "nextToken": "t2",
    }
    page2 = {"JobStatus": "SUCCEEDED", "ModerationLabels": [{"Timestamp": 1}], "ModerationModelVersion": "7.0"}
    second = app.lambda_handler({"page": page2, "previous": first, "results": results}, lambda_context)
    assert (second["pages"], second["detections"], second["hasMore"], second["nextToken"]) == (2, 101, False, "")
    stored = json.loads(s3.get_object(Bucket="results", Key="moderations/x/pages/00001.json")["Body"].read())
    assert len(stored["ModerationLabels"]) == 100
    assert len(json.dumps(second)) < 1024


@pytest.fixture
def heartbeat(aws, monkeypatch, load_function):
    monkeypatch.setenv("REVIEW_TASKS_TABLE", "tasks")
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="tasks",
        KeySchema=[{"AttributeName": "humanLoopName", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "humanLoopName", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for name, status in [("live", "PENDING"), ("finished", "PENDING"), ("done", "DONE")]:
        ddb.put_item(
            TableName="tasks",
            Item={"humanLoopName": {"S": name}, "taskToken": {"S": f"tok-{name}"}, "status": {"S": status}},
        )
    return load_function("review_heartbeat")


def describe(name: str, status: str) -> dict:
    return {
        "CreationTime": "2026-11-24T10:00:00Z",
        "HumanLoopStatus": status,
        "HumanLoopName": name,
        "HumanLoopArn": f"arn:{name}",
        "FlowDefinitionArn": "arn:flow",
    }


def test_heartbeats_only_loops_still_in_progress(heartbeat, lambda_context):
    app = heartbeat
    beats = []
    app.sfn.send_task_heartbeat = lambda taskToken: beats.append(taskToken)
    responses = {"live": "InProgress", "finished": "Completed"}  # scan order is not guaranteed: answer by name
    app.a2i.describe_human_loop = lambda HumanLoopName: describe(HumanLoopName, responses[HumanLoopName])
    counts = app.lambda_handler({}, lambda_context)
    assert beats == ["tok-live"]
    assert counts == {"heartbeat": 1, "Completed": 1}
