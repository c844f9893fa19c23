"""Archive a finished execution's full history to the audit bucket (Step Functions keeps it 90 days).

Triggered by EventBridge "Step Functions Execution Status Change" for a terminal status. The object is
written once (``If-None-Match: *``): a duplicate event finds it there and stops, and an archive is never
silently replaced. The bucket has S3 Object Lock, which requires an integrity checksum on every PutObject.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
from archive import archive_key, build_archive
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from botocore.exceptions import ClientError

logger = Logger(service="vidmod-archive-execution")
sfn = boto3.client("stepfunctions")
s3 = boto3.client("s3")


def history(execution_arn: str) -> list[dict]:
    """Every event, across all pages (a history can hold 25,000)."""
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn)
    return [event for page in pages for event in page["events"]]


@logger.inject_lambda_context
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context) -> dict:
    execution_arn = event.detail["executionArn"]
    bucket, key = os.environ["AUDIT_BUCKET"], archive_key(execution_arn)
    body = build_archive(sfn.describe_execution(executionArn=execution_arn), history(execution_arn), datetime.now(UTC))
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            IfNoneMatch="*",
            ChecksumAlgorithm="SHA256",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
            raise
        logger.info("already archived (duplicate event)", extra={"key": key})
        return {"archived": False, "key": key}
    logger.info("archived", extra={"key": key, "bytes": len(body), "status": event.detail.get("status")})
    return {"archived": True, "key": key}
