"""Start one Standard execution per video version, and report on it later.

A duplicate upload event or a retried API call derives the same execution name: the look-up reports it as a
duplicate instead of starting the workflow twice (Step Functions itself would refuse a same-name start with
other input, or treat one with the same input as idempotent).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from submission import BadRequest, Trigger, Video, VideoNotReadable, key_candidates, parse_request_body
from video_lookup import locate

from vidmod_contracts.executions import execution_arn

logger = Logger(service="vidmod-submit")


@dataclass(frozen=True)
class Started:
    """The execution that moderates the video; ``duplicate`` when it had been started before."""

    executionName: str
    executionArn: str
    duplicate: bool
    video: dict

    def to_dict(self) -> dict:
        return asdict(self)


class Moderations:
    """The moderation workflow of one deployment: its state machine and its decision records."""

    def __init__(self, s3, sfn, dynamodb, state_machine_arn: str):
        self.s3, self.sfn, self.dynamodb, self.state_machine_arn = s3, sfn, dynamodb, state_machine_arn

    def execution_status(self, name: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED … of the execution with this name; None when there is none."""
        try:
            described = self.sfn.describe_execution(executionArn=execution_arn(self.state_machine_arn, name))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
                return None
            raise
        return described["status"]

    def start(self, video: Video, trigger: Trigger) -> Started:
        """Start once per video version; the look-up first lets us report a duplicate."""
        name = video.execution_name
        arn, duplicate = execution_arn(self.state_machine_arn, name), True
        if self.execution_status(name) is None:
            payload = json.dumps({"video": video.as_input(), "trigger": trigger.to_dict()})
            try:
                arn = self.sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name, input=payload)[
                    "executionArn"
                ]
                duplicate = False
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                    raise
        if duplicate:
            logger.info("duplicate submission: execution already exists", extra={"executionName": name})
        return Started(name, arn, duplicate, video.as_input())

    def request(self, body: object, media_buckets: set[str], trigger: Trigger) -> Started:
        """An API request: BadRequest (with a message for the caller) unless it names a video that exists."""
        bucket, key, version = parse_request_body(body, media_buckets)
        try:
            video = locate(self.s3, bucket, [key], version)
        except VideoNotReadable as error:
            raise BadRequest(str(error)) from error
        if video is None:
            raise BadRequest(f"s3://{bucket}/{key} does not exist" + (f" (version {version})" if version else ""))
        return self.start(video, trigger)

    def upload(self, bucket: str, raw_key: str, version_id: str, trigger: Trigger) -> Started | None:
        """An S3 "Object Created" event; None when the object is gone already (nothing to moderate).

        VideoNotReadable is raised, not ignored: the event is retried, then kept by the OnFailure queue."""
        video = locate(self.s3, bucket, key_candidates(raw_key), version_id)
        return None if video is None else self.start(video, trigger)

    def status(self, name: str, decisions_table: str) -> dict | None:
        """The execution's status, its video and its decision record (if written yet); None if there is none."""
        try:
            described = self.sfn.describe_execution(executionArn=execution_arn(self.state_machine_arn, name))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"ExecutionDoesNotExist", "InvalidArn"}:
                return None
            raise
        video = json.loads(described["input"]).get("video", {})
        items = self.dynamodb.query(
            TableName=decisions_table,
            KeyConditionExpression="videoUri = :v AND executionName = :n",
            ExpressionAttributeValues={
                ":v": {"S": f"s3://{video.get('bucket')}/{video.get('key')}"},
                ":n": {"S": name},
            },
        ).get("Items", [])
        decision = {k: next(iter(v.values())) for k, v in items[0].items()} if items else None
        return {
            "executionName": name,
            "status": described["status"],
            "startDate": described["startDate"].isoformat(),
            "stopDate": described["stopDate"].isoformat() if described.get("stopDate") else None,
            "video": video,
            "decision": decision,
        }
