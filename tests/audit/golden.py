"""Golden audit files: real histories, one per outcome (approved, rejected, human_review, failed, timed_out),
recorded from the local engine by tests/workflow with the decision record and the evidence files each points
at, and the report each must produce.

A changed report format shows up as a diff of ``<name>.report.json`` in review. ``VIDMOD_UPDATE_GOLDEN=1``
rewrites the files; without it any difference fails the test.
"""

from __future__ import annotations

import json
import os
import re
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


# What differs from run to run, masked before a fresh run's report is compared with the golden one value by
# value: times (also as A2I's output path), UUIDs (version ids, tokens), hex digests and the execution names
# built from them, durations, and the admission ticket (the order the module's runs happened to start in).
RUN_SPECIFIC_KEYS = {"timeSpentInSeconds", "queuedSeconds", "waitedSeconds", "seconds", "ticket"}
RUN_SPECIFIC = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
    r"|\d{4}/\d\d/\d\d/\d\d/\d\d/\d\d"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-f]{12,}"
    r"|\d+(?:\.\d+)? s\b"
)
RUN_SPECIFIC_FIELDS = re.compile(r'("(?:' + "|".join(sorted(RUN_SPECIFIC_KEYS)) + r')":\s?)[\d.]+')  # in JSON text


def comparable(value: object, key: str = "") -> object:
    """``value`` with what differs between runs masked, every element kept (lists element by element)."""
    if isinstance(value, dict):
        return {name: comparable(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [comparable(item, key) for item in value]
    if isinstance(value, str):
        return RUN_SPECIFIC.sub("…", RUN_SPECIFIC_FIELDS.sub(r"\1…", value))
    if isinstance(value, int | float) and key in RUN_SPECIFIC_KEYS:
        return "…"
    return value


def check_run(name: str, workflow, report: AuditReport) -> None:
    """A real run (``report`` audited live) against the golden files of ``name``: its recording must give the
    same report, and that report the golden one's values, element by element (what differs between runs masked:
    ``comparable``). ``VIDMOD_UPDATE_GOLDEN=1`` records the run anew."""
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
    differences = list(differ(comparable(as_json(fresh)), comparable(expected)))
    assert not differences, f"the {name} report changed ({differences[:5]}): rerun with VIDMOD_UPDATE_GOLDEN=1"


def differ(actual: object, expected: object, path: str = "$"):
    """Where two JSON values differ: (path, actual, expected), element by element."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key in sorted(actual.keys() | expected.keys()):
            yield from differ(actual.get(key, "<missing>"), expected.get(key, "<missing>"), f"{path}.{key}")
    elif isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        for index, (left, right) in enumerate(zip(actual, expected, strict=True)):
            yield from differ(left, right, f"{path}[{index}]")
    elif actual != expected:
        yield (path, actual, expected)
