"""Callback task: remember the task token, then start the A2I human loop.

Called by the state machine with ``.waitForTaskToken``; the execution sleeps until
``complete_human_review`` sends the reviewer's verdict. The token is stored in DynamoDB keyed by the
(deterministic) loop name, so a retried task replaces the token and re-uses the same loop.
"""

from __future__ import annotations

import json
import os
import time

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from review_input import build_input_content

logger = Logger(service="vidmod-start-human-review")
s3 = boto3.client("s3")
dynamodb = boto3.client("dynamodb")
a2i = boto3.client("sagemaker-a2i-runtime")
events = boto3.client("events")

TERMINAL = {"Completed", "Failed", "Stopped"}
REPLAY_SOURCE, REPLAY_DETAIL_TYPE = "vidmod", "vidmod.humanLoopReplay"


class VideoReplaced(Exception):
    """The object's current version is not the one analysed: a reviewer would watch other content."""


class VideoNotFound(Exception):
    """The analysed object was deleted (or became unreadable) before its review started."""


class A2IThrottled(Exception):
    """A2I throttled the call or failed internally: retried by the HumanReview state."""


class A2IQuotaExceeded(Exception):
    """Too many open human loops for the account: retried (slowly) by the HumanReview state."""


def _a2i_error(error: ClientError) -> Exception:
    """Name A2I's transient errors so the ASL can retry them; anything else fails the task as it is."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    if code in {"ThrottlingException", "InternalServerException"}:
        return A2IThrottled(f"{code}: {message}")
    if code == "ServiceQuotaExceededException":
        return A2IQuotaExceeded(f"{code}: {message}")
    return error


def check_still_analysed_version(video: dict) -> None:
    """The reviewer's URL (grant_read_access) shows the object's current version: refuse to start a review
    of content that is no longer what Rekognition and the rules saw."""
    bucket, key = video["bucket"], video["key"]
    try:
        meta = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        # With s3:ListBucket granted a missing key is a 404; a 403 is a real permission (or KMS) problem.
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            raise VideoNotFound(f"s3://{bucket}/{key} was deleted during moderation; nothing to review") from error
        raise
    analysed, current = video.get("versionId") or "", meta.get("VersionId") or ""
    if analysed and current != analysed:
        raise VideoReplaced(
            f"s3://{bucket}/{key} was replaced by version {current or '(unversioned)'} during moderation "
            f"(analysed version {analysed}); the new version has its own execution"
        )
    analysed_etag, current_etag = video.get("etag") or "", meta.get("ETag", "").strip('"')
    if not analysed and analysed_etag and current_etag != analysed_etag:
        raise VideoReplaced(
            f"s3://{bucket}/{key} was overwritten during moderation (ETag {current_etag}, analysed {analysed_etag}); "
            "the new content has its own execution"
        )


def remember_token(
    loop_name: str, token: str, execution_arn: str, timeout_seconds: int, heartbeat_seconds: int
) -> None:
    now = int(time.time())
    dynamodb.put_item(
        TableName=os.environ["REVIEW_TASKS_TABLE"],
        Item={
            "humanLoopName": {"S": loop_name},
            "taskToken": {"S": token},
            "executionArn": {"S": execution_arn},
            "status": {"S": "PENDING"},
            "createdAt": {"N": str(now)},
            "heartbeatSeconds": {"N": str(heartbeat_seconds)},
            # Keep the row a little past the task's own timeout, then let DynamoDB TTL remove it.
            "expiresAt": {"N": str(now + timeout_seconds + 7 * 24 * 3600)},
        },
    )


def describe_loop(loop_name: str) -> dict | None:
    try:
        return a2i.describe_human_loop(HumanLoopName=loop_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise _a2i_error(error) from error


def start_loop(loop_name: str, input_content: dict) -> dict:
    """Start the loop, or find the one a previous attempt of this task started."""
    existing = describe_loop(loop_name)
    if existing is not None:
        logger.warning("human loop already exists", extra={"status": existing["HumanLoopStatus"]})
        return existing
    try:
        response = a2i.start_human_loop(
            HumanLoopName=loop_name,
            FlowDefinitionArn=os.environ["FLOW_DEFINITION_ARN"],
            HumanLoopInput={"InputContent": json.dumps(input_content, separators=(",", ":"))},
        )
        return {"HumanLoopArn": response["HumanLoopArn"], "HumanLoopStatus": "InProgress"}
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConflictException":
            raise _a2i_error(error) from error
    existing = describe_loop(loop_name)  # started concurrently by another attempt
    if existing is None:
        raise A2IThrottled(f"human loop {loop_name} conflicts but cannot be described yet")
    return existing


def replay_finished_loop(loop_name: str, status: str) -> None:
    """The loop ended before this attempt stored its token (its status-change event went to the old
    token): ask complete_human_review, through EventBridge, to deliver its outcome to the new token."""
    response = events.put_events(
        Entries=[
            {
                "Source": REPLAY_SOURCE,
                "DetailType": REPLAY_DETAIL_TYPE,
                "Detail": json.dumps({"humanLoopName": loop_name, "humanLoopStatus": status}),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise A2IThrottled(f"could not publish the replay of {loop_name}: {response['Entries']}")
    logger.info("human loop already finished; outcome replayed", extra={"status": status})


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    loop_name, decision, video = event["humanLoopName"], event["decision"], event["video"]
    check_still_analysed_version(video)
    remember_token(
        loop_name,
        event["taskToken"],
        event["executionArn"],
        int(event.get("timeoutSeconds", 0)),
        int(event.get("heartbeatSeconds", 0)),
    )
    ref = decision["segmentsRef"]
    stored = json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    duration = (event.get("videoMetadata") or {}).get("DurationMillis")
    input_content = build_input_content(video, decision, stored["segments"], duration)
    loop = start_loop(loop_name, input_content)
    if loop["HumanLoopStatus"] in TERMINAL:
        replay_finished_loop(loop_name, loop["HumanLoopStatus"])
    logger.info("human loop started", extra={"humanLoopName": loop_name, "segments": len(input_content["segments"])})
    return {"humanLoopName": loop_name, "humanLoopArn": loop["HumanLoopArn"], "status": loop["HumanLoopStatus"]}
