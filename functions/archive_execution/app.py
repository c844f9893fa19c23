"""Archive a finished execution's full history to the audit bucket (Step Functions keeps it 90 days).

Triggered by EventBridge "Step Functions Execution Status Change" for a terminal status; the work is in
``execution_archive``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from execution_archive import archive_execution

logger = Logger(service="vidmod-archive-execution")
sfn = boto3.client("stepfunctions")
s3 = boto3.client("s3")


@logger.inject_lambda_context
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context) -> dict:
    archived = archive_execution(sfn, s3, os.environ["AUDIT_BUCKET"], event.detail["executionArn"], datetime.now(UTC))
    if not archived.written:
        logger.info("already archived (duplicate event)", extra={"key": archived.key})
        return {"archived": False, "key": archived.key}
    logger.info("archived", extra={"key": archived.key, "bytes": archived.size, "status": event.detail.get("status")})
    return {"archived": True, "key": archived.key}
