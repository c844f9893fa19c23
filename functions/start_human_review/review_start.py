"""The HumanReview callback task: remember its token, then put the video in front of a reviewer.

The execution sleeps (``.waitForTaskToken``) until complete_human_review sends the reviewer's verdict to the
token kept in the review-task table under the (deterministic) loop name; a retried task replaces the token
and re-uses the same loop. The token itself never reaches the reviewer: it is not in the InputContent.

The reviewer watches a copy of the analysed version (``review_media``). A video replaced or deleted before
the review starts still fails the task (the new version has its own execution; nobody should review content
that is already outdated); once the loop exists, the copy keeps the review on the analysed content, so a
retried task carries on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from analysed_version import VideoNotFound, VideoReplaced, check_still_analysed_version
from aws_lambda_powertools import Logger
from human_loops import describe_loop, replay_finished_loop, start_loop
from review_input import build_input_content
from review_media import make_review_copy

from vidmod_contracts.human_loops import FINAL_STATUSES
from vidmod_contracts.review_tasks import ReviewTasks

logger = Logger(service="vidmod-start-human-review")


@dataclass(frozen=True)
class ReviewRequest:
    """The HumanReview state's Payload."""

    loop_name: str
    token: str
    execution_arn: str
    timeout_seconds: int
    heartbeat_seconds: int
    video: dict  # the job's video: bucket, key, uri, name, versionId, etag
    decision: dict  # evaluate_rules' output, with segmentsRef
    duration_millis: int | None
    audit: dict | None = None  # an audit review: the automatic decision checked (statemachine/audit.asl.json)

    @classmethod
    def from_event(cls, event: dict) -> ReviewRequest:
        return cls(
            loop_name=event["humanLoopName"],
            token=event["taskToken"],
            execution_arn=event["executionArn"],
            timeout_seconds=int(event.get("timeoutSeconds", 0)),
            heartbeat_seconds=int(event.get("heartbeatSeconds", 0)),
            video=event["video"],
            decision=event["decision"],
            duration_millis=(event.get("videoMetadata") or {}).get("DurationMillis"),
            audit=event.get("audit"),
        )


@dataclass(frozen=True)
class StartedReview:
    loop_name: str
    loop_arn: str
    status: str  # the loop's HumanLoopStatus: InProgress, or already final (then its outcome was replayed)
    segments: int  # shown to the reviewer (the strongest, capped)


class ReviewStarter:
    def __init__(self, s3, a2i, events, tasks: ReviewTasks, flow_definition_arn: str, copy_bucket: str):
        self.s3, self.a2i, self.events, self.tasks = s3, a2i, events, tasks
        self.flow_definition_arn = flow_definition_arn
        self.copy_bucket = copy_bucket  # where the review copies go (the results bucket)

    def start(self, request: ReviewRequest, now: int) -> StartedReview:
        """The token is stored before the loop starts, so a verdict can never arrive for an unknown token."""
        try:
            check_still_analysed_version(self.s3, request.video)
        except (VideoReplaced, VideoNotFound) as error:
            if describe_loop(self.a2i, request.loop_name) is None:
                raise
            logger.warning(
                "video changed after its review started; the review goes on with the copy", extra={"change": str(error)}
            )
        copy = make_review_copy(self.s3, request.video, self.copy_bucket, request.loop_name)
        self.tasks.remember(
            request.loop_name,
            request.token,
            request.execution_arn,
            request.timeout_seconds,
            request.heartbeat_seconds,
            now,
        )
        ref = request.decision["segmentsRef"]
        segments = json.loads(self.s3.get_object(Bucket=ref["bucket"], Key=ref["key"])["Body"].read())["segments"]
        input_content = build_input_content(
            request.video, copy.uri, request.decision, segments, request.duration_millis, request.audit
        )
        loop = start_loop(self.a2i, self.flow_definition_arn, request.loop_name, input_content)
        if loop["HumanLoopStatus"] in FINAL_STATUSES:
            replay_finished_loop(self.events, request.loop_name, loop["HumanLoopStatus"])
        return StartedReview(
            request.loop_name, loop["HumanLoopArn"], loop["HumanLoopStatus"], len(input_content["segments"])
        )
