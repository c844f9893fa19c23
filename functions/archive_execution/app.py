"""Archive a finished execution's full history to the audit bucket (Step Functions keeps it 90 days), and
publish the execution's metrics from the same read of its history.

Triggered by EventBridge "Step Functions Execution Status Change" for a terminal status; the work is in
``execution_archive`` and ``execution_figures``. Metrics go out only when this delivery wrote the archive, so
a duplicate event counts nothing twice; a failed attempt counts in ArchiveFailures and is raised again for
Lambda's retries and the DLQ.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from execution_archive import archive_execution
from execution_figures import FigureReader

from vidmod_contracts.metrics import ARCHIVE_FAILURES, COUNT, publish

logger = Logger(service="vidmod-archive-execution")
tracer = Tracer()
sfn = boto3.client("stepfunctions")
s3 = boto3.client("s3")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context) -> dict:
    arn = event.detail["executionArn"]
    reader = FigureReader()
    try:
        archived = archive_execution(sfn, s3, os.environ["AUDIT_BUCKET"], arn, datetime.now(UTC), reader.read)
    except Exception:
        logger.exception("archiving failed", extra={"executionArn": arn})
        publish({ARCHIVE_FAILURES: (COUNT, 1)})
        raise
    if not archived.written:
        logger.info("already archived (duplicate event)", extra={"key": archived.key})
        return {"archived": False, "key": archived.key}
    reader.figures.publish()
    logger.info("archived", extra={"key": archived.key, "bytes": archived.size, "status": event.detail.get("status")})
    return {"archived": True, "key": archived.key}
