"""start_human_review: token stored (never shown), A2I loop started with the template's InputContent."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber

TABLE = "review-tasks"
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/vidmod-review"
TOKEN = "AAAAKgAAAAIAAAAAAAAAAc+secret/token=="
SEGMENTS = [
    {
        "name": f"Label {i}",
        "parentName": "Violence",
        "category": "Violence",
        "taxonomyLevel": 2,
        "startMillis": i * 1000,
        "endMillis": i * 1000 + 500,
        "maxConfidence": 50 + (i % 50),
        "detections": 1,
    }
    for i in range(250)
]


@pytest.fixture
def env(aws, monkeypatch, load_function):
    monkeypatch.setenv("REVIEW_TASKS_TABLE", TABLE)
    monkeypatch.setenv("FLOW_DEFINITION_ARN", FLOW)
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "humanLoopName", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "humanLoopName", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.create_bucket(Bucket="results")
    s3.put_object(Bucket="results", Key="moderations/x/segments.json", Body=json.dumps({"segments": SEGMENTS}))
    return load_function("start_human_review"), ddb


def event() -> dict:
    return {
        "taskToken": TOKEN,
        "humanLoopName": "vidmod-0123abcd",
        "timeoutSeconds": 3600,
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:vidmod:x",
        "video": {"uri": "s3://media/in/<b>clip</b>.mp4", "name": "<b>clip</b>.mp4"},
        "videoMetadata": {"DurationMillis": 250000},
        "decision": {
            "ruleSetVersion": "r1",
            "reasons": [{"category": "Violence", "label": "Weapons", "band": "review", "maxConfidence": 80.0}],
            "uncoveredCategories": ["Alcohol"],
            "segmentsRef": {"bucket": "results", "key": "moderations/x/segments.json"},
        },
    }


def test_starts_the_loop_without_the_token_and_stores_the_token(env, lambda_context):
    app, ddb = env
    sent = {}
    with Stubber(app.a2i) as stub:
        stub.add_response(
            "start_human_loop",
            {"HumanLoopArn": "arn:loop"},
            {"HumanLoopName": "vidmod-0123abcd", "FlowDefinitionArn": FLOW, "HumanLoopInput": ANY},
        )
        original = app.a2i.start_human_loop

        def capture(**kwargs):
            sent.update(kwargs)
            return original(**kwargs)

        app.a2i.start_human_loop = capture
        assert app.lambda_handler(event(), lambda_context)["humanLoopArn"] == "arn:loop"
    content_text = sent["HumanLoopInput"]["InputContent"]
    assert TOKEN not in content_text and "taskToken" not in content_text
    content = json.loads(content_text)
    assert content["video"] == {
        "uri": "s3://media/in/<b>clip</b>.mp4",
        "name": "<b>clip</b>.mp4",
        "durationMillis": 250000,
    }
    assert content["uncoveredCategories"] == ["Alcohol"]
    assert len(content["segments"]) == 200 and content["segmentsTruncated"] is True
    starts = [s["startMillis"] for s in content["segments"]]
    assert starts == sorted(starts)
    assert [s["index"] for s in content["segments"]] == list(range(200))
    assert min(s["maxConfidence"] for s in content["segments"]) >= 50 + 0  # strongest kept
    item = ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": "vidmod-0123abcd"}})["Item"]
    assert item["taskToken"]["S"] == TOKEN and item["status"]["S"] == "PENDING"


def test_a_retried_task_reuses_the_existing_loop_and_replaces_the_token(env, lambda_context):
    app, ddb = env
    with Stubber(app.a2i) as stub:
        stub.add_client_error("start_human_loop", "ConflictException", "loop exists", 409)
        stub.add_response(
            "describe_human_loop",
            {
                "CreationTime": "2026-11-24T10:00:00Z",
                "HumanLoopStatus": "InProgress",
                "HumanLoopName": "vidmod-0123abcd",
                "HumanLoopArn": "arn:loop",
                "FlowDefinitionArn": FLOW,
            },
        )
        retried = event() | {"taskToken": "second-token"}
        assert app.lambda_handler(retried, lambda_context)["humanLoopArn"] == "arn:loop"
    item = ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": "vidmod-0123abcd"}})["Item"]
    assert item["taskToken"]["S"] == "second-token"


def test_a2i_validation_errors_surface_as_task_failures(env, lambda_context):
    from botocore.exceptions import ClientError

    app, _ = env
    with Stubber(app.a2i) as stub:
        stub.add_client_error("start_human_loop", "ValidationException", "bad flow definition", 400)
        with pytest.raises(ClientError, match="bad flow definition"):
            app.lambda_handler(event(), lambda_context)
