"""The review-task table: one row per human loop, holding the callback task token the workflow waits on.

Three Lambdas share the row and its small state machine (docs/design.md, "A2I output file", review task row)::

    remember ──► PENDING ──claim──► SENDING ──settle──► DONE       (verdict or failure sent)
                    ▲  │                      ├──settle──► EXPIRED  (Step Functions refused the token)
                    │  └──expire──► EXPIRED   └──settle──► PENDING  (send failed: a retry may claim again)
                    └───────── claim (EXPIRED, or a SENDING claim older than the lease) ◄──┘

start_human_review remembers the token, complete_human_review claims, sends and settles, review_heartbeat
expires rows whose task is gone. Every transition is one conditional write, so concurrent duplicate
events can never send twice and a loser never overwrites the winner.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from botocore.exceptions import ClientError


class TaskStatus(StrEnum):
    PENDING = "PENDING"  # token stored; the workflow waits for the loop's outcome
    SENDING = "SENDING"  # one delivery holds the claim and is sending the outcome
    DONE = "DONE"  # outcome sent: final, later events are duplicates
    EXPIRED = "EXPIRED"  # a heartbeat or send was refused; a verdict may still be offered


# Step Functions' answers meaning the token can no longer resume anything (the task ended or timed out).
TOKEN_GONE = frozenset({"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"})
# A claim older than this (its sender crashed or timed out: the function's timeout is 30 s) may be taken over.
# Below Lambda's first async retry (about a minute), so a retried event finds the claim stale.
CLAIM_LEASE_SECONDS = 60
# Rows stay a week past the task's own timeout, then DynamoDB TTL removes them.
ROW_RETENTION_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class ReviewTask:
    loop_name: str
    token: str
    status: TaskStatus
    created_at: int = 0
    heartbeat_seconds: int = 0
    execution_arn: str = ""

    @classmethod
    def from_item(cls, item: dict) -> ReviewTask:
        def number(name: str) -> int:
            return int(item.get(name, {}).get("N", "0"))

        return cls(
            loop_name=item["humanLoopName"]["S"],
            token=item["taskToken"]["S"],
            status=TaskStatus(item.get("status", {}).get("S", TaskStatus.PENDING)),
            created_at=number("createdAt"),
            heartbeat_seconds=number("heartbeatSeconds"),
            execution_arn=item.get("executionArn", {}).get("S", ""),
        )


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class ReviewTasks:
    """Typed access to the table (``REVIEW_TASKS_TABLE``) through a boto3 DynamoDB client."""

    def __init__(self, dynamodb, table: str):
        self.dynamodb, self.table = dynamodb, table

    def _key(self, loop_name: str) -> dict:
        return {"humanLoopName": {"S": loop_name}}

    def remember(
        self, loop_name: str, token: str, execution_arn: str, timeout_seconds: int, heartbeat_seconds: int, now: int
    ) -> None:
        """Store (or replace, for a retried task) the token as PENDING."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item={
                **self._key(loop_name),
                "taskToken": {"S": token},
                "executionArn": {"S": execution_arn},
                "status": {"S": TaskStatus.PENDING},
                "createdAt": {"N": str(now)},
                "heartbeatSeconds": {"N": str(heartbeat_seconds)},
                "expiresAt": {"N": str(now + timeout_seconds + ROW_RETENTION_SECONDS)},
            },
        )

    def get(self, loop_name: str) -> ReviewTask | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(loop_name), ConsistentRead=True).get("Item")
        return ReviewTask.from_item(item) if item else None

    def _update(self, loop_name: str, expression: str, condition: str, values: dict) -> bool:
        """One conditional UpdateItem; False when the condition does not hold (another writer got there first)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=self._key(loop_name),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def claim(self, loop_name: str, token: str, now: int) -> str | None:
        """PENDING (or EXPIRED, or a stale SENDING) → SENDING for this token; the claim id, or None when another
        delivery holds or used it. EXPIRED only says a heartbeat or an earlier send was refused: Step Functions
        decides whether the token is gone, so the verdict is still offered."""
        claim_id = uuid.uuid4().hex
        won = self._update(
            loop_name,
            "SET #s = :sending, claimId = :claim, claimedAt = :now",
            "taskToken = :token AND (#s IN (:pending, :expired) OR (#s = :sending AND claimedAt < :stale))",
            {
                ":sending": {"S": TaskStatus.SENDING},
                ":pending": {"S": TaskStatus.PENDING},
                ":expired": {"S": TaskStatus.EXPIRED},
                ":claim": {"S": claim_id},
                ":now": {"N": str(now)},
                ":stale": {"N": str(now - CLAIM_LEASE_SECONDS)},
                ":token": {"S": token},
            },
        )
        return claim_id if won else None

    def settle(self, loop_name: str, claim_id: str, status: TaskStatus) -> bool:
        """SENDING → DONE / EXPIRED / PENDING, only by the claim's holder; False if it was taken over."""
        return self._update(
            loop_name,
            "SET #s = :status REMOVE claimId",
            "claimId = :claim",
            {":status": {"S": status}, ":claim": {"S": claim_id}},
        )

    def expire(self, loop_name: str, token: str) -> bool:
        """PENDING → EXPIRED for this token only: a retried task may have stored a new one meanwhile."""
        return self._update(
            loop_name,
            "SET #s = :expired",
            "#s = :pending AND taskToken = :token",
            {":expired": {"S": TaskStatus.EXPIRED}, ":pending": {"S": TaskStatus.PENDING}, ":token": {"S": token}},
        )

    def pending(self) -> Iterator[ReviewTask]:
        """Every PENDING row (a paged scan: the table holds only open and recently finished reviews)."""
        for page in self.dynamodb.get_paginator("scan").paginate(
            TableName=self.table,
            FilterExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":pending": {"S": TaskStatus.PENDING}},
            ProjectionExpression="humanLoopName, taskToken, #s, createdAt, heartbeatSeconds",
        ):
            for item in page.get("Items", []):
                yield ReviewTask.from_item(item)
