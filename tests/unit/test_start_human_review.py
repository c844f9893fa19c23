"""start_human_review: token stored (never shown), A2I loop started with the template's InputContent."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber

from vidmod.detector.models import V7_TOP_LEVEL as V7_TOP

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
    s3.create_bucket(Bucket="media")
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="media", Key=KEY, Body=b"video v1")
    return load_function("start_human_review"), ddb


KEY = "in/<b>clip</b>.mp4"


def event(**video) -> dict:
    return {
        "taskToken": TOKEN,
        "humanLoopName": "vidmod-0123abcd",
        "timeoutSeconds": 3600,
        "heartbeatSeconds": 900,
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:vidmod:x",
        "video": {"uri": f"s3://media/{KEY}", "name": "<b>clip</b>.mp4", "bucket": "media", "key": KEY} | video,
        "videoMetadata": {"DurationMillis": 250000},
        "decision": {
            "ruleSetVersion": "r1",
            "reasons": [{"category": "Violence", "label": "Weapons", "band": "review", "maxConfidence": 80.0}],
            "uncoveredCategories": ["Alcohol"],
            "coveredCategories": [c for c in V7_TOP if c != "Alcohol"],
            "segmentsRef": {"bucket": "results", "key": "moderations/x/segments.json"},
        },
    }


def test_starts_the_loop_without_the_token_and_stores_the_token(env, lambda_context):
    app, ddb = env
    sent = {}
    with Stubber(app.a2i) as stub:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
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
        "versionId": "",
        "durationMillis": 250000,
    }
    assert content["uncoveredCategories"] == ["Alcohol"]
    assert content["coveredCategories"] == [c for c in V7_TOP if c != "Alcohol"]
    assert len(content["segments"]) == 200 and content["segmentsTruncated"] is True
    assert content["segmentsTotal"] == 250
    starts = [s["startMillis"] for s in content["segments"]]
    assert starts == sorted(starts)
    assert [s["index"] for s in content["segments"]] == list(range(200))
    # The 50 weakest (confidence 50-59, five segments each) are the ones left out, whatever their time.
    kept = sorted(s["maxConfidence"] for s in content["segments"])
    assert kept == sorted(s["maxConfidence"] for s in SEGMENTS)[50:] and kept[0] == 60
    item = ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": "vidmod-0123abcd"}})["Item"]
    assert item["taskToken"]["S"] == TOKEN and item["status"]["S"] == "PENDING"
    assert item["heartbeatSeconds"]["N"] == "900"


def test_a_retried_task_reuses_the_existing_loop_and_replaces_the_token(env, lambda_context):
    app, ddb = env
    with Stubber(app.a2i) as stub:
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
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_client_error("start_human_loop", "ValidationException", "bad flow definition", 400)
        with pytest.raises(ClientError, match="bad flow definition"):
            app.lambda_handler(event(), lambda_context)


def test_input_content_names_the_analysed_version_and_what_was_checked(env):
    import review_input

    video = {"uri": "s3://media/a.mp4", "name": "a.mp4", "versionId": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"}
    uncovered = ["Alcohol", "Gambling", "Violence"]
    decision = {
        "ruleSetVersion": "r1",
        "reasons": [],
        "uncoveredCategories": uncovered,
        "coveredCategories": [c for c in V7_TOP if c not in uncovered],
    }
    content = review_input.build_input_content(video, decision, [], None)
    assert content["video"]["versionId"] == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert content["coveredCategories"] == decision["coveredCategories"]
    assert content["uncoveredCategories"] == uncovered
    assert (content["segments"], content["segmentsTruncated"], content["segmentsTotal"]) == ([], False, 0)


def describe(status: str, **extra) -> dict:
    return {
        "CreationTime": "2026-11-24T10:00:00Z",
        "HumanLoopStatus": status,
        "HumanLoopName": "vidmod-0123abcd",
        "HumanLoopArn": "arn:loop",
        "FlowDefinitionArn": FLOW,
    } | extra


def test_a_loop_that_finished_before_the_retry_stored_its_token_is_replayed(env, lambda_context, monkeypatch):
    """Its status-change event went to the old token; complete_human_review must deliver it to the new one."""
    app, ddb = env
    published = []
    monkeypatch.setattr(app.events, "put_events", lambda Entries: published.extend(Entries) or {"FailedEntryCount": 0})
    with Stubber(app.a2i) as stub:
        stub.add_response("describe_human_loop", describe("Completed", HumanLoopOutput={"OutputS3Uri": "s3://o/p"}))
        result = app.lambda_handler(event() | {"taskToken": "second-token"}, lambda_context)
    assert result["status"] == "Completed"
    ((entry,),) = [published]
    assert (entry["Source"], entry["DetailType"]) == ("vidmod", "vidmod.humanLoopReplay")
    assert json.loads(entry["Detail"])["humanLoopName"] == "vidmod-0123abcd"
    item = ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": "vidmod-0123abcd"}})["Item"]
    assert (item["taskToken"]["S"], item["status"]["S"]) == ("second-token", "PENDING")  # stored before the replay


@pytest.mark.parametrize(
    ("code", "error"),
    [
        ("ThrottlingException", "A2IThrottled"),
        ("InternalServerException", "A2IThrottled"),
        ("ServiceQuotaExceededException", "A2IQuotaExceeded"),
    ],
)
def test_a2i_throttling_and_quota_errors_are_named_for_the_state_machine_to_retry(env, lambda_context, code, error):
    app, _ = env
    with Stubber(app.a2i) as stub:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_client_error("start_human_loop", code, "slow down", 400)
        with pytest.raises(Exception, match="slow down") as raised:
            app.lambda_handler(event(), lambda_context)
    assert type(raised.value).__name__ == error


def test_a_video_replaced_during_moderation_is_not_reviewed(env, lambda_context, aws):
    """The reviewer's URL shows the current version: reviewing it would judge content nobody analysed."""
    app, ddb = env
    s3 = aws.client("s3")
    analysed = s3.list_object_versions(Bucket="media", Prefix=KEY)["Versions"][0]["VersionId"]
    current = s3.put_object(Bucket="media", Key=KEY, Body=b"video v2")["VersionId"]
    with Stubber(app.a2i), pytest.raises(Exception, match=f"replaced by version {current}") as raised:
        app.lambda_handler(event(versionId=analysed), lambda_context)  # Stubber: any A2I call would fail
    assert type(raised.value).__name__ == "VideoReplaced"
    assert "the new version has its own execution" in str(raised.value)
    assert "Item" not in ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": "vidmod-0123abcd"}})


def test_the_analysed_version_still_current_is_reviewed(env, lambda_context, aws):
    app, _ = env
    current = aws.client("s3").head_object(Bucket="media", Key=KEY)["VersionId"]
    with Stubber(app.a2i) as stub:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_response("start_human_loop", {"HumanLoopArn": "arn:loop"})
        assert app.lambda_handler(event(versionId=current), lambda_context)["status"] == "InProgress"


def test_an_overwritten_object_in_an_unversioned_bucket_is_caught_by_its_etag(env, lambda_context):
    app, _ = env
    with Stubber(app.a2i), pytest.raises(Exception, match="overwritten during moderation") as raised:
        app.lambda_handler(event(versionId="", etag="0123456789abcdef0123456789abcdef"), lambda_context)
    assert type(raised.value).__name__ == "VideoReplaced"


def test_a_video_deleted_during_moderation_fails_with_a_named_error(env, lambda_context, aws):
    app, _ = env
    aws.client("s3").delete_object(Bucket="media", Key=KEY)  # a delete marker becomes the current version
    with Stubber(app.a2i), pytest.raises(Exception, match="deleted") as raised:
        app.lambda_handler(event(), lambda_context)
    assert type(raised.value).__name__ == "VideoNotFound"


def test_a_refused_read_is_a_permission_problem_not_a_deleted_video(env, lambda_context):
    """A 403 (missing s3:GetObject, a KMS key policy) must reach the operator as itself, not as "deleted"."""
    app, _ = env
    with Stubber(app.s3) as s3, Stubber(app.a2i), pytest.raises(Exception, match=r"\(403\).*HeadObject") as raised:
        s3.add_client_error("head_object", "403", "Forbidden", 403)
        app.lambda_handler(event(), lambda_context)
    assert type(raised.value).__name__ == "ClientError"


def test_a_loop_started_concurrently_by_another_attempt_is_reused(env, lambda_context):
    app, _ = env
    with Stubber(app.a2i) as stub:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_client_error("start_human_loop", "ConflictException", "loop exists", 409)
        stub.add_response("describe_human_loop", describe("InProgress"))
        assert app.lambda_handler(event(), lambda_context)["humanLoopArn"] == "arn:loop"
