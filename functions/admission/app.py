"""Moderation slots: acquire (a callback task), release (in the workflow), and release when an execution ends.

The workflow asks for a slot before StartContentModeration and gives it back once its labels are stored or
on its failure path; an execution that fails, times out or is stopped gives it back through its "Step
Functions Execution Status Change" event, so no slot outlives its execution (``semaphore``). After each, the
slots in use and the queue's length go out as metrics.
"""

from __future__ import annotations

import os

import boto3
from aws_lambda_powertools import Logger, Tracer
from semaphore import Semaphore

from vidmod_contracts.metrics import COUNT, MODERATION_QUEUE_LENGTH, MODERATION_SLOTS_IN_USE, publish

logger = Logger(service="vidmod-admission")
tracer = Tracer()
dynamodb = boto3.client("dynamodb")
sfn = boto3.client("stepfunctions")


def semaphore() -> Semaphore:
    return Semaphore(dynamodb, sfn, os.environ["SLOTS_TABLE"], int(os.environ["MAX_CONCURRENT_MODERATION_JOBS"]))


@logger.inject_lambda_context(log_event=False)  # its events carry task tokens: never logged
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context) -> dict:
    slots = semaphore()
    result = act(slots, event)
    in_use, queued = slots.occupancy()
    publish({MODERATION_SLOTS_IN_USE: (COUNT, in_use), MODERATION_QUEUE_LENGTH: (COUNT, queued)})
    return result


def act(slots: Semaphore, event: dict) -> dict:
    if event.get("detail-type") == "Step Functions Execution Status Change":
        detail = event["detail"]
        logger.info("execution ended", extra={"executionArn": detail["executionArn"], "status": detail["status"]})
        return slots.release(detail["executionArn"])
    action, execution_arn = event["action"], event["executionArn"]
    if action == "acquire":  # the token is never logged (nor traced): whoever holds it could resume the execution
        return {"status": slots.acquire(execution_arn, event["taskToken"])}
    if action == "release":
        return slots.release(execution_arn)
    raise ValueError(f"unknown action {action!r}: expected acquire or release")
