"""validate_input: the first state's checks and the job plan (tokens, names, poll budget)."""

from __future__ import annotations

import re

import pytest

EXECUTION = {"name": "clip-abc", "id": "arn:aws:states:us-east-1:123456789012:execution:vidmod:clip-abc"}


@pytest.fixture
def app(aws, monkeypatch, load_function):
    monkeypatch.setenv("RESULTS_BUCKET", "results")
    monkeypatch.setenv("MAX_VIDEO_BYTES", "1000")
    monkeypatch.setenv("POLL_MIN_SECONDS", "5")
    monkeypatch.setenv("POLL_BYTES_PER_SECOND", "100")
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="media")
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    module = load_function("validate_input")
    return module, s3


def run(app, lambda_context, video):
    module, _ = app
    return module.lambda_handler({"input": {"video": video}, "execution": EXECUTION}, lambda_context)


def test_plan_pins_the_version_and_derives_valid_idempotent_names(app, lambda_context):
    _, s3 = app
    version = s3.put_object(Bucket="media", Key="in/clip.MP4", Body=b"x" * 900)["VersionId"]
    job = run(app, lambda_context, {"bucket": "media", "key": "in/clip.MP4"})
    assert job["video"]["versionId"] == version
    assert job["video"]["s3Object"] == {"Bucket": "media", "Name": "in/clip.MP4", "Version": version}
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", job["clientRequestToken"])
    assert re.fullmatch(r"[a-z0-9](-*[a-z0-9])*", job["humanLoopName"]) and len(job["humanLoopName"]) <= 63
    assert job == run(app, lambda_context, {"bucket": "media", "key": "in/clip.MP4", "versionId": version})
    assert job["results"] == {"bucket": "results", "prefix": "moderations/clip-abc/"}
    # 900 bytes at 100 B/s → first wait 9 s (between the 5 s floor and the 300 s cap)
    assert job["poll"] == {"waitSeconds": 9, "maxWaitSeconds": 300, "maxPolls": 120, "count": 1}


def test_a_new_version_of_the_same_key_gets_a_new_rekognition_token(app, lambda_context):
    _, s3 = app
    s3.put_object(Bucket="media", Key="a.mp4", Body=b"1")
    first = run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})
    s3.put_object(Bucket="media", Key="a.mp4", Body=b"2")
    assert (
        run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})["clientRequestToken"]
        != first["clientRequestToken"]
    )


@pytest.mark.parametrize(
    ("video", "body", "error", "message"),
    [
        (
            {"bucket": "media", "key": "notes.txt"},
            b"hello",
            "UnsupportedVideoType",
            "'.txt' is not a supported video type",
        ),
        ({"bucket": "media", "key": "missing.mp4"}, None, "VideoNotFound", "does not exist"),
        ({"bucket": "media", "key": "big.mp4"}, b"x" * 1001, "VideoTooLarge", "1001 bytes; the limit is 1000"),
        ({"bucket": "media", "key": "empty.mov"}, b"", "EmptyVideo", "empty"),
        ({"bucket": "", "key": "a.mp4"}, None, "InvalidInput", "non-empty strings"),
        ("s3://media/a.mp4", None, "InvalidInput", "must be"),
    ],
)
def test_bad_input_fails_with_a_named_error(app, lambda_context, video, body, error, message):
    _, s3 = app
    if body is not None:
        s3.put_object(Bucket="media", Key=video["key"], Body=body)
    with pytest.raises(Exception, match=message) as raised:
        run(app, lambda_context, video)
    assert type(raised.value).__name__ == error


def test_a_forbidden_head_object_is_a_named_error_not_a_crash(app, lambda_context, monkeypatch):
    """Without s3:ListBucket S3 answers 403 for a missing key; an unreadable object gets the same answer."""
    from botocore.exceptions import ClientError

    module, _ = app

    def forbidden(**kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadObject")

    monkeypatch.setattr(module.s3, "head_object", forbidden)
    with pytest.raises(Exception, match="does not exist or is not readable by this function") as raised:
        run(app, lambda_context, {"bucket": "media", "key": "secret.mp4"})
    assert type(raised.value).__name__ == "VideoNotFound"


def test_an_execution_started_without_a_trigger_gets_a_manual_one(app, lambda_context):
    module, s3 = app
    s3.put_object(Bucket="media", Key="a.mp4", Body=b"1")
    execution = EXECUTION | {"startTime": "2026-11-24T10:00:00.000Z"}
    video = {"bucket": "media", "key": "a.mp4"}
    job = module.lambda_handler({"input": {"video": video}, "execution": execution}, lambda_context)
    assert job["trigger"] == {
        "type": "manual",
        "id": "",
        "principal": "unknown",
        "receivedAt": "2026-11-24T10:00:00.000Z",
    }
    given = {"type": "api", "id": "req-1", "principal": "arn:aws:iam::1:user/ops", "receivedAt": "2026-11-24T09:59:59Z"}
    job = module.lambda_handler({"input": {"video": video, "trigger": given}, "execution": execution}, lambda_context)
    assert job["trigger"] == given


def test_the_heartbeat_limit_is_strictly_below_the_review_timeout(app, lambda_context, monkeypatch):
    _, s3 = app
    s3.put_object(Bucket="media", Key="a.mp4", Body=b"1")
    monkeypatch.setenv("REVIEW_TIMEOUT_SECONDS", "3600")
    monkeypatch.setenv("REVIEW_HEARTBEAT_SECONDS", "3600")
    assert run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})["review"] == {
        "timeoutSeconds": 3600,
        "heartbeatSeconds": 3599,
    }


def test_min_confidence_is_part_of_the_rekognition_token(app, lambda_context, monkeypatch):
    """Re-analysing a version with another MinConfidence must not reuse the token (IdempotentParameterMismatch)."""
    _, s3 = app
    s3.put_object(Bucket="media", Key="a.mp4", Body=b"1")
    first = run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})["clientRequestToken"]
    monkeypatch.setenv("MIN_CONFIDENCE", "70")
    assert run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})["clientRequestToken"] != first


def test_label_pages_are_budgeted_from_the_history_limit(app, lambda_context, monkeypatch):
    _, s3 = app
    import job_plan

    s3.put_object(Bucket="media", Key="a.mp4", Body=b"1")
    pages = run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})["labelPages"]
    # 25,000 events - 600 reserved - 120 polls x 17 = 22,360 for pages of 12 events each
    assert pages == {"pageSize": 40, "maxPages": 1863}
    assert job_plan.HISTORY_EVENT_LIMIT >= 1863 * 12 + 120 * 17 + 600
    monkeypatch.setenv("POLL_MAX_ATTEMPTS", "1500")
    with pytest.raises(Exception, match="leaves no history events for label pages") as raised:
        run(app, lambda_context, {"bucket": "media", "key": "a.mp4"})
    assert type(raised.value).__name__ == "InvalidConfiguration"
