"""A2I "HumanLoop Status Change" → resume the waiting execution with the reviewer's verdict.

EventBridge delivers at least once: a duplicate or late event (the token was already used, or the task
timed out) is logged and ignored, never raised, so retries cannot turn into an error storm. Concurrent
duplicates race for a conditional PENDING → SENDING claim on the task row: exactly one of them sends.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import boto3
from a2i_output import InvalidReviewOutput, parse_output
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from botocore.exceptions import ClientError

logger = Logger(service="vidmod-complete-human-review")
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")
a2i = boto3.client("sagemaker-a2i-runtime")
TOKEN_GONE = {"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"}
FINAL = {"Completed", "Failed", "Stopped"}
FAILURE_ERRORS = {"Failed": "HumanLoopFailed", "Stopped": "HumanLoopStopped"}
# A2I's "Expired" is a review timeout (TaskAvailabilityLifetime): the workflow escalates, as on its own timeout.
EXPIRED_ERROR = "HumanLoopExpired"
REPLAY_SOURCE = "vidmod"  # start_human_review: "this loop ended before my token was stored"
# A claim older than this (its sender crashed or timed out: the function's timeout is 30 s) may be taken over.
# Below Lambda's first async retry (about a minute), so a retried event finds the claim stale.
CLAIM_LEASE_SECONDS = 60


class ReviewBeingSent(Exception):
    """Another delivery of this event holds the claim right now: fail, so Lambda retries this one later
    (it then finds the row DONE, or a stale claim to take over if the sender died)."""


def read_output(uri: str) -> tuple[dict, str]:
    """The A2I output and the SHA-256 of its bytes exactly as stored (the audit re-hashes the same object)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return json.loads(body), hashlib.sha256(body).hexdigest()


def pending_task(loop_name: str) -> dict | None:
    return dynamodb.get_item(
        TableName=os.environ["REVIEW_TASKS_TABLE"], Key={"humanLoopName": {"S": loop_name}}, ConsistentRead=True
    ).get("Item")


def _update(loop_name: str, expression: str, condition: str, values: dict) -> bool:
    """One conditional UpdateItem; False when the condition does not hold (another event got there first)."""
    try:
        dynamodb.update_item(
            TableName=os.environ["REVIEW_TASKS_TABLE"],
            Key={"humanLoopName": {"S": loop_name}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=values,
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True


def claim(loop_name: str, token: str) -> str | None:
    """PENDING (or EXPIRED) → SENDING for this token; returns the claim id, or None if another event holds or
    used it. EXPIRED only says that a heartbeat or an earlier send was refused: Step Functions decides whether
    the token is gone, so the verdict is still offered (a gone token is then refused and ignored)."""
    claim_id, now = uuid.uuid4().hex, int(time.time())
    won = _update(
        loop_name,
        "SET #s = :sending, claimId = :claim, claimedAt = :now",
        "taskToken = :token AND (#s IN (:pending, :expired) OR (#s = :sending AND claimedAt < :stale))",
        {
            ":sending": {"S": "SENDING"},
            ":pending": {"S": "PENDING"},
            ":expired": {"S": "EXPIRED"},
            ":claim": {"S": claim_id},
            ":now": {"N": str(now)},
            ":stale": {"N": str(now - CLAIM_LEASE_SECONDS)},
            ":token": {"S": token},
        },
    )
    return claim_id if won else None


def settle(loop_name: str, claim_id: str, status: str) -> None:
    """SENDING → DONE / EXPIRED (or back to PENDING), only by the claim's holder: a loser never overwrites."""
    if not _update(
        loop_name,
        "SET #s = :status REMOVE claimId",
        "claimId = :claim",
        {":status": {"S": status}, ":claim": {"S": claim_id}},
    ):
        logger.warning("claim was taken over before it settled", extra={"status": status})


def resume(token: str, detail: dict) -> str:
    """Send the verdict (or the failure) for one loop; returns what was sent."""
    status = detail["humanLoopStatus"]
    if status == "Completed":
        uri = detail["humanLoopOutput"]["outputS3Uri"]
        output, sha256 = read_output(uri)
        try:
            result = parse_output(output, uri, sha256)
        except InvalidReviewOutput as error:
            sfn.send_task_failure(taskToken=token, error="InvalidReviewOutput", cause=str(error)[:32768])
            return "InvalidReviewOutput"
        sfn.send_task_success(taskToken=token, output=json.dumps(result.to_dict()))
        return result.decision
    code = detail.get("failureCode") or status
    error = EXPIRED_ERROR if code == "Expired" else FAILURE_ERRORS.get(status, "HumanLoopFailed")
    cause = f"{code}: {detail.get('failureReason') or 'no reason given'}"
    sfn.send_task_failure(taskToken=token, error=error, cause=cause[:32768])
    return error


def replayed_detail(loop_name: str) -> dict | None:
    """A replay carries only the loop's name: its status and output come from A2I itself, not the event."""
    try:
        loop = a2i.describe_human_loop(HumanLoopName=loop_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    if loop.get("FlowDefinitionArn") != os.environ.get("FLOW_DEFINITION_ARN"):
        return None
    return {
        "humanLoopName": loop_name,
        "humanLoopStatus": loop["HumanLoopStatus"],
        "failureCode": loop.get("FailureCode"),
        "failureReason": loop.get("FailureReason"),
        "humanLoopOutput": {"outputS3Uri": (loop.get("HumanLoopOutput") or {}).get("OutputS3Uri", "")},
        "flowDefinitionArn": loop["FlowDefinitionArn"],
    }


@logger.inject_lambda_context(log_event=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context) -> dict:
    detail = event.detail
    if event.source == REPLAY_SOURCE:
        detail = replayed_detail(detail["humanLoopName"])
        if detail is None:
            logger.warning("replay for a loop that is not ours or no longer exists")
            return {"ignored": "unknown loop"}
    loop_name = detail["humanLoopName"]
    logger.append_keys(humanLoopName=loop_name, humanLoopStatus=detail.get("humanLoopStatus"))
    if detail.get("humanLoopStatus") not in FINAL:
        return {"ignored": "not a final status"}
    task = pending_task(loop_name)
    if task is None:
        logger.warning("no review task for this loop (not ours, or expired)")
        return {"ignored": "unknown loop"}
    token = task["taskToken"]["S"]
    claim_id = claim(loop_name, token) if task["status"]["S"] != "DONE" else None
    if claim_id is None:
        now = (pending_task(loop_name) or {}).get("status", {}).get("S", "")
        if now == "SENDING":
            raise ReviewBeingSent(f"{loop_name}: another delivery is sending its verdict; retry later")
        logger.info("duplicate event: review already handled", extra={"status": now})
        return {"ignored": "duplicate"}
    try:
        sent = resume(token, detail)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code not in TOKEN_GONE:
            settle(loop_name, claim_id, "PENDING")  # let the retried event try again
            raise
        logger.warning("task token no longer valid; event ignored", extra={"code": code})
        settle(loop_name, claim_id, "EXPIRED")
        return {"ignored": code}
    except Exception:
        settle(loop_name, claim_id, "PENDING")
        raise
    settle(loop_name, claim_id, "DONE")
    return {"sent": sent}
