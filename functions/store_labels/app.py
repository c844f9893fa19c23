"""Keep one GetContentModeration page in S3 and pass on only a summary.

Full label lists can exceed Step Functions' 256 KiB payload limit, so the workflow carries references and
counts; the pages themselves live under ``<results prefix>pages/NNNNN.json``. Writing page N is
idempotent: a retried state overwrites the same object.
"""

from __future__ import annotations

import json

import boto3
from aws_lambda_powertools import Logger

logger = Logger(service="vidmod-store-labels")
s3 = boto3.client("s3")


def summarise(page: dict, previous: dict, number: int) -> dict:
    next_token = page.get("NextToken") or ""
    return {
        "pages": number,
        "detections": int(previous.get("detections", 0)) + len(page.get("ModerationLabels", [])),
        "modelVersion": page.get("ModerationModelVersion", ""),
        "statusMessage": page.get("StatusMessage", ""),
        "videoMetadata": page.get("VideoMetadata", {}),
        "hasMore": bool(next_token),
        "nextToken": next_token,
    }


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    page, previous, results = event["page"], event.get("previous") or {}, event["results"]
    number = int(previous.get("pages", 0)) + 1
    key = f"{results['prefix']}pages/{number:05d}.json"
    s3.put_object(Bucket=results["bucket"], Key=key, Body=json.dumps(page).encode(), ContentType="application/json")
    summary = summarise(page, previous, number)
    logger.info("stored page", extra={"key": key, "labels": len(page.get("ModerationLabels", []))})
    return summary
