"""Scheduled: keep waiting review tasks alive while their human loop is really in progress.

The callback task has a HeartbeatSeconds limit: if a loop dies without an event (or its event is lost),
heartbeats stop and the workflow's timeout path escalates instead of waiting for a year. Rows whose task
can no longer be resumed are marked EXPIRED so they stop costing a DescribeHumanLoop every round.
"""

from __future__ import annotations

import os
import re
import time

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

logger = Logger(service="vidmod-review-heartbeat")
dynamodb = boto3.client("dynamodb")
sfn = boto3.client("stepfunctions")
a2i = boto3.client("sagemaker-a2i-runtime")
ALIVE = {"InProgress", "Stopping"}
TOKEN_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}
# start_human_review stores the token just before it starts the loop: a loop that does not exist yet is
# only dead once the row is older than this.
LOOP_START_GRACE_SECONDS = 900
# The row is written by the Lambda that the callback task invokes: until that invocation returns (its timeout
# is 30 s), an engine may not know the token yet. A refused heartbeat expires only rows older than this.
TOKEN_GRACE_SECONDS = 60


def schedule_seconds(expression: str) -> int | None:
    """The period of a ``rate(...)`` schedule (None for cron, which has no single period)."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return None
    return int(match[1]) * {"minute": 60, "hour": 3600, "day": 86400}[match[2].rstrip("s")]


def pending_tasks(table: str):
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="#s = :pending",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":pending": {"S": "PENDING"}},
        ProjectionExpression="humanLoopName, taskToken, createdAt, heartbeatSeconds",
    ):
        yield from page.get("Items", [])


def expire(loop_name: str, token: str) -> None:
    """PENDING → EXPIRED for this token only: a retried task may have stored a new one meanwhile."""
    try:
        dynamodb.update_item(
            TableName=os.environ["REVIEW_TASKS_TABLE"],
            Key={"humanLoopName": {"S": loop_name}},
            UpdateExpression="SET #s = :expired",
            ConditionExpression="#s = :pending AND taskToken = :token",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":expired": {"S": "EXPIRED"},
                ":pending": {"S": "PENDING"},
                ":token": {"S": token},
            },
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise


def beat(loop_name: str, token: str, created_at: int, now: float) -> str:
    try:
        status = a2i.describe_human_loop(HumanLoopName=loop_name)["HumanLoopStatus"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException" and now - created_at > LOOP_START_GRACE_SECONDS:
            logger.warning("loop does not exist; row expired", extra={"humanLoopName": loop_name})
            expire(loop_name, token)
            return "expired"
        logger.warning("cannot describe loop", extra={"humanLoopName": loop_name, "error": str(error)})
        return "unknown"
    if status not in ALIVE:
        logger.info("loop finished; waiting for its status-change event", extra={"humanLoopName": loop_name})
        return status
    try:
        sfn.send_task_heartbeat(taskToken=token)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in TOKEN_GONE and now - created_at > TOKEN_GRACE_SECONDS:
            logger.info("task already ended; row expired", extra={"humanLoopName": loop_name, "code": code})
            expire(loop_name, token)
            return "expired"
        logger.warning("heartbeat refused", extra={"humanLoopName": loop_name, "error": str(error)})
        return "refused"
    return "heartbeat"


def check_schedule(item: dict, period: int | None) -> bool:
    """A heartbeat limit not above the schedule period times the review out between two heartbeats."""
    limit = int(item.get("heartbeatSeconds", {}).get("N", "0"))
    return period is None or limit == 0 or limit > period


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    counts: dict[str, int] = {}
    period = schedule_seconds(os.environ.get("HEARTBEAT_SCHEDULE", ""))
    now, too_short = time.time(), 0
    for item in pending_tasks(os.environ["REVIEW_TASKS_TABLE"]):
        too_short += not check_schedule(item, period)
        created_at = int(item.get("createdAt", {}).get("N", "0"))
        outcome = beat(item["humanLoopName"]["S"], item["taskToken"]["S"], created_at, now)
        counts[outcome] = counts.get(outcome, 0) + 1
    if too_short:
        logger.error(
            "ReviewHeartbeatSeconds must exceed the HeartbeatSchedule period, or reviews time out between heartbeats",
            extra={"scheduleSeconds": period, "tasks": too_short},
        )
    logger.info("heartbeat round", extra=counts)
    return counts
