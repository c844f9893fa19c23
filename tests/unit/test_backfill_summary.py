"""The backfill summary is read from a Distributed Map's ResultWriter files, in the format AWS writes them."""

from __future__ import annotations

import json

import pytest

from vidmod.cli.backfill import BackfillError, Summary, parse_target, result_outcomes


def outcome(key: str, kind: str, reason: str = "") -> dict:
    return {"key": key, "outcome": kind, "reason": reason, "executionName": ""}


def test_the_summary_counts_every_result_file_of_the_manifest(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="results")
    run = "backfills/0f1e/"
    first = [outcome("a.mp4", "submitted"), outcome("b.txt", "not-a-video", ".txt is not one of .mp4")]
    second = [outcome("c.mp4", "refused", "empty object (0 bytes)"), outcome("d.mp4", "already-decided", "SUCCEEDED")]
    failed = [{"Input": json.dumps({"key": "e.mp4"}), "Error": "States.Timeout", "Cause": "item timed out"}]
    files = {
        f"{run}SUCCEEDED_0.json": [{"Output": json.dumps(o), "Status": "SUCCEEDED"} for o in first],
        f"{run}SUCCEEDED_1.json": [{"Output": json.dumps(o), "Status": "SUCCEEDED"} for o in second],
        f"{run}FAILED_0.json": failed,
    }
    for key, results in files.items():
        s3.put_object(Bucket="results", Key=key, Body=json.dumps(results).encode())
    manifest = {
        "DestinationBucket": "results",
        "MapRunArn": "arn:aws:states:us-east-1:1:mapRun:backfill/x:0f1e",
        "ResultFiles": {
            "FAILED": [{"Key": f"{run}FAILED_0.json", "Size": 1}],
            "PENDING": [],
            "SUCCEEDED": [{"Key": f"{run}SUCCEEDED_0.json", "Size": 1}, {"Key": f"{run}SUCCEEDED_1.json", "Size": 1}],
        },
    }
    s3.put_object(Bucket="results", Key=f"{run}manifest.json", Body=json.dumps(manifest).encode())

    summary = Summary()
    for item in result_outcomes(s3, {"ResultWriterDetails": {"Bucket": "results", "Key": f"{run}manifest.json"}}):
        summary.add(item)
    assert dict(summary.counts) == {
        "submitted": 1,
        "not-a-video": 1,
        "refused": 1,
        "already-decided": 1,
        "failed": 1,
    }
    assert summary.reasons["failed"] == {"States.Timeout: item timed out": 1}
    assert summary.examples["failed"] == ["e.mp4"]
    lines = summary.lines("s3://media/library/")
    assert lines[0] == "5 object(s) under s3://media/library/, 4 of them video(s)"
    assert "      1 × empty object (0 bytes)" in lines and "      e.g. c.mp4" in lines


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://media/library/", ("media", "library/")), ("s3://media", ("media", "")), ("s3://media/", ("media", ""))],
)
def test_a_target_is_a_bucket_and_an_optional_prefix(uri, expected):
    assert parse_target(uri) == expected


@pytest.mark.parametrize("uri", ["media/library", "s3://", "s3://UPPER/x", "https://media.s3.amazonaws.com/x"])
def test_anything_else_is_refused_with_the_expected_form(uri):
    with pytest.raises(BackfillError, match="is not an S3 location like s3://bucket/prefix/"):
        parse_target(uri)
