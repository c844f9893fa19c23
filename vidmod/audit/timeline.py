"""History events (+ the stored record and the evidence files) → an audit report: who/what/when/why.

Pure: everything read from AWS is passed in, so a recorded history gives the same report every time
(tests/audit golden files). The state names below are the audit's contract with
statemachine/moderation.asl.json and statemachine/audit.asl.json (an audit of a sampled automatic decision: its
review is ``AuditReview``, its input names the audited record and the rules' decision; BuildRecord and
RecordDecision have the moderation's names).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from vidmod.audit.evidence import (
    Fetch,
    annotate_segments,
    check_file,
    cross_check,
    output_shape,
    reviewer_answers,
    segments_shape,
)
from vidmod.audit.history import iso
from vidmod.audit.record import check_record, hash_version, plain, record_write
from vidmod.audit.sampling import check_sample
from vidmod_contracts.history_events import event_details
from vidmod_contracts.review_answers import InvalidReviewOutput, consensus_rule

STATE_OUTPUTS = {  # state → the path its output adds
    "ValidateInput": "job",
    "WaitForModerationSlot": "admission",
    "StartModeration": "moderation",
    "StoreLabelsPage": "labels",
    "EvaluateRules": "decision",
    "HumanReview": "review",
    "AuditReview": "review",
}
# States whose output holds $.final (the last one read wins): BuildRecord builds it and AddErrorToRecord adds a
# failure's error. Histories recorded before BuildRecord existed have it from the outcome state itself.
RECORD_BUILDERS = ("BuildRecord", "AddErrorToRecord")
OUTCOME_STATES = ("DecidedByRules", "DecidedByHuman", "Escalated", "Failed", "FailedAfterRules", "FailedValidation")
FINAL_STATES = {*RECORD_BUILDERS, *OUTCOME_STATES}
RULE_FACTS = (
    "outcome",
    "ruleSetVersion",
    "reasons",
    "reasonsTruncated",
    "uncoveredCategories",
    "segmentCount",
    "evidenceSha256",
    "segmentsRef",
)
ENDINGS = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"}


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
    historySource: str = "GetExecutionHistory"
    startedAt: str = ""
    stoppedAt: str = ""
    submitted: dict = field(default_factory=dict)
    admission: dict = field(default_factory=dict)  # the moderation slot: ticket, queuedAt, grantedAt, queuedSeconds
    detector: dict = field(default_factory=dict)
    rules: dict = field(default_factory=dict)
    segments: list[dict] = field(default_factory=list)  # segments.json, each with the reviewers' verdicts
    review: dict | None = None  # the verdict the workflow acted on ($.review)
    answers: list[dict] = field(default_factory=list)  # every reviewer's answers, from A2I's output.json
    evidence: dict = field(default_factory=dict)  # "segments" / "reviewOutput" → EvidenceCheck
    final: dict = field(default_factory=dict)
    failure: dict | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    integrity: list[str] = field(default_factory=list)  # findings; empty means consistent
    notes: list[str] = field(default_factory=list)  # explanations that are not findings
    record: dict | None = None
    recordHashVersion: str = ""  # the version recordSha256 was checked under ("" when no record was written)
    auditSample: dict = field(default_factory=dict)  # the record's audit sample, its draw recomputed ("check")
    auditOf: dict | None = None  # an audit execution: the decision it audited and its verdict
    audits: list[dict] = field(default_factory=list)  # an audited decision: its audits (sources.audit fills it)

    def to_dict(self) -> dict:
        return asdict(self)


def _read_events(report: AuditReport, events: list[dict]) -> dict[str, dict]:
    """Fill the timeline, submission, final facts and failure; returns each state's output slice."""
    outputs: dict[str, dict] = {}
    for event in events:
        details, kind, time = event_details(event), event["type"], iso(event["timestamp"])
        if kind == "ExecutionStarted":
            data = json.loads(details.get("input") or "{}")
            report.startedAt = time
            report.submitted = {"video": data.get("video"), "trigger": data.get("trigger"), "at": time}
            if isinstance(data.get("audited"), dict):  # an audit execution: what it audits, and the rules' why
                outputs["audited"] = data["audited"]
                outputs["EvaluateRules"] = data.get("decision") or {}
        elif kind.endswith("StateEntered"):
            report.timeline.append(TimelineEntry(time, details["name"], "entered"))
        elif kind.endswith("StateExited"):
            name = details["name"]
            data = json.loads(details.get("output") or "{}")
            if name in STATE_OUTPUTS and STATE_OUTPUTS[name] in data:
                outputs[name] = data[STATE_OUTPUTS[name]]
            if name in FINAL_STATES and "final" in data:
                report.final = data["final"]
        elif kind in {"TaskFailed", "TaskTimedOut", "LambdaFunctionFailed"}:
            state = report.timeline[-1].state if report.timeline else ""
            note = f"{details.get('error', '')}: {details.get('cause', '')}"[:500]
            report.timeline.append(TimelineEntry(time, state, kind, note))
        elif kind in ENDINGS:
            report.status = kind.removeprefix("Execution").upper().replace("TIMEDOUT", "TIMED_OUT")
            report.stoppedAt = time
            if kind != "ExecutionSucceeded":
                report.failure = {"error": details.get("error", ""), "cause": details.get("cause", ""), "at": time}
            report.timeline.append(TimelineEntry(time, "", kind))
    return outputs


def final_facts(events: list[dict]) -> dict:
    """$.final as the history built it (BuildRecord, or the outcome state in older histories); {} if none yet."""
    report = AuditReport(executionArn="", status="")
    _read_events(report, events)
    return report.final


def _check_evidence(report: AuditReport, fetch: Fetch) -> None:
    """Re-read segments.json and output.json; hash findings first, then the answers' cross-check."""
    checks, segments, output = [], [], None
    ref = report.rules.get("segmentsRef") or {}
    if ref.get("bucket") and ref.get("key"):
        uri = f"s3://{ref['bucket']}/{ref['key']}"
        check, document = check_file("segments.json", uri, report.rules.get("evidenceSha256"), fetch, segments_shape)
        checks.append(("segments", check))
        segments = (document or {}).get("segments") or []
    if report.review and report.review.get("outputS3Uri"):
        uri, expected = report.review["outputS3Uri"], report.review.get("outputSha256")
        check, output = check_file("A2I output.json", uri, expected, fetch, output_shape)
        checks.append(("reviewOutput", check))
        if check.status == "not recorded":
            report.notes.append("A2I output.json: no outputSha256 in the verdict; its answers are only cross-checked")
    for name, check in checks:
        report.evidence[name] = check.to_dict()
        report.integrity += [finding] if (finding := check.finding()) else []
    if output is not None and report.review is not None:
        report.answers = reviewer_answers(output)
        try:
            rule = consensus_rule(output)
        except InvalidReviewOutput as error:
            report.integrity.append(f"A2I output.json: {error}")
        else:
            report.integrity += cross_check(report.review, report.answers, rule)
    report.segments = annotate_segments(segments, output, report.answers)


def build_report(
    execution_arn: str,
    events: list[dict],
    record: dict | None,
    fetch: Fetch,
    history_source: str = "GetExecutionHistory",
) -> AuditReport:
    """``record``: the stored DynamoDB item (typed, as GetItem returns it) or None."""
    report = AuditReport(executionArn=execution_arn, status="RUNNING", historySource=history_source)
    outputs = _read_events(report, events)
    job, labels = outputs.get("ValidateInput", {}), outputs.get("StoreLabelsPage", {})
    if "audited" in outputs:
        audited = outputs["audited"]
        report.auditOf = {
            "executionName": audited.get("executionName", ""),
            "executionArn": audited.get("executionArn", ""),
            "automaticDecision": audited.get("decision", ""),
            "decidedAt": audited.get("decidedAt", ""),
            "auditVerdict": report.final.get("auditVerdict", ""),
        }
        labels = {"modelVersion": audited.get("modelVersion")}  # the audited execution's detector facts
        outputs.setdefault("StartModeration", {"jobId": audited.get("jobId")})
    report.submitted["video"] = job.get("video") or report.submitted.get("video")
    # ValidateInput completes the trigger (type "manual" when started by hand); the record keeps that one
    report.submitted["trigger"] = job.get("trigger") or report.submitted.get("trigger")
    report.admission = outputs.get("WaitForModerationSlot", {})
    report.detector = {
        "jobId": outputs.get("StartModeration", {}).get("jobId"),
        "modelVersion": labels.get("modelVersion"),
        "statusMessage": labels.get("statusMessage"),
        "detections": labels.get("detections"),
        "pages": labels.get("pages"),
        "videoMetadata": labels.get("videoMetadata"),
    }
    if "EvaluateRules" in outputs:
        report.rules = {name: outputs["EvaluateRules"].get(name) for name in RULE_FACTS}
    report.review = outputs.get("HumanReview") or outputs.get("AuditReview")
    report.record = plain(record)
    write = record_write(events)
    report.recordHashVersion = hash_version(plain(write.item)) if write is not None else ""
    findings, notes = check_record(report.final, write, record, report.status == "RUNNING")
    report.integrity += findings
    report.notes += notes
    video, outcome = report.submitted.get("video"), report.rules.get("outcome")
    report.auditSample, findings, notes = check_sample(report.final, video, outcome)
    report.integrity += findings
    report.notes += notes
    _check_evidence(report, fetch)
    return report
