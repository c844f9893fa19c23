"""Deliver a finished loop's outcome to the task waiting for it, exactly once.

EventBridge delivers at least once: a duplicate or late event (the token was already used, or the task
timed out) is logged and ignored, never raised, so retries cannot turn into an error storm. Concurrent
duplicates race for the review-task row's conditional claim (``vidmod_contracts.review_tasks``): exactly one
of them sends, and only the claim's holder settles the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from loop_outcome import LoopOutcome, replayed_outcome
from resumption import resume

from vidmod_contracts.review_tasks import TOKEN_GONE, ReviewTasks, TaskStatus

logger = Logger(service="vidmod-complete-human-review")


class ReviewBeingSent(Exception):
    """Another delivery of this event holds the claim right now: fail, so Lambda retries this one later
    (it then finds the row DONE, or a stale claim to take over if the sender died)."""


@dataclass(frozen=True)
class Handled:
    """What became of one event: the verdict or failure sent, or why nothing was."""

    sent: str | None = None
    ignored: str | None = None

    def to_dict(self) -> dict:
        return {"sent": self.sent} if self.sent is not None else {"ignored": self.ignored}


class ReviewCompletion:
    def __init__(self, s3, sfn, a2i, tasks: ReviewTasks, flow_definition_arn: str | None):
        self.s3, self.sfn, self.a2i, self.tasks = s3, sfn, a2i, tasks
        self.flow_definition_arn = flow_definition_arn

    def handle(self, detail: dict, replay: bool, now: int) -> Handled:
        """``detail`` of an A2I status change, or of a vidmod replay (``replay``: only the loop's name counts)."""
        if replay:
            outcome = replayed_outcome(self.a2i, detail["humanLoopName"], self.flow_definition_arn)
            if outcome is None:
                logger.warning("replay for a loop that is not ours or no longer exists")
                return Handled(ignored="unknown loop")
        else:
            outcome = LoopOutcome.from_detail(detail)
        logger.append_keys(humanLoopName=outcome.name, humanLoopStatus=outcome.status)
        if not outcome.final:
            return Handled(ignored="not a final status")
        return self.deliver(outcome, now)

    def deliver(self, outcome: LoopOutcome, now: int) -> Handled:
        task = self.tasks.get(outcome.name)
        if task is None:
            logger.warning("no review task for this loop (not ours, or expired)")
            return Handled(ignored="unknown loop")
        claim_id = self.tasks.claim(outcome.name, task.token, now) if task.status != TaskStatus.DONE else None
        if claim_id is None:
            current = self.tasks.get(outcome.name)
            status = current.status if current else ""
            if status == TaskStatus.SENDING:
                raise ReviewBeingSent(f"{outcome.name}: another delivery is sending its verdict; retry later")
            logger.info("duplicate event: review already handled", extra={"status": status})
            return Handled(ignored="duplicate")
        try:
            sent = resume(self.sfn, self.s3, task.token, outcome)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in TOKEN_GONE:
                self._settle(outcome.name, claim_id, TaskStatus.PENDING)  # let the retried event try again
                raise
            logger.warning("task token no longer valid; event ignored", extra={"code": code})
            self._settle(outcome.name, claim_id, TaskStatus.EXPIRED)
            return Handled(ignored=code)
        except Exception:
            self._settle(outcome.name, claim_id, TaskStatus.PENDING)
            raise
        self._settle(outcome.name, claim_id, TaskStatus.DONE)
        return Handled(sent=sent)

    def _settle(self, loop_name: str, claim_id: str, status: TaskStatus) -> None:
        """Only the claim's holder settles: a loser never overwrites."""
        if not self.tasks.settle(loop_name, claim_id, status):
            logger.warning("claim was taken over before it settled", extra={"status": status})
