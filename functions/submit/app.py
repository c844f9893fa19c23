"""Entry points: S3 "Object Created" (EventBridge), the HTTP API (POST/GET /moderations) and backfill items.

Both start the same Standard workflow with a deterministic execution name (``moderations``); a duplicate is
reported, not started twice.
"""

from __future__ import annotations

import json
import os

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from backfill import BackfillItem, VideoRules, backfill_one
from log_redaction import redact_event
from moderations import Moderations
from submission import BadRequest, Trigger

from vidmod_contracts.times import now_iso

logger = Logger(service="vidmod-submit")
app = APIGatewayHttpResolver()
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")


def moderations() -> Moderations:
    return Moderations(s3, sfn, dynamodb, os.environ["STATE_MACHINE_ARN"])


def media_buckets() -> set[str]:
    return {b for b in os.environ["MEDIA_BUCKETS"].split(",") if b}


@app.post("/moderations")
def create_moderation():
    try:
        body = app.current_event.json_body
    except json.JSONDecodeError as error:
        raise BadRequestError(f"body is not valid JSON: {error}") from error
    ctx = app.current_event.request_context
    principal = ctx.authorizer.iam.user_arn if ctx.authorizer and ctx.authorizer.iam else "unknown"
    trigger = Trigger("api", ctx.request_id, principal or "unknown", now_iso())
    try:
        started = moderations().request(body, media_buckets(), trigger)
    except BadRequest as error:
        raise BadRequestError(str(error)) from error
    status_code = 200 if started.duplicate else 202
    return Response(status_code=status_code, content_type="application/json", body=json.dumps(started.to_dict()))


@app.get("/moderations/<name>")
def get_moderation(name: str):
    status = moderations().status(name, os.environ["DECISIONS_TABLE"])
    if status is None:
        raise NotFoundError(f"no moderation named {name!r}")
    return status


def on_upload(event: dict) -> dict:
    detail, uploaded = event["detail"], event["detail"]["object"]
    received = event.get("time") or now_iso()
    trigger = Trigger("s3-upload", event.get("id", ""), detail.get("requester", "unknown"), received)
    started = moderations().upload(detail["bucket"]["name"], uploaded["key"], uploaded.get("version-id", ""), trigger)
    if started is None:
        logger.warning("uploaded object no longer exists; nothing to moderate", extra={"key": uploaded["key"]})
        return {"ignored": "object missing"}
    return started.to_dict()


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    logger.info("event", extra={"event": redact_event(event)})  # not log_event=True: it would log credentials
    if event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        return on_upload(event)
    if "backfillItem" in event:  # one object of the backfill state machine's Distributed Map
        item = BackfillItem.from_event(event["backfillItem"])
        return backfill_one(moderations(), item, media_buckets(), VideoRules.from_env(dict(os.environ)))
    return app.resolve(event, context)
