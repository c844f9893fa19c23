"""Golden audit files: real histories, one per outcome (approved, rejected, human_review, failed, timed_out),
recorded from the local engine by tests/workflow with the decision record and the evidence files each points
at, and the report each must produce.

A changed report format shows up as a diff of ``<name>.report.json`` in review. ``VIDMOD_UPDATE_GOLDEN=1``
rewrites the files; without it any difference fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidmod.audit.history import all_events, normalized
from vidmod.audit.timeline import AuditReport, build_report

FIXTURES = Path(__file__).resolve().with_name("fixtures")
OUTCOMES = ("approved", "rejected", "human_review", "failed", "timed_out")
UPDATE = os.environ.get("VIDMOD_UPDATE_GOLDEN") == "1"


def recording_path(name: str) -> Path:
    return FIXTURES / f"{name}.history.json"


def report_path(name: str) -> Path:
    return FIXTURES / f"{name}.report.json"


def save_recording(name: str, arn: str, events: list[dict], record: dict | None, objects: dict[str, str]) -> None:
    """``objects``: s3:// URI → text of each evidence file the report reads."""
    document = {"executionArn": arn, "events": normalized(events), "record": record, "objects": objects}
    recording_path(name).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_recording(name: str) -> dict:
    return json.loads(recording_path(name).read_text(encoding="utf-8"))


def report_from(recording: dict) -> AuditReport:
    objects = recording["objects"]

    def fetch(bucket: str, key: str) -> bytes | None:
        text = objects.get(f"s3://{bucket}/{key}")
        return None if text is None else text.encode()

    return build_report(recording["executionArn"], recording["events"], recording["record"], fetch)


def as_json(report: AuditReport) -> dict:
    return json.loads(json.dumps(report.to_dict(), default=str))


def check_report(name: str, report: AuditReport) -> None:
    """Compare with (or, when updating, write) ``<name>.report.json``."""
    actual = as_json(report)
    path = report_path(name)
    if UPDATE:
        path.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    expected = json.loads(path.read_text(encoding="utf-8"))
    assert actual == expected, f"the audit report for {name} changed; review it and rerun with VIDMOD_UPDATE_GOLDEN=1"


def shape(value: object) -> object:
    """Keys only (recursively): what a report looks like, regardless of the run's ids and times."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def check_run(name: str, workflow, report: AuditReport) -> None:
    """A real run (``report`` audited live) against the golden files of ``name``: its recording must give the
    same report, and that report the golden one's shape. ``VIDMOD_UPDATE_GOLDEN=1`` records the run anew."""
    objects = {}
    for check in report.evidence.values():
        if check.get("status") == "verified":
            bucket, _, key = check["uri"].removeprefix("s3://").partition("/")
            objects[check["uri"]] = workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    key = {"videoUri": {"S": report.record["videoUri"]}, "executionName": {"S": report.record["executionName"]}}
    record = workflow.ddb.get_item(TableName=workflow.stack.decisions_table, Key=key)["Item"]
    events = all_events(workflow.sfn, report.executionArn)
    fresh = report_from({"executionArn": report.executionArn, "events": events, "record": record, "objects": objects})
    assert fresh.integrity == [] and fresh.final == report.final and fresh.segments == report.segments
    if UPDATE:
        save_recording(name, report.executionArn, events, record, objects)
        check_report(name, fresh)
    expected = json.loads(report_path(name).read_text(encoding="utf-8"))
    assert shape(as_json(fresh)) == shape(expected), "report format changed: rerun with VIDMOD_UPDATE_GOLDEN=1"
