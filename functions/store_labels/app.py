"""Keep one GetContentModeration page in S3 and pass on only a summary (``page_store``)."""

from __future__ import annotations

import boto3
from aws_lambda_powertools import Logger
from page_store import store_page

logger = Logger(service="vidmod-store-labels")
s3 = boto3.client("s3")


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    page, previous, results = event["page"], event.get("previous") or {}, event["results"]
    stored = store_page(s3, results["bucket"], results["prefix"], page, previous)
    logger.info("stored page", extra={"key": stored.key, "labels": stored.labels})
    return stored.summary.to_dict()
