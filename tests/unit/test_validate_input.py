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
    assert job["poll"] == {"waitSeconds": 9, "maxWaitSeconds": 300, "maxPolls": 120, "count": 0}


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
