"""History events → an audit report: who/what/when/why, and whether the stored record still agrees.

The state names below are the audit's contract with statemachine/moderation.asl.json.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

STATE_OUTPUTS = {  # state → the path its output adds
    "ValidateInput": "job",
    "StartModeration": "moderation",
    "StoreLabelsPage": "labels",
    "EvaluateRules": "decision",
    "HumanReview": "review",
}
FINAL_STATES = {"DecidedByRules", "DecidedByHuman", "Escalated", "Failed", "FailedValidation"}
HASHED_FIELDS = [
    "executionArn",
    "videoUri",
    "versionId",
    "decision",
    "source",
    "reviewer",
    "ruleSetVersion",
    "evidenceSha256",
]


@dataclass
class TimelineEntry:
    time: str
    state: str
    event: str
    note: str = ""


@dataclass
class AuditReport:
    executionArn: str
    status: str
    submitted: dict = field(default_factory=dict)
    detector: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)
    review: dict | None = None
    final: dict = field(default_factory=dict)
    failure: dict | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)  # findings; empty means consistent
    record: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _time(event: dict) -> str:
    stamp = event["timestamp"]
    return stamp.isoformat() if isinstance(stamp, datetime) else str(stamp)


def _details(event: dict) -> dict:
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})


def record_hash(facts: dict) -> str:
    """The same SHA-256 the RecordDecision state computes with States.Hash(States.Format(...))."""
    return hashlib.sha256("|".join(str(facts.get(name, "")) for name in HASHED_FIELDS).encode()).hexdigest()


def build_report(execution_arn: str, events: list[dict], record: dict | None) -> AuditReport:
    report = AuditReport(executionArn=execution_arn, status="RUNNING", record=record)
    outputs: dict[str, dict] = {}
    for event in events:
        details, kind = _details(event), event["type"]
        if kind == "ExecutionStarted":
            data = json.loads(details.get("input") or "{}")
            report.submitted = {"video": data.get("video"), "trigger": data.get("trigger"), "at": _time(event)}
        elif kind.endswith("StateEntered"):
            report.timeline.append(TimelineEntry(_time(event), details["name"], "entered"))
        elif kind.endswith("StateExited"):
            name = details["name"]
            data = json.loads(details.get("output") or "{}")
            if name in STATE_OUTPUTS and STATE_OUTPUTS[name] in data:
                outputs[name] = data[STATE_OUTPUTS[name]]
            if name in FINAL_STATES and "final" in data:
                report.final = data["final"]
        elif kind in {"TaskFailed", "TaskTimedOut", "LambdaFunctionFailed"}:
            state = report.timeline[-1].state if report.timeline else ""
            report.timeline.append(
                TimelineEntry(
                    _time(event), state, kind, f"{details.get('error', '')}: {details.get('cause', '')}"[:500]
                )
            )
        elif kind in {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}:
            report.status = kind.removeprefix("Execution").upper().replace("TIMEDOUT", "TIMED_OUT")
            if kind != "ExecutionSucceeded":
                report.failure = {
                    "error": details.get("error", ""),
                    "cause": details.get("cause", ""),
                    "at": _time(event),
                }
            report.timeline.append(TimelineEntry(_time(event), "", kind))
    job, labels, decision = (
        outputs.get("ValidateInput", {}),
        outputs.get("StoreLabelsPage", {}),
        outputs.get("EvaluateRules"),
    )
    report.submitted["video"] = job.get("video") or report.submitted.get("video")
    report.detector = {
        "jobId": outputs.get("StartModeration", {}).get("jobId"),
        "modelVersion": labels.get("modelVersion"),
        "statusMessage": labels.get("statusMessage"),
        "detections": labels.get("detections"),
        "pages": labels.get("pages"),
        "videoMetadata": labels.get("videoMetadata"),
    }
    if decision:
        report.rules = {
            k: decision.get(k)
            for k in (
                "outcome",
                "ruleSetVersion",
                "reasons",
                "uncoveredCategories",
                "segmentCount",
                "evidenceSha256",
                "segmentsRef",
            )
        }
    report.review = outputs.get("HumanReview")
    report.integrity = check_integrity(report.final, record)
    return report


def check_integrity(final: dict, record: dict | None) -> list[str]:
    """Compare the history's final facts with the stored decision record and its hash."""
    if not final:
        return [] if record is None else ["a decision record exists but the history decided nothing"]
    if record is None:
        return ["no decision record found for this execution"]
    findings = [
        f"record {name} is {record.get(name)!r} but the history says {final.get(name)!r}"
        for name in [*HASHED_FIELDS, "decidedAt"]
        if str(record.get(name, "")) != str(final.get(name, ""))
    ]
    if record.get("recordSha256") != record_hash(record):
        findings.append("recordSha256 does not match the record's own fields: the record was altered")
    if record.get("recordSha256") != record_hash(final):
        findings.append("recordSha256 does not match the facts in the execution history")
    return findings
