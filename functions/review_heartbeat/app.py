"""Scheduled: keep waiting review tasks alive while their human loop is really in progress (``heartbeats``)."""

from __future__ import annotations

import os
import time

import boto3
from aws_lambda_powertools import Logger
from heartbeats import Heartbeats

from vidmod_contracts.review_tasks import ReviewTasks
from vidmod_contracts.schedules import rate_seconds

logger = Logger(service="vidmod-review-heartbeat")
dynamodb = boto3.client("dynamodb")
sfn = boto3.client("stepfunctions")
a2i = boto3.client("sagemaker-a2i-runtime")


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    period = rate_seconds(os.environ.get("HEARTBEAT_SCHEDULE", ""))
    tasks = ReviewTasks(dynamodb, os.environ["REVIEW_TASKS_TABLE"])
    result = Heartbeats(sfn, a2i, tasks).round(period, now=time.time())
    if result.too_short:
        logger.error(
            "ReviewHeartbeatSeconds must exceed the HeartbeatSchedule period, or reviews time out between heartbeats",
            extra={"scheduleSeconds": period, "tasks": result.too_short},
        )
    logger.info("heartbeat round", extra=result.counts)
    return result.counts
