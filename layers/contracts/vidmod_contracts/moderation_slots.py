"""A FIFO semaphore over DynamoDB: at most ``limit`` executions hold a Rekognition moderation slot at once.

Rekognition Video runs 20 stored-video jobs per account and region (shared by every application there). An
execution asks for a slot before StartContentModeration and waits, without polling, on a task token: the
queue is woken in arrival order by each release. One table (partition ``pk``, sort ``sk``):

- ``semaphore``/``state``: ``holders`` (execution ARN → grant), ``queued`` (how many wait), ``nextTicket``
  (arrival counter);
- ``queue``/``<ticket, 20 digits>``: a waiting execution, its task token and when it arrived (FIFO by key);
- ``execution``/``<ARN>``: the waiting execution's ticket, so a retried or re-run acquire keeps its place and
  a stop removes it from the queue.

Acquire and release are idempotent per execution ARN: a re-run (same name after a restart) that already holds
a slot is granted again at once; one still queued gets its new token in its old place. Taking the task token
is all the waiting costs: no transitions, no Lambda time. The pattern is aws-samples' DynamoDB semaphore for
Step Functions, with FIFO wake-up instead of polling.
"""

from __future__ import annotations

from dataclasses import dataclass

STATE_KEY = {"pk": {"S": "semaphore"}, "sk": {"S": "state"}}
QUEUE = "queue"
POINTER = "execution"
TICKET_DIGITS = 20
# A grant whose token was never delivered (its Lambda died between the grant and SendTaskSuccess) is sent
# again by the next pump that sees it this old; younger ones may still be on their way.
RESEND_AFTER_SECONDS = 10
# SendTaskSuccess / SendTaskFailure error codes meaning the task is no longer waiting.
TOKEN_GONE = frozenset({"TaskDoesNotExist", "InvalidToken", "TaskTimedOut"})


class ConditionFailed(Exception):
    """Another Lambda changed the semaphore first: read again and retry."""


@dataclass(frozen=True)
class Usage:
    """What `vidmod status` and the portal show: slots in use of the limit, executions waiting."""

    in_use: int
    limit: int
    queued: int
    holders: tuple[str, ...]


def ticket_key(ticket: int) -> str:
    return f"{ticket:0{TICKET_DIGITS}d}"


def _s(value: str) -> dict:
    return {"S": value}


def _n(value: int | float) -> dict:
    return {"N": str(value)}


def plain(attribute: dict):
    """A DynamoDB attribute value as Python (the few shapes this table uses)."""
    ((kind, value),) = attribute.items()
    if kind == "M":
        return {k: plain(v) for k, v in value.items()}
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    return value


class SlotTable:
    """Reads of the semaphore table, shared by the admission Lambda, the CLI and the portal."""

    def __init__(self, dynamodb, table: str):
        self.dynamodb, self.table = dynamodb, table

    def state(self) -> dict:
        """The state item as plain values: {"holders": {ARN: grant}, "queued": n, "nextTicket": n}; {} if none."""
        item = self.dynamodb.get_item(TableName=self.table, Key=STATE_KEY, ConsistentRead=True).get("Item")
        return {k: plain(v) for k, v in (item or {}).items() if k not in STATE_KEY}

    def holders(self) -> dict[str, dict]:
        """Execution ARN → its grant, for every execution holding a slot now."""
        return self.state().get("holders", {})

    def waiting(self, limit: int | None = None) -> list[dict]:
        """Queued executions, oldest ticket first: [{"ticket", "executionArn", "taskToken", "queuedAt"}]."""
        kwargs = {"Limit": limit} if limit else {}
        items, start = [], None
        while True:
            page = self.dynamodb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :q",
                ExpressionAttributeValues={":q": _s(QUEUE)},
                ConsistentRead=True,
                **kwargs,
                **({"ExclusiveStartKey": start} if start else {}),
            )
            items += [{k: plain(v) for k, v in item.items()} for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start or (limit and len(items) >= limit):
                return items

    def queue_length(self) -> int:
        count, start = 0, None
        while True:
            page = self.dynamodb.query(
                TableName=self.table,
                KeyConditionExpression="pk = :q",
                ExpressionAttributeValues={":q": _s(QUEUE)},
                Select="COUNT",
                **({"ExclusiveStartKey": start} if start else {}),
            )
            count += page["Count"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return count

    def usage(self, limit: int) -> Usage:
        holders = self.holders()
        return Usage(len(holders), limit, self.queue_length(), tuple(sorted(holders)))

    def pointer(self, execution_arn: str) -> dict | None:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"pk": _s(POINTER), "sk": _s(execution_arn)}, ConsistentRead=True
        ).get("Item")
        return {k: plain(v) for k, v in item.items()} if item else None
