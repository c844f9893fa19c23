"""Golden audit files: one real history (recorded from the local engine by tests/workflow/test_audit.py,
with the decision record and the evidence files it points at) and the report it must produce.

A changed report format shows up as a diff of ``<name>.report.json`` in review. ``VIDMOD_UPDATE_GOLDEN=1``
rewrites the files; without it any difference fails the test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidmod.audit.history import normalized
from vidmod.audit.timeline import AuditReport, build_report

FIXTURES = Path(__file__).resolve().with_name("fixtures")
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
