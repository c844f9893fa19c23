"""submit: S3 upload events and the HTTP API start one named execution per video version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def env(aws, monkeypatch, load_function):
    s3, sfn = aws.client("s3"), aws.client("stepfunctions")
    s3.create_bucket(Bucket="media-bucket")
    s3.put_bucket_versioning(Bucket="media-bucket", VersioningConfiguration={"Status": "Enabled"})
    arn = sfn.create_state_machine(name="vidmod", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/sfn")[
        "stateMachineArn"
    ]
    aws.client("dynamodb").create_table(
        TableName="decisions",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "videoUri", "KeyType": "HASH"},
            {"AttributeName": "executionName", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "videoUri", "AttributeType": "S"},
            {"AttributeName": "executionName", "AttributeType": "S"},
        ],
    )
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("MEDIA_BUCKETS", "media-bucket")
    monkeypatch.setenv("DECISIONS_TABLE", "decisions")
    return load_function("submit"), s3, sfn, arn


def upload_event(key: str) -> dict:
    event = json.loads((FIXTURES / "s3_object_created.json").read_text())
    event["detail"]["object"]["key"] = key
    return event


def api_event(method: str, path: str, body: object = None) -> dict:
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {"method": method, "path": path, "sourceIp": "1.2.3.4"},
            "requestId": "req-9",
            "stage": "$default",
            "authorizer": {"iam": {"userArn": "arn:aws:iam::123456789012:user/ops"}},
        },
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
    }


def test_duplicate_upload_events_start_exactly_one_execution(env, lambda_context):
    app, s3, sfn, arn = env
    s3.put_object(Bucket="media-bucket", Key="uploads/my holiday clip.mp4", Body=b"video")
    first = app.lambda_handler(upload_event("uploads/my+holiday+clip.mp4"), lambda_context)
    second = app.lambda_handler(upload_event("uploads/my+holiday+clip.mp4"), lambda_context)
    assert first["duplicate"] is False and second["duplicate"] is True
    assert first["executionName"] == second["executionName"]
    assert len(first["executionName"]) <= 80
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert len(executions) == 1
    started = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started["video"]["key"] == "uploads/my holiday clip.mp4"  # URL-decoded from the event
    assert started["trigger"]["type"] == "s3-upload" and started["trigger"]["id"]


def test_a_new_version_is_a_new_execution(env, lambda_context):
    app, s3, sfn, arn = env
    s3.put_object(Bucket="media-bucket", Key="a.mp4", Body=b"1")
    app.lambda_handler(upload_event("a.mp4"), lambda_context)
    s3.put_object(Bucket="media-bucket", Key="a.mp4", Body=b"2")
    app.lambda_handler(upload_event("a.mp4"), lambda_context)
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_upload_event_for_a_deleted_object_starts_nothing(env, lambda_context):
    app, _, sfn, arn = env
    assert app.lambda_handler(upload_event("gone.mp4"), lambda_context) == {"ignored": "object missing"}
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_api_post_starts_and_get_reports_status(env, lambda_context):
    app, s3, _, _ = env
    s3.put_object(Bucket="media-bucket", Key="v.mp4", Body=b"1")
    response = app.lambda_handler(
        api_event("POST", "/moderations", {"video": "s3://media-bucket/v.mp4"}), lambda_context
    )
    assert response["statusCode"] == 202
    created = json.loads(response["body"])
    again = app.lambda_handler(api_event("POST", "/moderations", {"video": "s3://media-bucket/v.mp4"}), lambda_context)
    assert again["statusCode"] == 200 and json.loads(again["body"])["duplicate"] is True
    status = app.lambda_handler(api_event("GET", f"/moderations/{created['executionName']}"), lambda_context)
    body = json.loads(status["body"])
    assert status["statusCode"] == 200 and body["status"] in {"RUNNING", "SUCCEEDED"}
    assert body["video"]["key"] == "v.mp4" and body["decision"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"video": "https://example.com/v.mp4"}, "S3 URI"),
        ({"video": "s3://other-bucket/v.mp4"}, "not a media bucket"),
        ({"video": "s3://media-bucket/missing.mp4"}, "does not exist"),
        ({"video": "s3://media-bucket/v.mp4", "versionId": 7}, "versionId"),
    ],
)
def test_api_bad_requests_get_400_with_a_specific_message(env, lambda_context, body, message):
    app, _, _, _ = env
    response = app.lambda_handler(api_event("POST", "/moderations", body), lambda_context)
    assert response["statusCode"] == 400
    assert message.lower() in response["body"].lower()


def test_api_unknown_moderation_is_404(env, lambda_context):
    app, _, _, _ = env
    assert app.lambda_handler(api_event("GET", "/moderations/nope"), lambda_context)["statusCode"] == 404
