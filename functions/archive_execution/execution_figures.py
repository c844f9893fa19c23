"""What a finished execution's history tells the dashboard: the decision it recorded, how long the reviewer
and the moderation job took, the error it failed with (``vidmod_contracts.metrics``).

Read one event at a time while the archive streams, keeping nothing but these figures. Only the run since the
last redrive counts: the earlier run was counted when it ended (and was archived). A decision counts once,
when RecordDecision wrote it. The state names are the contract with statemachine/moderation.asl.json (the
audit reads them too: vidmod/audit/timeline.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from vidmod_contracts.history_events import event_details
from vidmod_contracts.metrics import (
    COUNT,
    DECISIONS,
    EXECUTION_FAILURES,
    MODERATION_JOB,
    REVIEW_LATENCY,
    SECONDS,
    decision_source,
    publish,
)

RECORD_BUILDERS = ("BuildRecord", "AddErrorToRecord")  # states whose output holds $.final
RECORD_STATE = "RecordDecision"
REVIEW_STATE = "HumanReview"
JOB_START_STATE, JOB_CHECK_STATE = "StartModeration", "CheckModeration"
JOB_ENDED = frozenset({"SUCCEEDED", "FAILED"})
# An ending event's error name when its details carry none.
ENDINGS = {"ExecutionFailed": "", "ExecutionTimedOut": "States.Timeout", "ExecutionAborted": "ExecutionAborted"}


def _moment(value: datetime | str) -> datetime:
    """boto3 gives datetimes, a recorded or archived history ISO strings."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))


def _seconds(start: datetime, end: datetime) -> float:
    return round(max(0.0, (end - start).total_seconds()), 3)


@dataclass
class ExecutionFigures:
    decision: tuple[str, str] | None = None  # (outcome, source) recorded in this run
    review_seconds: float | None = None
    moderation_job_seconds: float | None = None
    error: str | None = None  # the execution failed, timed out or was aborted with this error

    def publish(self) -> None:
        """One EMF document per dimension set."""
        if self.decision is not None:
            outcome, source = self.decision
            publish({DECISIONS: (COUNT, 1)}, outcome=outcome, source=source)
        durations = {REVIEW_LATENCY: self.review_seconds, MODERATION_JOB: self.moderation_job_seconds}
        publish({name: (SECONDS, value) for name, value in durations.items() if value is not None})
        if self.error is not None:
            publish({EXECUTION_FAILURES: (COUNT, 1)}, error=self.error)


class FigureReader:
    """Feed every event in order (``read``); ``figures`` is what the run since the last redrive showed."""

    def __init__(self):
        self.figures = ExecutionFigures()
        self.state = ""
        self.entered: dict[str, datetime] = {}  # state → when it was last entered
        self.final: dict = {}
        self.job_started: datetime | None = None

    def read(self, event: dict) -> None:
        kind, details = event["type"], event_details(event)
        if kind == "ExecutionRedriven":
            self.figures = ExecutionFigures()
        elif kind.endswith("StateEntered"):
            self.state = details.get("name", "")
            self.entered[self.state] = _moment(event["timestamp"])
        elif kind.endswith("StateExited") and details.get("name") in RECORD_BUILDERS:
            self.final = json.loads(details.get("output") or "{}").get("final") or self.final
        elif kind == "TaskSucceeded":
            self._task_succeeded(_moment(event["timestamp"]), details)
        elif kind in ENDINGS:
            self.figures.error = details.get("error") or ENDINGS[kind] or kind

    def _task_succeeded(self, at: datetime, details: dict) -> None:
        if self.state == JOB_START_STATE:
            self.job_started = at
        elif self.state == JOB_CHECK_STATE and self.job_started and self.figures.moderation_job_seconds is None:
            if json.loads(details.get("output") or "{}").get("JobStatus") in JOB_ENDED:
                self.figures.moderation_job_seconds = _seconds(self.job_started, at)
        elif self.state == REVIEW_STATE and REVIEW_STATE in self.entered:
            self.figures.review_seconds = _seconds(self.entered[REVIEW_STATE], at)
        elif self.state == RECORD_STATE and self.final.get("decision"):
            self.figures.decision = (self.final["decision"], decision_source(self.final.get("source", "")))
