"""Grant and give back moderation slots (``vidmod_contracts.moderation_slots`` has the table and the why).

Every change is one conditional write against the version it read, so two Lambdas never grant the same free
slot and a slot is never granted twice; a lost race reads again. A grant is recorded before its task token
is sent: a Lambda that dies in between leaves a holder whose grant the next pump sends again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from vidmod_contracts.moderation_slots import (
    POINTER,
    QUEUE,
    RESEND_AFTER_SECONDS,
    STATE_KEY,
    TOKEN_GONE,
    SlotTable,
    ticket_key,
)
from vidmod_contracts.times import iso_millis

logger = Logger(service="vidmod-admission")
MAX_ROUNDS = 100  # lost races in one call before giving up (the Lambda is retried)


class Contended(Exception):
    """Too many lost races in one call; raising lets the caller's retry try again."""


@dataclass(frozen=True)
class Grant:
    """What the waiting execution receives (its ``$.admission``) and the decision record keeps."""

    ticket: int
    queuedAt: str
    grantedAt: str
    queuedSeconds: float
    limit: int

    @classmethod
    def of(cls, holder: dict, limit: int) -> Grant:
        return cls(holder["ticket"], holder["queuedAt"], holder["grantedAt"], holder["queuedSeconds"], limit)

    def output(self) -> str:
        return json.dumps(self.__dict__)


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _iso(epoch: float) -> str:
    return iso_millis(datetime.fromtimestamp(epoch, UTC))


class Semaphore:
    def __init__(self, dynamodb, sfn, table: str, limit: int, clock=time.time):
        self.dynamodb, self.sfn, self.table, self.limit, self.clock = dynamodb, sfn, table, limit, clock
        self.slots = SlotTable(dynamodb, table)

    # ------------------------------------------------------------------ acquire
    def acquire(self, execution_arn: str, task_token: str) -> str:
        """Queue the execution (or find it queued or holding already), then wake whoever may go."""
        for _ in range(MAX_ROUNDS):
            holders, _ = self.slots.state()
            if execution_arn in holders:  # a retried invoke, or the same execution run again after a restart
                self._deliver(execution_arn, task_token, holders[execution_arn])
                return "held"
            pointer = self.slots.pointer(execution_arn)
            if pointer is not None:
                if not self._replace_token(pointer["ticket"], task_token):
                    continue  # granted meanwhile: the next round finds it holding
                self.pump()
                return "queued"
            if self._enqueue(execution_arn, task_token, self._next_ticket()):
                self.pump()
                return "queued"
        raise Contended(f"could not queue {execution_arn}")

    def _next_ticket(self) -> int:
        """The arrival counter; the first call creates the state item the grants update."""
        attributes = self.dynamodb.update_item(
            TableName=self.table,
            Key=STATE_KEY,
            UpdateExpression="SET nextTicket = if_not_exists(nextTicket, :zero) + :one, "
            "holders = if_not_exists(holders, :empty), version = if_not_exists(version, :zero)",
            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}, ":empty": {"M": {}}},
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return int(attributes["nextTicket"]["N"])

    def _enqueue(self, execution_arn: str, task_token: str, ticket: int) -> bool:
        queued_at = self.clock()
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {
                                "pk": {"S": QUEUE},
                                "sk": {"S": ticket_key(ticket)},
                                "ticket": {"N": str(ticket)},
                                "executionArn": {"S": execution_arn},
                                "taskToken": {"S": task_token},
                                "queuedAt": {"S": _iso(queued_at)},
                                "queuedEpoch": {"N": f"{queued_at:.3f}"},
                            },
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table,
                            "Item": {"pk": {"S": POINTER}, "sk": {"S": execution_arn}, "ticket": {"N": str(ticket)}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except ClientError as error:
            if _code(error) == "TransactionCanceledException":
                return False  # the same execution queued concurrently (a retried invoke): keep that place
            raise
        logger.info("queued for a moderation slot", extra={"executionArn": execution_arn, "ticket": ticket})
        return True

    def _replace_token(self, ticket: int, task_token: str) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": QUEUE}, "sk": {"S": ticket_key(ticket)}},
                UpdateExpression="SET taskToken = :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": {"S": task_token}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------------ grant
    def pump(self) -> int:
        """Grant free slots to the oldest waiting executions, one conditional write each; how many were granted."""
        granted = 0
        for _ in range(MAX_ROUNDS):
            holders, version = self.slots.state()
            self._resend_undelivered(holders)
            if len(holders) >= self.limit:
                return granted
            heads = self.slots.waiting(limit=1)
            if not heads:
                return granted
            head = heads[0]
            holder = self._grant(head, version)
            if holder is None:
                continue  # another Lambda granted or released first: read again
            granted += 1
            self._deliver(head["executionArn"], head["taskToken"], holder)
        raise Contended("too many concurrent grants")

    def _grant(self, head: dict, version: int) -> dict | None:
        granted_at = self.clock()
        holder = {
            "ticket": head["ticket"],
            "queuedAt": head["queuedAt"],
            "grantedAt": _iso(granted_at),
            "grantedEpoch": round(granted_at, 3),
            "queuedSeconds": round(max(0.0, granted_at - float(head["queuedEpoch"])), 3),
            "taskToken": head["taskToken"],
        }
        item = {
            "ticket": {"N": str(holder["ticket"])},
            "queuedAt": {"S": holder["queuedAt"]},
            "grantedAt": {"S": holder["grantedAt"]},
            "grantedEpoch": {"N": str(holder["grantedEpoch"])},
            "queuedSeconds": {"N": str(holder["queuedSeconds"])},
            "taskToken": {"S": holder["taskToken"]},
        }
        arn = head["executionArn"]
        try:
            self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": STATE_KEY,
                            "UpdateExpression": "SET holders.#e = :h, version = version + :one",
                            "ConditionExpression": "version = :v AND attribute_not_exists(holders.#e)",
                            "ExpressionAttributeNames": {"#e": arn},
                            "ExpressionAttributeValues": {
                                ":h": {"M": item},
                                ":one": {"N": "1"},
                                ":v": {"N": str(version)},
                            },
                        }
                    },
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": QUEUE}, "sk": {"S": ticket_key(head["ticket"])}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": {"pk": {"S": POINTER}, "sk": {"S": arn}}}},
                ]
            )
        except ClientError as error:
            if _code(error) == "TransactionCanceledException":
                return None
            raise
        logger.info(
            "moderation slot granted",
            extra={"executionArn": arn, "ticket": head["ticket"], "queuedSeconds": holder["queuedSeconds"]},
        )
        return holder

    def _deliver(self, execution_arn: str, task_token: str, holder: dict) -> None:
        """Wake the execution; a task that is no longer waiting gives its slot back unless the execution runs on."""
        try:
            self.sfn.send_task_success(taskToken=task_token, output=Grant.of(holder, self.limit).output())
        except ClientError as error:
            if _code(error) not in TOKEN_GONE:
                raise  # the grant stays recorded; a retry (or the next pump) sends it again
            status = self._status(execution_arn)
            if status != "RUNNING":
                logger.info(
                    "granted to an execution that ended; slot given back", extra={"executionArn": execution_arn}
                )
                self._remove_holder(execution_arn)
                return
        self._delivered(execution_arn)

    def _resend_undelivered(self, holders: dict[str, dict]) -> None:
        for arn, holder in holders.items():
            if "taskToken" in holder and self.clock() - float(holder["grantedEpoch"]) > RESEND_AFTER_SECONDS:
                self._deliver(arn, holder["taskToken"], holder)

    def _delivered(self, execution_arn: str) -> None:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=STATE_KEY,
                UpdateExpression="REMOVE holders.#e.taskToken",
                ConditionExpression="attribute_exists(holders.#e)",
                ExpressionAttributeNames={"#e": execution_arn},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise

    def _status(self, execution_arn: str) -> str:
        try:
            return self.sfn.describe_execution(executionArn=execution_arn)["status"]
        except ClientError as error:
            if _code(error) == "ExecutionDoesNotExist":
                return "GONE"
            raise

    # ------------------------------------------------------------------ release
    def release(self, execution_arn: str) -> dict:
        """Give the execution's slot back, or take it out of the queue; then wake the next in line.

        Out of the queue first, then out of the holders: a grant racing with this call either finds no queue
        entry to grant, or made a holder this call then removes."""
        dequeued = self._dequeue(execution_arn)
        released = self._remove_holder(execution_arn)
        if released or dequeued:
            logger.info(
                "moderation slot given back" if released else "left the queue",
                extra={"executionArn": execution_arn},
            )
        self.pump()
        return {"released": released, "dequeued": dequeued, "releasedAt": _iso(self.clock())}

    def _dequeue(self, execution_arn: str) -> bool:
        pointer = self.slots.pointer(execution_arn)
        if pointer is None:
            return False
        self.dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": {"pk": {"S": QUEUE}, "sk": {"S": ticket_key(pointer["ticket"])}},
                    }
                },
                {"Delete": {"TableName": self.table, "Key": {"pk": {"S": POINTER}, "sk": {"S": execution_arn}}}},
            ]
        )
        return True

    def _remove_holder(self, execution_arn: str) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=STATE_KEY,
                UpdateExpression="REMOVE holders.#e SET version = version + :one",
                ConditionExpression="attribute_exists(holders.#e)",
                ExpressionAttributeNames={"#e": execution_arn},
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        except ClientError as error:
            if _code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True
