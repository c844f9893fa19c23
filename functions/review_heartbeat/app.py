"""Scheduled: keep waiting review tasks alive while their human loop is really in progress.

The callback task has a HeartbeatSeconds limit: if a loop dies without an event (or its event is lost),
heartbeats stop and the workflow's timeout path escalates instead of waiting for a year.
"""

from __future__ import annotations

import os

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

logger = Logger(service="vidmod-review-heartbeat")
dynamodb = boto3.client("dynamodb")
sfn = boto3.client("stepfunctions")
a2i = boto3.client("sagemaker-a2i-runtime")
ALIVE = {"InProgress", "Stopping"}


def pending_tasks(table: str):
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=table,
        FilterExpression="#s = :pending",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":pending": {"S": "PENDING"}},
        ProjectionExpression="humanLoopName, taskToken",
    ):
        yield from page.get("Items", [])


def beat(loop_name: str, token: str) -> str:
    try:
        status = a2i.describe_human_loop(HumanLoopName=loop_name)["HumanLoopStatus"]
    except ClientError as error:
        logger.warning("cannot describe loop", extra={"humanLoopName": loop_name, "error": str(error)})
        return "unknown"
    if status not in ALIVE:
        logger.info("loop finished; waiting for its status-change event", extra={"humanLoopName": loop_name})
        return status
    try:
        sfn.send_task_heartbeat(taskToken=token)
    except ClientError as error:
        logger.warning("heartbeat refused", extra={"humanLoopName": loop_name, "error": str(error)})
        return "refused"
    return "heartbeat"


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    counts: dict[str, int] = {}
    for item in pending_tasks(os.environ["REVIEW_TASKS_TABLE"]):
        outcome = beat(item["humanLoopName"]["S"], item["taskToken"]["S"])
        counts[outcome] = counts.get(outcome, 0) + 1
    logger.info("heartbeat round", extra=counts)
    return counts
