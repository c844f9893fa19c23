"""Grant and give back moderation slots (``vidmod_contracts.moderation_slots`` has the table and the why).

Every grant is one conditional write on the state item — ``size(holders) < limit`` and the execution not
holding already — so a slot is never granted beyond the limit nor twice, whatever runs at the same time.
The common paths are one write each: an execution that finds a free slot and nobody queued takes it at once
(``queued = 0`` keeps the order first come, first served), and a release is one update that also says
whether anyone waits. A grant made for a queued execution is recorded with its task token before the token
is sent: a Lambda that dies in between leaves a holder whose grant a later release or retry sends again.
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
    plain,
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
        return cls(
            int(holder.get("ticket", 0)),
            holder["queuedAt"],
            holder["grantedAt"],
            float(holder["queuedSeconds"]),
            limit,
        )

    def output(self) -> str:
        return json.dumps(self.__dict__)


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _unless_refused(write) -> dict | None:
    """The write's response, or None when DynamoDB refused it: its condition (or a transaction's) did not hold,
    because another Lambda changed the semaphore first."""
    try:
        return write()
    except ClientError as error:
        if _code(error) in {"ConditionalCheckFailedException", "TransactionCanceledException"}:
            return None
        raise


def _iso(epoch: float) -> str:
    return iso_millis(datetime.fromtimestamp(epoch, UTC))


def _holder_item(holder: dict) -> dict:
    item = {
        "queuedAt": {"S": holder["queuedAt"]},
        "grantedAt": {"S": holder["grantedAt"]},
        "grantedEpoch": {"N": str(holder["grantedEpoch"])},
        "queuedSeconds": {"N": str(holder["queuedSeconds"])},
    }
    if "ticket" in holder:
        item["ticket"] = {"N": str(holder["ticket"])}
    if "taskToken" in holder:
        item["taskToken"] = {"S": holder["taskToken"]}
    return {"M": item}


class Semaphore:
    def __init__(self, dynamodb, sfn, table: str, limit: int, clock=time.time):
        self.dynamodb, self.sfn, self.table, self.limit, self.clock = dynamodb, sfn, table, limit, clock
        self.slots = SlotTable(dynamodb, table)
        self._state_exists = False

    def _ensure_state(self) -> None:
        """The state item the grants update (a map must exist before a key is set in it); once per container."""
        if self._state_exists:
            return
        _unless_refused(
            lambda: self.dynamodb.put_item(
                TableName=self.table,
                Item={**STATE_KEY, "holders": {"M": {}}, "queued": {"N": "0"}, "nextTicket": {"N": "0"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        )
        self._state_exists = True

    def occupancy(self) -> tuple[int, int]:
        """(slots in use, executions queued) now: one consistent read of the state item."""
        state = self.slots.state()
        return len(state.get("holders", {})), int(state.get("queued", 0))

    # ------------------------------------------------------------------ acquire
    def acquire(self, execution_arn: str, task_token: str) -> str:
        """Take a free slot at once, or queue (or find the execution queued or holding already) and wake
        whoever may go."""
        self._ensure_state()
        for _ in range(MAX_ROUNDS):
            if self._take_at_once(execution_arn, task_token):
                return "granted"
            holders = self.slots.holders()
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

    def _take_at_once(self, execution_arn: str, task_token: str) -> bool:
        """A free slot and nobody waiting: one conditional write, then the execution's own token is sent."""
        now = self.clock()
        holder = {"queuedAt": _iso(now), "grantedAt": _iso(now), "grantedEpoch": round(now, 3), "queuedSeconds": 0.0}
        response = _unless_refused(
            lambda: self.dynamodb.update_item(
                TableName=self.table,
                Key=STATE_KEY,
                UpdateExpression="SET holders.#e = :h ADD nextTicket :one",
                ConditionExpression="size(holders) < :limit AND queued = :zero AND attribute_not_exists(holders.#e)",
                ExpressionAttributeNames={"#e": execution_arn},
                ExpressionAttributeValues={
                    ":h": _holder_item(holder),
                    ":one": {"N": "1"},
                    ":zero": {"N": "0"},
                    ":limit": {"N": str(self.limit)},
                },
                ReturnValues="UPDATED_NEW",
            )
        )
        if response is None:
            return False
        holder["ticket"] = int(response["Attributes"]["nextTicket"]["N"])
        logger.info(
            "moderation slot granted at once", extra={"executionArn": execution_arn, "ticket": holder["ticket"]}
        )
        # No token kept: if this send fails, the task's own retry finds the execution holding and sends again.
        self.sfn.send_task_success(taskToken=task_token, output=Grant.of(holder, self.limit).output())
        return True

    def _next_ticket(self) -> int:
        attributes = self.dynamodb.update_item(
            TableName=self.table,
            Key=STATE_KEY,
            UpdateExpression="ADD nextTicket :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        return int(attributes["nextTicket"]["N"])

    def _enqueue(self, execution_arn: str, task_token: str, ticket: int) -> bool:
        queued_at = self.clock()
        response = _unless_refused(
            lambda: self.dynamodb.transact_write_items(
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
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": STATE_KEY,
                            "UpdateExpression": "ADD queued :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                ]
            )
        )
        if response is None:
            return False  # the same execution queued concurrently (a retried invoke): keep that place
        logger.info("queued for a moderation slot", extra={"executionArn": execution_arn, "ticket": ticket})
        return True

    def _replace_token(self, ticket: int, task_token: str) -> bool:
        replaced = _unless_refused(
            lambda: self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": QUEUE}, "sk": {"S": ticket_key(ticket)}},
                UpdateExpression="SET taskToken = :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": {"S": task_token}},
            )
        )
        return replaced is not None

    # ------------------------------------------------------------------ grant
    def pump(self) -> int:
        """Grant free slots to the oldest waiting executions, one conditional write each; how many were granted."""
        granted = 0
        for _ in range(MAX_ROUNDS):
            heads = self.slots.waiting(limit=1)
            if not heads:
                return granted
            head = heads[0]
            holder = self._grant(head)
            if holder is None:
                if len(self.slots.holders()) >= self.limit:
                    return granted  # full: the next release wakes the head
                continue  # another Lambda granted this head first: look again
            granted += 1
            self._deliver(head["executionArn"], head["taskToken"], holder)
        raise Contended("too many concurrent grants")

    def _grant(self, head: dict) -> dict | None:
        granted_at = self.clock()
        holder = {
            "ticket": head["ticket"],
            "queuedAt": head["queuedAt"],
            "grantedAt": _iso(granted_at),
            "grantedEpoch": round(granted_at, 3),
            "queuedSeconds": round(max(0.0, granted_at - float(head["queuedEpoch"])), 3),
            "taskToken": head["taskToken"],
        }
        arn = head["executionArn"]
        response = _unless_refused(
            lambda: self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": STATE_KEY,
                            "UpdateExpression": "SET holders.#e = :h ADD queued :minus",
                            "ConditionExpression": "size(holders) < :limit AND attribute_not_exists(holders.#e)",
                            "ExpressionAttributeNames": {"#e": arn},
                            "ExpressionAttributeValues": {
                                ":h": _holder_item(holder),
                                ":minus": {"N": "-1"},
                                ":limit": {"N": str(self.limit)},
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
        )
        if response is None:
            return None
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
                raise  # the grant stays recorded with its token; a retry (or a later release) sends it again
            if self._status(execution_arn) != "RUNNING":
                logger.info(
                    "granted to an execution that ended; slot given back", extra={"executionArn": execution_arn}
                )
                self.release(execution_arn)
                return
        if "taskToken" in holder:
            self._delivered(execution_arn)

    def _resend_undelivered(self, holders: dict[str, dict]) -> None:
        for arn, holder in holders.items():
            if "taskToken" in holder and self.clock() - float(holder["grantedEpoch"]) > RESEND_AFTER_SECONDS:
                self._deliver(arn, holder["taskToken"], holder)

    def _delivered(self, execution_arn: str) -> None:
        _unless_refused(  # refused: released meanwhile, nothing to mark
            lambda: self.dynamodb.update_item(
                TableName=self.table,
                Key=STATE_KEY,
                UpdateExpression="REMOVE holders.#e.taskToken",
                ConditionExpression="attribute_exists(holders.#e)",
                ExpressionAttributeNames={"#e": execution_arn},
            )
        )

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

        An execution either holds a slot or waits in the queue. If it holds none, it leaves the queue and is
        checked once more: a grant racing with this call made a holder that this call then removes."""
        self._ensure_state()
        state = self._remove_holder(execution_arn)
        released, dequeued = state is not None, False
        if not released:
            dequeued = self._dequeue(execution_arn)
            state = self._remove_holder(execution_arn)
            released = state is not None
        if released or dequeued:
            logger.info(
                "moderation slot given back" if released else "left the queue", extra={"executionArn": execution_arn}
            )
        # Nothing of this execution's (a retry, or the status-change event after the in-flow release): a chance
        # to repair a grant whose token a failed Lambda never sent, and to wake a waiter nobody woke.
        state = state if state is not None else self.slots.state()
        self._resend_undelivered(state.get("holders", {}))
        if state.get("queued", 0) > 0:
            self.pump()
        return {"released": released, "dequeued": dequeued, "releasedAt": _iso(self.clock())}

    def _dequeue(self, execution_arn: str) -> bool:
        pointer = self.slots.pointer(execution_arn)
        if pointer is None:
            return False
        response = _unless_refused(
            lambda: self.dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": {"pk": {"S": QUEUE}, "sk": {"S": ticket_key(pointer["ticket"])}},
                            "ConditionExpression": "attribute_exists(pk)",
                        }
                    },
                    {"Delete": {"TableName": self.table, "Key": {"pk": {"S": POINTER}, "sk": {"S": execution_arn}}}},
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": STATE_KEY,
                            "UpdateExpression": "ADD queued :minus",
                            "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                        }
                    },
                ]
            )
        )
        return response is not None  # refused: granted meanwhile, and the caller removes the holder

    def _remove_holder(self, execution_arn: str) -> dict | None:
        """The state after the removal (plain values), or None when the execution held no slot."""
        response = _unless_refused(
            lambda: self.dynamodb.update_item(
                TableName=self.table,
                Key=STATE_KEY,
                UpdateExpression="REMOVE holders.#e",
                ConditionExpression="attribute_exists(holders.#e)",
                ExpressionAttributeNames={"#e": execution_arn},
                ReturnValues="ALL_NEW",
            )
        )
        return None if response is None else {k: plain(v) for k, v in response["Attributes"].items()}
