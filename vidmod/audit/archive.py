"""Read the archived copy of an execution (Step Functions forgets a finished history after 90 days).

``functions/archive_execution`` writes ``vidmod_contracts.archive.build_archive`` once per end of an execution
(``archive_key`` for the first, one more key per redrive: ``vidmod.audit.sources`` reads the latest):
``{"format": 1, "execution": <DescribeExecution>, "events": [...], "archivedAt": ...}``
with ISO-8601 times. ``parse_archive`` is the one place that reads that format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from vidmod.audit.history import iso, normalized
from vidmod_contracts.archive import ARCHIVE_FORMAT, archive_key

MISSING = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}
COMPARED_FIELDS = ("executionArn", "stateMachineArn", "name", "status", "startDate", "stopDate", "input", "output")


@dataclass
class Archived:
    key: str
    execution: dict
    events: list[dict]  # timestamps as ISO strings, like history.normalized()
    archivedAt: str
    overwrites: int = 0  # later versions of the key: archive_execution writes once, so any is an alteration


def parse_archive(key: str, body: bytes) -> Archived:
    try:
        document = json.loads(body)
    except ValueError as error:
        raise ValueError(f"{key} is not an execution archive (not JSON: {error})") from error
    if not (
        isinstance(document, dict)
        and isinstance(document.get("execution") or {}, dict)
        and isinstance(events := document.get("events") or [], list)
        and all(isinstance(e, dict) for e in events)
    ):
        raise ValueError(f"{key} is not an execution archive (altered?): expected an object with execution and events")
    if document.get("format", ARCHIVE_FORMAT) != ARCHIVE_FORMAT:
        raise ValueError(f"{key}: archive format {document.get('format')!r} is not supported by this audit")
    return Archived(
        key=key,
        execution=document.get("execution") or {},
        events=normalized(document.get("events") or []),
        archivedAt=str(document.get("archivedAt", "")),
    )


def _versions(s3, bucket: str, key: str) -> list[str]:
    """The key's object versions, oldest first (Object Lock keeps every one of them).

    S3 lists a key's versions newest first; LastModified has whole seconds, so two writes in one second tie
    and only the listing order tells them apart (hence reversed, then a stable sort)."""
    versions = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        versions += [v for v in page.get("Versions", []) if v["Key"] == key]
    return [v["VersionId"] for v in sorted(reversed(versions), key=lambda v: v["LastModified"])]


def read_archive(s3, bucket: str, execution_arn: str, key: str | None = None) -> Archived | None:
    """The first version written at ``key`` (default: the archive of the execution's first end; a redriven
    execution has one more per redrive). A later version would be a forgery: the bucket is versioned, so Object
    Lock keeps the original but not from being shadowed. None when there is no archive (not finished yet, or
    never archived)."""
    key = key or archive_key(execution_arn)
    try:
        versions = _versions(s3, bucket, key)
        if not versions:
            return None
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=versions[0])["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in MISSING:
            return None
        raise
    archived = parse_archive(key, body)
    archived.overwrites = len(versions) - 1
    return archived


def overwrite_findings(archived: Archived) -> list[str]:
    if not archived.overwrites:
        return []
    return [
        f"archive {archived.key} was written {archived.overwrites + 1} times (archive_execution writes once): "
        "the first version was read"
    ]


MAX_FINDINGS = 20


def _plain(value: object) -> object:
    return iso(value) if isinstance(value, datetime) else value


def compare(archived: Archived, live_events: list[dict], live_execution: dict | None) -> list[str]:
    """Differences between the archive and the live history: any one means one of them was altered."""
    findings = []
    live = normalized(live_events)
    if len(live) != len(archived.events):
        findings.append(f"archive {archived.key} holds {len(archived.events)} events, the live history {len(live)}")
    for mine, theirs in zip(archived.events, live, strict=False):
        if mine != theirs:
            fields = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            findings.append(f"archive event {theirs.get('id')} differs from the live history in {', '.join(fields)}")
    if len(findings) > MAX_FINDINGS:
        findings[MAX_FINDINGS:] = [f"… and {len(findings) - MAX_FINDINGS} more archive differences"]
    for name in COMPARED_FIELDS if live_execution else ():
        ours, theirs = archived.execution.get(name), live_execution.get(name)
        if name.endswith("Date") and ours and theirs:
            ours, theirs = iso(ours), iso(theirs)
        if ours != _plain(theirs):
            findings.append(f"archived execution {name} is {ours!r} but DescribeExecution says {_plain(theirs)!r}")
    return findings
