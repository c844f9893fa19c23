"""Start an A2I human loop exactly once per loop name, whatever retries and races happen.

The loop name is deterministic (one per execution), so a retried task finds the loop a previous attempt
started. A loop that already ended cannot deliver its outcome to the new token by itself: its status-change
event went to the old one, so the outcome is replayed through EventBridge to complete_human_review.
A2I's transient errors get names the state machine's Retry matches (A2IThrottled, A2IQuotaExceeded).
"""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from vidmod_contracts.human_loops import REPLAY_DETAIL_TYPE, REPLAY_SOURCE

logger = Logger(service="vidmod-start-human-review")


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


def describe_loop(a2i, loop_name: str) -> dict | None:
    try:
        return a2i.describe_human_loop(HumanLoopName=loop_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise _a2i_error(error) from error


def start_loop(a2i, flow_definition_arn: str, loop_name: str, input_content: dict) -> dict:
    """Start the loop, or find the one a previous attempt of this task started."""
    existing = describe_loop(a2i, loop_name)
    if existing is not None:
        logger.warning("human loop already exists", extra={"status": existing["HumanLoopStatus"]})
        return existing
    try:
        response = a2i.start_human_loop(
            HumanLoopName=loop_name,
            FlowDefinitionArn=flow_definition_arn,
            HumanLoopInput={"InputContent": json.dumps(input_content, separators=(",", ":"))},
        )
        return {"HumanLoopArn": response["HumanLoopArn"], "HumanLoopStatus": "InProgress"}
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConflictException":
            raise _a2i_error(error) from error
    existing = describe_loop(a2i, loop_name)  # started concurrently by another attempt
    if existing is None:
        raise A2IThrottled(f"human loop {loop_name} conflicts but cannot be described yet")
    return existing


def replay_finished_loop(events, loop_name: str, status: str) -> None:
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
