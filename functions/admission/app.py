"""Moderation slots: acquire (a callback task), release (in the workflow), and release when an execution ends.

The workflow asks for a slot before StartContentModeration and gives it back once its labels are stored or
on its failure path; an execution that fails, times out or is stopped gives it back through its "Step
Functions Execution Status Change" event, so no slot outlives its execution (``semaphore``).
"""

from __future__ import annotations

import os

import boto3
from aws_lambda_powertools import Logger
from semaphore import Semaphore

logger = Logger(service="vidmod-admission")
dynamodb = boto3.client("dynamodb")
sfn = boto3.client("stepfunctions")


def semaphore() -> Semaphore:
    return Semaphore(dynamodb, sfn, os.environ["SLOTS_TABLE"], int(os.environ["MAX_CONCURRENT_MODERATION_JOBS"]))


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    if event.get("detail-type") == "Step Functions Execution Status Change":
        detail = event["detail"]
        logger.info("execution ended", extra={"executionArn": detail["executionArn"], "status": detail["status"]})
        return semaphore().release(detail["executionArn"])
    action, execution_arn = event["action"], event["executionArn"]
    if action == "acquire":  # the token is never logged: whoever holds it could resume the execution
        return {"status": semaphore().acquire(execution_arn, event["taskToken"])}
    if action == "release":
        return semaphore().release(execution_arn)
    raise ValueError(f"unknown action {action!r}: expected acquire or release")
