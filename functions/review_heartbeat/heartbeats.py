"""Keep waiting review tasks alive while their human loop is really in progress.

The callback task has a HeartbeatSeconds limit: if a loop dies without an event (or its event is lost),
heartbeats stop and the workflow's timeout path escalates instead of waiting for a year. Rows whose task can
no longer be resumed are marked EXPIRED so they stop costing a DescribeHumanLoop every round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from vidmod_contracts.human_loops import ALIVE_STATUSES
from vidmod_contracts.review_tasks import TOKEN_GONE, ReviewTask, ReviewTasks

logger = Logger(service="vidmod-review-heartbeat")
# start_human_review stores the token just before it starts the loop: a loop that does not exist yet is
# only dead once the row is older than this.
LOOP_START_GRACE_SECONDS = 900
# The row is written by the Lambda that the callback task invokes: until that invocation returns (its timeout
# is 30 s), an engine may not know the token yet. A refused heartbeat expires only rows older than this.
TOKEN_GRACE_SECONDS = 60


@dataclass
class HeartbeatRound:
    counts: dict[str, int] = field(default_factory=dict)  # outcome → rows: "heartbeat", "expired", a status …
    too_short: int = 0  # rows whose heartbeat limit the schedule cannot meet
    open_since: list[int] = field(default_factory=list)  # createdAt of each review still open after the round

    @property
    def open_reviews(self) -> int:
        return len(self.open_since)

    def oldest_open_seconds(self, now: float) -> float:
        """How long the oldest open review has waited for its verdict; 0 when none is open (a row without
        createdAt, never written by start_human_review, has no age)."""
        started = [created for created in self.open_since if created > 0]
        return round(max(0.0, now - min(started)), 3) if started else 0.0


def fits_schedule(task: ReviewTask, period: int | None) -> bool:
    """A heartbeat limit not above the schedule period times the review out between two heartbeats."""
    return period is None or task.heartbeat_seconds == 0 or task.heartbeat_seconds > period


class Heartbeats:
    def __init__(self, sfn, a2i, tasks: ReviewTasks):
        self.sfn, self.a2i, self.tasks = sfn, a2i, tasks

    def round(self, period: int | None, now: float) -> HeartbeatRound:
        """One scheduled round over every PENDING row; ``period`` is the schedule's (None: not a rate)."""
        result = HeartbeatRound()
        for task in self.tasks.pending():
            result.too_short += not fits_schedule(task, period)
            outcome = self.beat(task, now)
            result.counts[outcome] = result.counts.get(outcome, 0) + 1
            if outcome != "expired":  # still waiting for its verdict (a finished loop's event may be on its way)
                result.open_since.append(task.created_at)
        return result

    def beat(self, task: ReviewTask, now: float) -> str:
        loop_name, token = task.loop_name, task.token
        try:
            status = self.a2i.describe_human_loop(HumanLoopName=loop_name)["HumanLoopStatus"]
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException" and now - task.created_at > LOOP_START_GRACE_SECONDS:
                logger.warning("loop does not exist; row expired", extra={"humanLoopName": loop_name})
                self.tasks.expire(loop_name, token)
                return "expired"
            logger.warning("cannot describe loop", extra={"humanLoopName": loop_name, "error": str(error)})
            return "unknown"
        if status not in ALIVE_STATUSES:
            logger.info("loop finished; waiting for its status-change event", extra={"humanLoopName": loop_name})
            return status
        try:
            self.sfn.send_task_heartbeat(taskToken=token)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in TOKEN_GONE and now - task.created_at > TOKEN_GRACE_SECONDS:
                logger.info("task already ended; row expired", extra={"humanLoopName": loop_name, "code": code})
                self.tasks.expire(loop_name, token)
                return "expired"
            logger.warning("heartbeat refused", extra={"humanLoopName": loop_name, "error": str(error)})
            return "refused"
        return "heartbeat"
