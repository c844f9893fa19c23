"""Tamper evidence for the decision record.

The history's ``RecordDecision`` ``TaskScheduled`` event holds the exact DynamoDB item Step Functions wrote
(``taskScheduledEventDetails.parameters``), hash included. So every stored attribute is compared with what
was written, and the hash is recomputed from the history's ``$.final`` with the ASL's formula.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from vidmod.audit.history import iso

RECORD_STATE = "RecordDecision"
# RecordDecision: States.Hash(States.Format('{}|{}|…', $.final.<these>), 'SHA-256')
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
class RecordWrite:
    """The putItem RecordDecision scheduled (the last one, if it was retried)."""

    table: str
    item: dict  # typed DynamoDB attributes, exactly as sent
    at: str
    succeeded: bool = False


def _format(value: object) -> str:
    """How States.Format renders one argument."""
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def record_hash(facts: dict) -> str:
    """The SHA-256 RecordDecision computes, from ``$.final`` (or from a record's own fields)."""
    return hashlib.sha256("|".join(_format(facts.get(name, "")) for name in HASHED_FIELDS).encode()).hexdigest()


def plain(item: dict | None) -> dict | None:
    """A typed DynamoDB item as {name: value} (every attribute RecordDecision writes is a string)."""
    return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}


def record_write(events: list[dict]) -> RecordWrite | None:
    state, write = "", None
    for event in events:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        if event["type"].endswith("StateEntered"):
            state = details.get("name", "")
        elif state != RECORD_STATE:
            continue
        elif event["type"] == "TaskScheduled":
            parameters = json.loads(details.get("parameters") or "{}")
            write = RecordWrite(parameters.get("TableName", ""), parameters.get("Item") or {}, iso(event["timestamp"]))
        elif event["type"] == "TaskSucceeded" and write is not None:
            write.succeeded = True
    return write


def record_key(events: list[dict], execution_arn: str, write: RecordWrite | None) -> dict | None:
    """The decisions-table key: as written, else from the submitted video (to find a record never written)."""
    if write is not None and {"videoUri", "executionName"} <= write.item.keys():
        return {name: write.item[name] for name in ("videoUri", "executionName")}
    started = next((e for e in events if e["type"] == "ExecutionStarted"), None)
    if started is None:
        return None
    video = json.loads(started["executionStartedEventDetails"].get("input") or "{}").get("video") or {}
    if not isinstance(video, dict) or not video.get("bucket") or not video.get("key"):
        return None
    uri = f"s3://{video['bucket']}/{video['key']}"
    return {"videoUri": {"S": uri}, "executionName": {"S": execution_arn.rsplit(":", 1)[-1]}}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "…"


def compare_items(stored: dict, written: dict) -> list[str]:
    """Every attribute: changed, missing or added since the workflow wrote the record."""
    findings = []
    for name in sorted(stored.keys() | written.keys()):
        if name not in stored:
            findings.append(f"record attribute {name} was deleted (written: {_short(plain(written)[name])})")
        elif name not in written:
            findings.append(f"record attribute {name} was added: {_short(plain(stored)[name])}")
        elif stored[name] != written[name]:
            findings.append(
                f"record {name} is {_short(plain(stored)[name])} but the workflow wrote {_short(plain(written)[name])}"
            )
    return findings


def check_history(final: dict, write: RecordWrite) -> list[str]:
    """The history against itself: the item written is $.final, and its hash is $.final's hash."""
    findings = []
    written = plain(write.item) or {}
    for name, value in written.items():
        if name != "recordSha256" and name in final and value != final[name]:
            findings.append(f"history: RecordDecision wrote {name} {_short(value)}, $.final has {_short(final[name])}")
    if written.get("recordSha256") != record_hash(final):
        findings.append("history: the recordSha256 RecordDecision computed is not SHA-256 of $.final's hashed fields")
    return findings


def check_record(
    final: dict, write: RecordWrite | None, stored: dict | None, running: bool
) -> tuple[list[str], list[str]]:
    """(findings, notes): findings mean the record or the history was altered; notes only explain."""
    if write is None:
        if stored is not None:
            return ["a decision record exists but the history never wrote one"], []
        if running:
            return [], ["in progress: no decision recorded yet"]
        return [], ["no decision record: the execution ended before RecordDecision (nothing to record)"]
    findings = check_history(final, write)
    if stored is None:
        if write.succeeded:
            findings.append(f"the decision record written at {write.at} is missing from {write.table} (deleted)")
            return findings, []
        return findings, ["in progress: RecordDecision has not completed" if running else "RecordDecision failed"]
    findings += compare_items(stored, write.item)
    own = plain(stored) or {}
    if own.get("recordSha256") != record_hash(own):
        findings.append("record recordSha256 does not match the record's own hashed fields: the record was altered")
    return findings, []
