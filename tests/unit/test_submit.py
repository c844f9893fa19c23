"""submit: S3 upload events and the HTTP API start one named execution per video version."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
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


def upload_event(key: str, version_id: str) -> dict:
    """The media bucket is versioned: S3's event names the version it created."""
    event = json.loads((FIXTURES / "s3_object_created.json").read_text())
    event["detail"]["object"]["key"] = key
    event["detail"]["object"]["version-id"] = version_id
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
    version = s3.put_object(Bucket="media-bucket", Key="uploads/my holiday clip.mp4", Body=b"video")["VersionId"]
    first = app.lambda_handler(upload_event("uploads/my+holiday+clip.mp4", version), lambda_context)
    second = app.lambda_handler(upload_event("uploads/my+holiday+clip.mp4", version), lambda_context)
    assert first["duplicate"] is False and second["duplicate"] is True
    assert first["executionName"] == second["executionName"]
    assert len(first["executionName"]) <= 80
    executions = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert len(executions) == 1
    started = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started["video"]["key"] == "uploads/my holiday clip.mp4"  # URL-decoded from the event
    assert started["trigger"]["type"] == "s3-upload" and started["trigger"]["id"]
    assert started["video"]["versionId"] == version


class BothLookFirst:
    """The real (moto) Step Functions client, except that each look-up waits until both racing Lambdas have
    made theirs: both find no execution, both start, and one of them meets ExecutionAlreadyExists."""

    def __init__(self, client, racers: int):
        self._client, self._barrier = client, threading.Barrier(racers, timeout=30)
        self._waiting = threading.Semaphore(racers)  # only the racers' first look-ups wait for each other
        self.started: list[str] = []

    def describe_execution(self, **kwargs):
        try:
            return self._client.describe_execution(**kwargs)
        finally:
            if self._waiting.acquire(blocking=False):
                self._barrier.wait()

    def start_execution(self, **kwargs):
        try:
            return self._client.start_execution(**kwargs)
        finally:
            self.started.append(kwargs["name"])

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_two_lambdas_racing_on_one_upload_start_one_execution_and_both_answer(env, lambda_context, monkeypatch):
    """An S3 event and an API request for the same version at the same moment: the loser's StartExecution is
    refused (ExecutionAlreadyExists) and it reports the winner's execution as a duplicate instead of failing."""
    app, s3, sfn, arn = env
    version = s3.put_object(Bucket="media-bucket", Key="race.mp4", Body=b"video")["VersionId"]
    racing = BothLookFirst(sfn, racers=2)
    monkeypatch.setattr(app, "sfn", racing)
    requests = [
        upload_event("race.mp4", version),
        api_event("POST", "/moderations", {"video": "s3://media-bucket/race.mp4", "versionId": version}),
    ]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda request: app.lambda_handler(request, lambda_context), requests))
    upload, api = results[0], json.loads(results[1]["body"])
    assert len(racing.started) == 2  # both really tried to start it
    assert sorted([upload["duplicate"], api["duplicate"]]) == [False, True]
    assert upload["executionName"] == api["executionName"]
    assert results[1]["statusCode"] in (200, 202)
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_a_new_version_is_a_new_execution_pinned_to_the_version_the_event_names(env, lambda_context):
    app, s3, sfn, arn = env
    first = s3.put_object(Bucket="media-bucket", Key="a.mp4", Body=b"1")["VersionId"]
    second = s3.put_object(Bucket="media-bucket", Key="a.mp4", Body=b"2")["VersionId"]
    # The first upload's event arrives after the second upload: it still moderates the first version.
    started = [app.lambda_handler(upload_event("a.mp4", v), lambda_context) for v in (first, second)]
    assert [s["video"]["versionId"] for s in started] == [first, second]
    assert started[0]["executionName"] != started[1]["executionName"]
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 2


def test_upload_event_for_a_deleted_object_starts_nothing(env, lambda_context):
    app, _, sfn, arn = env
    event = upload_event("gone.mp4", "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY")
    assert app.lambda_handler(event, lambda_context) == {"ignored": "object missing"}
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


def forbid_head_object(app, monkeypatch):
    from botocore.exceptions import ClientError

    def forbidden(**kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    monkeypatch.setattr(app.s3, "head_object", forbidden)


def test_api_names_an_unreadable_or_missing_object_instead_of_failing_with_500(env, lambda_context, monkeypatch):
    """S3 answers 403, not 404, for a missing key when the caller lacks s3:ListBucket."""
    app, _, _, _ = env
    forbid_head_object(app, monkeypatch)
    response = app.lambda_handler(
        api_event("POST", "/moderations", {"video": "s3://media-bucket/v.mp4"}), lambda_context
    )
    assert response["statusCode"] == 400
    assert "does not exist or is not readable by this function" in response["body"]


def test_upload_of_an_unreadable_object_fails_so_the_event_is_kept(env, lambda_context, monkeypatch):
    app, _, sfn, arn = env
    forbid_head_object(app, monkeypatch)
    with pytest.raises(Exception, match="not readable") as raised:
        app.lambda_handler(upload_event("a.mp4", "v1"), lambda_context)
    assert type(raised.value).__name__ == "VideoNotReadable"  # retried, then the OnFailure queue keeps it
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []


def test_credentials_in_api_requests_are_never_logged(env, lambda_context, monkeypatch):
    app, s3, _, _ = env
    s3.put_object(Bucket="media-bucket", Key="v.mp4", Body=b"1")
    records = []
    monkeypatch.setattr(app.logger, "info", lambda message, **kw: records.append((message, kw)))
    event = api_event("POST", "/moderations", {"video": "s3://media-bucket/v.mp4"})
    event["headers"] |= {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261124/us-east-1/execute-api/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024",
        "X-Amz-Security-Token": "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN",
        "x-amz-date": "20261124T100000Z",
    }
    event["requestContext"]["authorizer"]["iam"]["accessKey"] = "ASIAEXAMPLEKEY"
    assert app.lambda_handler(event, lambda_context)["statusCode"] == 202
    logged = json.dumps(records, default=str)
    assert '"x-amz-date": "20261124T100000Z"' in logged  # the event is logged...
    for secret in ("Signature=fe5f80f7", "AKIAEXAMPLE", "EXAMPLESESSIONTOKEN", "ASIAEXAMPLEKEY"):
        assert secret not in logged  # ...without the caller's credentials
