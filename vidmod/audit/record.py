"""Tamper evidence for the decision record.

The history's ``RecordDecision`` ``TaskScheduled`` event holds the exact DynamoDB item Step Functions wrote
(``taskScheduledEventDetails.parameters``), hash and hash version included. So every stored attribute is
compared with what was written, and the hash is recomputed from the history's ``$.final`` (and from the stored
record's own fields) under the record's own ``hashVersion`` (``vidmod_contracts.record_hash``, the code
SealRecord runs; a record from before versions existed is version "1").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from vidmod.audit.history import iso
from vidmod_contracts.history_events import event_details
from vidmod_contracts.record_hash import FIELDS, record_hash

RECORD_STATE = "RecordDecision"


@dataclass
class RecordWrite:
    """The putItem RecordDecision scheduled (the last one, if it was retried)."""

    table: str
    item: dict  # typed DynamoDB attributes, exactly as sent
    at: str
    succeeded: bool = False


def hash_version(item: dict) -> str:
    """The hash version of a record ({name: value}): its ``hashVersion``, "1" for records written before it."""
    version = item.get("hashVersion", "1")
    return version if isinstance(version, str) else repr(version)


def _hash_finding(facts: dict, item: dict, where: str, what: str) -> str | None:
    """None if ``item``'s recordSha256 is ``facts``' hash under ``item``'s version; else what is wrong."""
    version = hash_version(item)
    if version not in FIELDS:
        return (
            f"{where} hashVersion {_short(version)} is not a hash version this audit knows "
            f"({', '.join(FIELDS)}): its recordSha256 cannot be checked"
        )
    if item.get("recordSha256") != record_hash(facts, version):
        return what.format(version=version)
    return None


def plain(item: dict | None) -> dict | None:
    """A typed DynamoDB item as {name: value} (every attribute RecordDecision writes is a string)."""
    return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}


def record_write(events: list[dict]) -> RecordWrite | None:
    state, write = "", None
    for event in events:
        details = event_details(event)
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
    what = "history: the recordSha256 RecordDecision wrote is not the version {version} hash of $.final"
    if finding := _hash_finding(final, written, "history: RecordDecision's", what):
        findings.append(finding)
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
    what = "record recordSha256 is not the version {version} hash of the record's own fields: the record was altered"
    if finding := _hash_finding(own, own, "record", what):
        findings.append(finding)
    return findings, []
