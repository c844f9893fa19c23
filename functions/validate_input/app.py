"""First state: check the video exists and is acceptable, and plan the job (``video_check``, ``job_plan``)."""

from __future__ import annotations

import os

import boto3
from aws_lambda_powertools import Logger
from job_plan import Settings
from video_check import Execution, check_and_plan

logger = Logger(service="vidmod-validate-input")
s3 = boto3.client("s3")


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context) -> dict:
    settings = Settings.from_env(dict(os.environ))
    return check_and_plan(s3, event.get("input"), Execution.from_state(event["execution"]), settings)
