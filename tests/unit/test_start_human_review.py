"""start_human_review: token stored (never shown), the analysed version copied for the reviewer, A2I loop started
with the template's InputContent pointing to that copy."""

from __future__ import annotations

import json
import sys

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
    monkeypatch.setenv("RESULTS_BUCKET", "results")
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
COPY_KEY = "review-media/vidmod-0123abcd/b>.mp4"  # one per loop, ending with the key's last segment


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
        "uri": f"s3://results/{COPY_KEY}",
        "sourceUri": "s3://media/in/<b>clip</b>.mp4",
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
    content = review_input.build_input_content(video, "s3://results/review-media/l/a.mp4", decision, [], None)
    assert content["video"]["versionId"] == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert (content["video"]["uri"], content["video"]["sourceUri"]) == (
        "s3://results/review-media/l/a.mp4",
        video["uri"],
    )
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
    with Stubber(app.a2i) as stub, pytest.raises(Exception, match=f"replaced by version {current}") as raised:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        app.lambda_handler(event(versionId=analysed), lambda_context)  # Stubber: starting a loop would fail
    assert type(raised.value).__name__ == "VideoReplaced"
    assert "Contents" not in s3.list_objects_v2(Bucket="results", Prefix="review-media/")  # nothing copied
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
    with Stubber(app.a2i) as stub, pytest.raises(Exception, match="overwritten during moderation") as raised:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        app.lambda_handler(event(versionId="", etag="0123456789abcdef0123456789abcdef"), lambda_context)
    assert type(raised.value).__name__ == "VideoReplaced"


def test_a_video_deleted_during_moderation_fails_with_a_named_error(env, lambda_context, aws):
    app, _ = env
    aws.client("s3").delete_object(Bucket="media", Key=KEY)  # a delete marker becomes the current version
    with Stubber(app.a2i) as stub, pytest.raises(Exception, match="deleted") as raised:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
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


# ---------------------------------------------------------------- the reviewer's copy of the analysed version


def started_content(app, lambda_context, video_fields: dict, **event_fields) -> dict:
    """Run the task once with A2I answering "no loop yet" then "started"; the InputContent it sent."""
    sent = {}
    with Stubber(app.a2i) as stub:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_response("start_human_loop", {"HumanLoopArn": "arn:loop"})
        original = app.a2i.start_human_loop
        app.a2i.start_human_loop = lambda **kwargs: sent.update(kwargs) or original(**kwargs)
        app.lambda_handler(event(**video_fields) | event_fields, lambda_context)
    return json.loads(sent["HumanLoopInput"]["InputContent"])


def replace_right_after_the_check(monkeypatch, change):
    """An upload (or delete) lands between the check that the analysed version is current and the copy."""
    import review_start

    real = review_start.check_still_analysed_version

    def check_then_change(s3, video):
        real(s3, video)
        change()

    monkeypatch.setattr(review_start, "check_still_analysed_version", check_then_change)


def read(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_the_reviewer_watches_the_analysed_version_even_when_it_is_replaced_after_the_check(
    env, lambda_context, aws, monkeypatch
):
    app, _ = env
    s3 = aws.client("s3")
    analysed = s3.head_object(Bucket="media", Key=KEY)["VersionId"]
    replace_right_after_the_check(monkeypatch, lambda: s3.put_object(Bucket="media", Key=KEY, Body=b"video v2"))
    content = started_content(app, lambda_context, {"versionId": analysed})
    assert read(s3, "media", KEY) == b"video v2"  # the key now holds other content
    assert content["video"]["uri"] == f"s3://results/{COPY_KEY}"  # what grant_read_access presigns
    assert read(s3, "results", COPY_KEY) == b"video v1"  # ... is exactly what was analysed
    assert (content["video"]["sourceUri"], content["video"]["versionId"]) == (f"s3://media/{KEY}", analysed)
    copy = s3.head_object(Bucket="results", Key=COPY_KEY)
    assert copy["Metadata"] == {"vidmod-source": f"version:{analysed}"}
    assert copy.get("ServerSideEncryption") in (None, "AES256")  # the bucket's default, nothing chosen here
    assert s3.get_object_tagging(Bucket="results", Key=COPY_KEY)["TagSet"] == []  # the source's tags stay there


def test_a_retried_task_keeps_the_copy_it_made_and_sends_the_same_input(env, lambda_context, aws, monkeypatch):
    """A2I throttled the first attempt after the copy was made: the retry neither copies again nor changes the
    InputContent (A2I refuses a second start of the loop name with different input)."""
    app, _ = env
    s3 = aws.client("s3")
    analysed = s3.head_object(Bucket="media", Key=KEY)["VersionId"]
    copies = []
    real_copy = app.s3.copy
    monkeypatch.setattr(app.s3, "copy", lambda **kwargs: copies.append(kwargs) or real_copy(**kwargs))
    with Stubber(app.a2i) as stub, pytest.raises(Exception, match="slow down") as raised:
        stub.add_client_error("describe_human_loop", "ResourceNotFoundException", "no such loop", 404)
        stub.add_client_error("start_human_loop", "ThrottlingException", "slow down", 400)
        app.lambda_handler(event(versionId=analysed), lambda_context)
    assert type(raised.value).__name__ == "A2IThrottled" and len(copies) == 1
    first = s3.head_object(Bucket="results", Key=COPY_KEY)
    content = started_content(app, lambda_context, {"versionId": analysed}, taskToken="second-token")
    assert len(copies) == 1 and content["video"]["uri"] == f"s3://results/{COPY_KEY}"
    assert s3.head_object(Bucket="results", Key=COPY_KEY)["ETag"] == first["ETag"]


def test_a_retry_after_the_review_started_goes_on_although_the_video_was_replaced(env, lambda_context, aws):
    """The loop exists and its reviewer watches the copy: the replacement no longer matters to this review."""
    app, _ = env
    s3 = aws.client("s3")
    analysed = s3.head_object(Bucket="media", Key=KEY)["VersionId"]
    started_content(app, lambda_context, {"versionId": analysed})
    s3.put_object(Bucket="media", Key=KEY, Body=b"video v2")
    with Stubber(app.a2i) as stub:
        stub.add_response("describe_human_loop", describe("InProgress"))  # the check: the review has started
        stub.add_response("describe_human_loop", describe("InProgress"))  # start_loop: reuse it
        result = app.lambda_handler(event(versionId=analysed) | {"taskToken": "second-token"}, lambda_context)
    assert result["status"] == "InProgress"
    assert read(s3, "results", COPY_KEY) == b"video v1"


def test_an_unversioned_video_overwritten_after_the_check_is_not_copied(env, lambda_context, aws, monkeypatch):
    app, _ = env
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="plain")  # no versioning: the ETag recorded at submission pins the content
    etag = s3.put_object(Bucket="plain", Key="a.mp4", Body=b"analysed bytes")["ETag"].strip('"')
    replace_right_after_the_check(monkeypatch, lambda: s3.put_object(Bucket="plain", Key="a.mp4", Body=b"other"))
    unversioned = {"uri": "s3://plain/a.mp4", "name": "a.mp4", "bucket": "plain", "key": "a.mp4", "etag": etag}
    with Stubber(app.a2i), pytest.raises(Exception, match="overwritten during moderation") as raised:
        app.lambda_handler(event() | {"video": unversioned}, lambda_context)  # no A2I call: no loop starts
    assert type(raised.value).__name__ == "VideoReplaced"
    assert "Contents" not in s3.list_objects_v2(Bucket="results", Prefix="review-media/")


def test_an_unversioned_video_is_copied_while_it_is_still_the_analysed_content(env, lambda_context, aws):
    app, _ = env
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="plain")
    etag = s3.put_object(Bucket="plain", Key="a.mp4", Body=b"analysed bytes", ContentType="video/mp4")["ETag"]
    etag = etag.strip('"')  # as validate_input records it
    unversioned = {"uri": "s3://plain/a.mp4", "name": "a.mp4", "bucket": "plain", "key": "a.mp4", "etag": etag}
    content = started_content(app, lambda_context, {}, video=unversioned)
    assert content["video"] | {"durationMillis": None} == {
        "uri": "s3://results/review-media/vidmod-0123abcd/a.mp4",
        "sourceUri": "s3://plain/a.mp4",
        "name": "a.mp4",
        "versionId": "",
        "durationMillis": None,
    }
    copy = s3.get_object(Bucket="results", Key="review-media/vidmod-0123abcd/a.mp4")
    assert copy["Body"].read() == b"analysed bytes" and copy["ContentType"] == "video/mp4"


def test_an_analysed_version_deleted_after_the_check_fails_as_deleted(env, lambda_context, aws, monkeypatch):
    app, _ = env
    s3 = aws.client("s3")
    analysed = s3.head_object(Bucket="media", Key=KEY)["VersionId"]
    replace_right_after_the_check(monkeypatch, lambda: s3.delete_object(Bucket="media", Key=KEY, VersionId=analysed))
    with Stubber(app.a2i), pytest.raises(Exception, match="deleted during moderation") as raised:
        app.lambda_handler(event(versionId=analysed), lambda_context)
    assert type(raised.value).__name__ == "VideoNotFound"


def test_a_large_video_is_copied_in_parts_of_exactly_the_analysed_version(env, lambda_context, aws, monkeypatch):
    """Above the threshold (and necessarily above CopyObject's 5 GB), UploadPartCopy: scaled down to 5 MiB parts."""
    from boto3.s3.transfer import TransferConfig

    app, _ = env
    s3 = aws.client("s3")
    mib = 1024 * 1024
    big = bytes(range(256)) * (11 * mib // 256)  # three parts
    analysed = s3.put_object(Bucket="media", Key=KEY, Body=big, ContentType="video/mp4")["VersionId"]
    monkeypatch.setattr(
        sys.modules["review_media"],
        "COPY_CONFIG",
        TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib),
    )
    parts = []
    real_part = app.s3.upload_part_copy
    monkeypatch.setattr(app.s3, "upload_part_copy", lambda **kwargs: parts.append(kwargs) or real_part(**kwargs))
    replace_right_after_the_check(monkeypatch, lambda: s3.put_object(Bucket="media", Key=KEY, Body=b"video v3"))
    content = started_content(app, lambda_context, {"versionId": analysed})
    assert len(parts) == 3 and {p["CopySource"]["VersionId"] for p in parts} == {analysed}
    assert read(s3, "results", COPY_KEY) == big
    copy = s3.head_object(Bucket="results", Key=COPY_KEY)
    assert copy["ContentType"] == "video/mp4" and copy["Metadata"] == {"vidmod-source": f"version:{analysed}"}
    assert content["video"]["uri"] == f"s3://results/{COPY_KEY}"
