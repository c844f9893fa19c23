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


def remember_token(loop_name: str, token: str, execution_arn: str, timeout_seconds: int) -> None:
    now = int(time.time())
    dynamodb.put_item(
        TableName=os.environ["REVIEW_TASKS_TABLE"],
        Item={
            "humanLoopName": {"S": loop_name},
            "taskToken": {"S": token},
            "executionArn": {"S": execution_arn},
            "status": {"S": "PENDING"},
            "createdAt": {"N": str(now)},
            # Keep the row a little past the task's own timeout, then let DynamoDB TTL remove it.
            "expiresAt": {"N": str(now + timeout_seconds + 7 * 24 * 3600)},
        },
    )


def start_loop(loop_name: str, input_content: dict) -> str:
    try:
        response = a2i.start_human_loop(
            HumanLoopName=loop_name,
            FlowDefinitionArn=os.environ["FLOW_DEFINITION_ARN"],
            HumanLoopInput={"InputContent": json.dumps(input_content, separators=(",", ":"))},
        )
        return response["HumanLoopArn"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConflictException":
            raise
        # A retry of this task: the loop already exists. Keep it; the new token is already stored.
        existing = a2i.describe_human_loop(HumanLoopName=loop_name)
        logger.warning("human loop already exists", extra={"status": existing["HumanLoopStatus"]})
        return existing["HumanLoopArn"]


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    loop_name, decision, video = event["humanLoopName"], event["decision"], event["video"]
    remember_token(loop_name, event["taskToken"], event["executionArn"], int(event.get("timeoutSeconds", 0)))
    ref = decision["segmentsRef"]
    stored = json.loads(s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())
    duration = (event.get("videoMetadata") or {}).get("DurationMillis")
    input_content = build_input_content(video, decision, stored["segments"], duration)
    arn = start_loop(loop_name, input_content)
    logger.info("human loop started", extra={"humanLoopName": loop_name, "segments": len(input_content["segments"])})
    return {"humanLoopName": loop_name, "humanLoopArn": arn}
