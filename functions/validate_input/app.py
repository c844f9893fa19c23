"""First state: check the video exists and is acceptable, and plan the job (tokens, names, poll budget)."""

from __future__ import annotations

import os

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from job_plan import (
    Settings,
    VideoNotFound,
    VideoRef,
    check_extension,
    check_size,
    normalize_trigger,
    plan_job,
)

logger = Logger(service="vidmod-validate-input")
s3 = boto3.client("s3")


def head(video: VideoRef) -> dict:
    kwargs = {"Bucket": video.bucket, "Key": video.key}
    if video.version_id:
        kwargs["VersionId"] = video.version_id
    version = f" version {video.version_id}" if video.version_id else ""
    try:
        return s3.head_object(**kwargs)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in {"404", "NoSuchKey", "NotFound", "NoSuchVersion", "400", "NoSuchBucket"}:
            raise VideoNotFound(f"s3://{video.bucket}/{video.key}{version} does not exist") from error
        if code in {"403", "AccessDenied", "Forbidden"}:
            # S3 answers 403 for a missing key when the caller lacks s3:ListBucket, and for an unreadable one.
            raise VideoNotFound(
                f"s3://{video.bucket}/{video.key}{version} does not exist or is not readable by this function "
                "(HeadObject: 403 Forbidden)"
            ) from error
        raise


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context) -> dict:
    settings = Settings.from_env(dict(os.environ))
    video = VideoRef.from_input(event.get("input"))
    check_extension(video, settings)
    meta = head(video)
    pinned = meta.get("VersionId") or ""
    if not video.version_id and pinned not in {"", "null"}:
        video = VideoRef(video.bucket, video.key, pinned)  # analyse exactly the version that exists now
    size = int(meta["ContentLength"])
    check_size(video, size, settings)
    execution = event["execution"]
    trigger = normalize_trigger((event.get("input") or {}).get("trigger"), execution.get("startTime", ""))
    etag = meta.get("ETag", "").strip('"')
    return plan_job(video, size, etag, execution["name"], execution["id"], settings, trigger)
