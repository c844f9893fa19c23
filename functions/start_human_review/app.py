"""Callback task: remember the task token, copy the analysed version for the reviewer, then start the A2I
human loop (``review_start``)."""

from __future__ import annotations

import os
import time

import boto3
from aws_lambda_powertools import Logger
from review_start import ReviewRequest, ReviewStarter

from vidmod_contracts.review_tasks import ReviewTasks

logger = Logger(service="vidmod-start-human-review")
s3 = boto3.client("s3")
dynamodb = boto3.client("dynamodb")
a2i = boto3.client("sagemaker-a2i-runtime")
events = boto3.client("events")


@logger.inject_lambda_context
def lambda_handler(event: dict, context) -> dict:
    request = ReviewRequest.from_event(event)
    tasks = ReviewTasks(dynamodb, os.environ["REVIEW_TASKS_TABLE"])
    starter = ReviewStarter(s3, a2i, events, tasks, os.environ["FLOW_DEFINITION_ARN"], os.environ["RESULTS_BUCKET"])
    started = starter.start(request, now=int(time.time()))
    logger.info(
        "human loop started",
        extra={"humanLoopName": started.loop_name, "segments": started.segments, "audit": request.audit is not None},
    )
    return {"humanLoopName": started.loop_name, "humanLoopArn": started.loop_arn, "status": started.status}
