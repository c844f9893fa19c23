"""Scheduled: keep waiting review tasks alive while their human loop is really in progress (``heartbeats``),
and publish how many reviews are open and how long the oldest has waited (the review SLA alarm's metric)."""

from __future__ import annotations

import os
import time

import boto3
from aws_lambda_powertools import Logger, Tracer
from heartbeats import Heartbeats

from vidmod_contracts.metrics import COUNT, OLDEST_OPEN_REVIEW_AGE, OPEN_REVIEWS, SECONDS, publish
from vidmod_contracts.review_tasks import ReviewTasks
from vidmod_contracts.schedules import rate_seconds

logger = Logger(service="vidmod-review-heartbeat")
tracer = Tracer()
dynamodb = boto3.client("dynamodb")
sfn = boto3.client("stepfunctions")
a2i = boto3.client("sagemaker-a2i-runtime")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context) -> dict:
    period = rate_seconds(os.environ.get("HEARTBEAT_SCHEDULE", ""))
    tasks = ReviewTasks(dynamodb, os.environ["REVIEW_TASKS_TABLE"])
    now = time.time()
    result = Heartbeats(sfn, a2i, tasks).round(period, now=now)
    publish(
        {
            OPEN_REVIEWS: (COUNT, result.open_reviews),
            OLDEST_OPEN_REVIEW_AGE: (SECONDS, result.oldest_open_seconds(now)),
        }
    )
    if result.too_short:
        logger.error(
            "ReviewHeartbeatSeconds must exceed the HeartbeatSchedule period, or reviews time out between heartbeats",
            extra={"scheduleSeconds": period, "tasks": result.too_short},
        )
    logger.info("heartbeat round", extra=result.counts)
    return result.counts
