"""Entry points: S3 "Object Created" (EventBridge) and the HTTP API (POST/GET /moderations).

Both start the same Standard workflow with a deterministic execution name; a duplicate is reported, not
started twice.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from botocore.exceptions import ClientError
from submission import (
    BadRequest,
    Video,
    VideoNotReadable,
    execution_name,
    key_candidates,
    parse_request_body,
    redact_event,
)

logger = Logger(service="vidmod-submit")
app = APIGatewayHttpResolver()
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")


def media_buckets() -> set[str]:
    return {b for b in os.environ["MEDIA_BUCKETS"].split(",") if b}


def locate(bucket: str, keys: list[str], version_id: str = "") -> Video | None:
    """HeadObject the first candidate key that exists: pins version and ETag for the execution name.

    None when no candidate exists; VideoNotReadable when S3 answered 403 (missing or not readable by us)."""
    forbidden = False
    for key in keys:
        kwargs = {"Bucket": bucket, "Key": key} | ({"VersionId": version_id} if version_id else {})
        try:
            meta = s3.head_object(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NotFound", "400"}:
                continue
            if code in {"403", "AccessDenied", "Forbidden"}:
                forbidden = True
                continue
            raise
        version = meta.get("VersionId") or ""
        return Video(bucket, key, "" if version == "null" else version, meta.get("ETag", "").strip('"'))
    if forbidden:
        raise VideoNotReadable(
            f"s3://{bucket}/{keys[0]}"
            + (f" (version {version_id})" if version_id else "")
            + " does not exist or is not readable by this function (HeadObject: 403 Forbidden)"
        )
    return None


def execution_arn(name: str) -> str:
    return os.environ["STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:") + f":{name}"


def already_started(arn: str) -> bool:
    try:
        sfn.describe_execution(executionArn=arn)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return False
        raise
    return True


def start(video: Video, trigger: dict) -> dict:
    """Start once per video version. A same-name StartExecution is also refused (other input) or idempotent
    (same input) on Step Functions' side; the look-up first lets us report the duplicate."""
    name = execution_name(video)
    arn, duplicate = execution_arn(name), True
    if not already_started(arn):
        payload = json.dumps({"video": video.as_input(), "trigger": trigger})
        try:
            arn = sfn.start_execution(stateMachineArn=os.environ["STATE_MACHINE_ARN"], name=name, input=payload)[
                "executionArn"
            ]
            duplicate = False
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
    if duplicate:
        logger.info("duplicate submission: execution already exists", extra={"executionName": name})
    return {"executionName": name, "executionArn": arn, "duplicate": duplicate, "video": video.as_input()}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@app.post("/moderations")
def create_moderation():
    try:
        body = app.current_event.json_body
    except json.JSONDecodeError as error:
        raise BadRequestError(f"body is not valid JSON: {error}") from error
    try:
        bucket, key, version = parse_request_body(body, media_buckets())
    except BadRequest as error:
        raise BadRequestError(str(error)) from error
    try:
        video = locate(bucket, [key], version)
    except VideoNotReadable as error:
        raise BadRequestError(str(error)) from error
    if video is None:
        raise BadRequestError(f"s3://{bucket}/{key} does not exist" + (f" (version {version})" if version else ""))
    ctx = app.current_event.request_context
    principal = ctx.authorizer.iam.user_arn if ctx.authorizer and ctx.authorizer.iam else "unknown"
    result = start(
        video, {"type": "api", "id": ctx.request_id, "principal": principal or "unknown", "receivedAt": now()}
    )
    return Response(
        status_code=200 if result["duplicate"] else 202, content_type="application/json", body=json.dumps(result)
    )


@app.get("/moderations/<name>")
def get_moderation(name: str):
    try:
        described = sfn.describe_execution(executionArn=execution_arn(name))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "InvalidArn"}:
            raise NotFoundError(f"no moderation named {name!r}") from error
        raise
    video = json.loads(described["input"]).get("video", {})
    items = dynamodb.query(
        TableName=os.environ["DECISIONS_TABLE"],
        KeyConditionExpression="videoUri = :v AND executionName = :n",
        ExpressionAttributeValues={":v": {"S": f"s3://{video.get('bucket')}/{video.get('key')}"}, ":n": {"S": name}},
    ).get("Items", [])
    decision = {k: next(iter(v.values())) for k, v in items[0].items()} if items else None
    return {
        "executionName": name,
        "status": described["status"],
        "startDate": described["startDate"].isoformat(),
        "stopDate": described["stopDate"].isoformat() if described.get("stopDate") else None,
        "video": video,
        "decision": decision,
    }


def on_upload(event: dict) -> dict:
    detail = event["detail"]
    bucket, raw_key = detail["bucket"]["name"], detail["object"]["key"]
    video = locate(bucket, key_candidates(raw_key), detail["object"].get("version-id", ""))
    if video is None:
        logger.warning("uploaded object no longer exists; nothing to moderate", extra={"key": raw_key})
        return {"ignored": "object missing"}
    trigger = {
        "type": "s3-upload",
        "id": event.get("id", ""),
        "principal": detail.get("requester", "unknown"),
        "receivedAt": event.get("time") or now(),
    }
    return start(video, trigger)


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    logger.info("event", extra={"event": redact_event(event)})  # not log_event=True: it would log credentials
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        return on_upload(event)
    return app.resolve(event, context)
