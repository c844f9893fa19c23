"""A2I "HumanLoop Status Change" → resume the waiting execution with the reviewer's verdict.

EventBridge delivers at least once: a duplicate or late event (the token was already used, or the task
timed out) is logged and ignored, never raised, so retries cannot turn into an error storm.
"""

from __future__ import annotations

import json
import os

import boto3
from a2i_output import InvalidReviewOutput, parse_output
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from botocore.exceptions import ClientError

logger = Logger(service="vidmod-complete-human-review")
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")
TOKEN_GONE = {"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"}
FAILURE_ERRORS = {"Failed": "HumanLoopFailed", "Stopped": "HumanLoopStopped"}


def read_output(uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def pending_task(loop_name: str) -> dict | None:
    return dynamodb.get_item(
        TableName=os.environ["REVIEW_TASKS_TABLE"], Key={"humanLoopName": {"S": loop_name}}, ConsistentRead=True
    ).get("Item")


def mark(loop_name: str, status: str) -> None:
    dynamodb.update_item(
        TableName=os.environ["REVIEW_TASKS_TABLE"],
        Key={"humanLoopName": {"S": loop_name}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": status}},
    )


def resume(token: str, detail: dict) -> str:
    """Send the verdict (or the failure) for one loop; returns what was sent."""
    status = detail["humanLoopStatus"]
    if status == "Completed":
        uri = detail["humanLoopOutput"]["outputS3Uri"]
        try:
            result = parse_output(read_output(uri), uri)
        except InvalidReviewOutput as error:
            sfn.send_task_failure(taskToken=token, error="InvalidReviewOutput", cause=str(error)[:32768])
            return "InvalidReviewOutput"
        sfn.send_task_success(taskToken=token, output=json.dumps(result.to_dict()))
        return result.decision
    error = FAILURE_ERRORS.get(status, "HumanLoopFailed")
    cause = f"{detail.get('failureCode') or status}: {detail.get('failureReason') or 'no reason given'}"
    sfn.send_task_failure(taskToken=token, error=error, cause=cause[:32768])
    return error


@logger.inject_lambda_context(log_event=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context) -> dict:
    detail = event.detail
    loop_name = detail["humanLoopName"]
    logger.append_keys(humanLoopName=loop_name, humanLoopStatus=detail.get("humanLoopStatus"))
    if detail.get("humanLoopStatus") not in {"Completed", "Failed", "Stopped"}:
        return {"ignored": "not a final status"}
    task = pending_task(loop_name)
    if task is None:
        logger.warning("no review task for this loop (not ours, or expired)")
        return {"ignored": "unknown loop"}
    if task["status"]["S"] != "PENDING":
        logger.info("duplicate event: review already handled", extra={"status": task["status"]["S"]})
        return {"ignored": "duplicate"}
    try:
        sent = resume(task["taskToken"]["S"], detail)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in TOKEN_GONE:
            raise
        logger.warning("task token no longer valid; event ignored", extra={"code": code})
        mark(loop_name, "EXPIRED")
        return {"ignored": code}
    mark(loop_name, "DONE")
    return {"sent": sent}
