"""A2I "HumanLoop Status Change" → resume the waiting execution with the reviewer's verdict.

Duplicates, late events and replays are sorted out in ``review_completion``.
"""

from __future__ import annotations

import os
import time

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from review_completion import ReviewCompletion

from vidmod_contracts.human_loops import REPLAY_SOURCE
from vidmod_contracts.review_tasks import ReviewTasks

logger = Logger(service="vidmod-complete-human-review")
s3 = boto3.client("s3")
sfn = boto3.client("stepfunctions")
dynamodb = boto3.client("dynamodb")
a2i = boto3.client("sagemaker-a2i-runtime")


@logger.inject_lambda_context(log_event=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context) -> dict:
    tasks = ReviewTasks(dynamodb, os.environ["REVIEW_TASKS_TABLE"])
    completion = ReviewCompletion(s3, sfn, a2i, tasks, os.environ.get("FLOW_DEFINITION_ARN"))
    return completion.handle(event.detail, replay=event.source == REPLAY_SOURCE, now=int(time.time())).to_dict()
