"""The archived form of a finished execution: what the audit reads once Step Functions has forgotten it.

Step Functions keeps a closed Standard execution's history for 90 days; auditors ask months later. The
archive is the DescribeExecution answer plus every GetExecutionHistory event, as JSON with ISO-8601 times.

Keys: ``executions/<state machine name>/<execution name>.json`` when the execution first ends, and
``…/<execution name>.redrive-<n>.json`` each time its n-th redrive ends (a redriven execution ends again, and
each archive is written once, so the first is never replaced). An execution name has no ``.``, so
``…/<execution name>.`` lists exactly one execution's archives; the highest redrive count is the latest, and
its history holds every earlier run's events too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime

from vidmod_contracts.executions import split_execution_arn
from vidmod_contracts.times import iso_millis

ARCHIVE_FORMAT = 1
ARCHIVE_PREFIX = "executions/"
REDRIVE_SUFFIX = re.compile(r"\.redrive-([1-9][0-9]*)\.json$")


def archive_prefix(machine: str, name_start: str = "") -> str:
    """Where a state machine's archives (optionally those whose name starts so) are listed."""
    return f"{ARCHIVE_PREFIX}{machine}/{name_start}"


def archive_key(execution_arn: str, redrive_count: int = 0) -> str:
    """``arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`` → ``executions/MACHINE/NAME.json``, or
    ``executions/MACHINE/NAME.redrive-N.json`` for the end of its N-th redrive."""
    suffix = f"redrive-{redrive_count}.json" if redrive_count else "json"
    return f"{execution_archives_prefix(execution_arn)}{suffix}"


def execution_archives_prefix(execution_arn: str) -> str:
    """The prefix that lists every archive of one execution (and of no other)."""
    machine, name = split_execution_arn(execution_arn)
    return f"{archive_prefix(machine, name)}."


def redrive_count_of(execution_arn: str, key: str) -> int | None:
    """Which run of the execution the key archives (0: the first end), or None if it is not one of its keys."""
    if key == archive_key(execution_arn):
        return 0
    if not key.startswith(execution_archives_prefix(execution_arn)):
        return None
    match = REDRIVE_SUFFIX.search(key)
    if match is None or key != archive_key(execution_arn, int(match.group(1))):
        return None
    return int(match.group(1))


def latest_archive_key(execution_arn: str, keys: Iterable[str]) -> str | None:
    """The archive of the execution's last run among ``keys`` (a listing), or None when it has none."""
    runs = {count: key for key in keys if (count := redrive_count_of(execution_arn, key)) is not None}
    return runs[max(runs)] if runs else None


def _iso(value: object) -> object:
    if isinstance(value, datetime):
        return iso_millis(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(value: object) -> bytes:
    return json.dumps(value, default=_iso, separators=(",", ":")).encode()


def archive_chunks(execution: dict, events: Iterable[dict], archived_at: datetime) -> Iterator[bytes]:
    """The archive document in pieces, one per event, so a history of any length is written with the memory
    of one event; ``execution`` and ``events`` as boto3 returns them (datetimes allowed)."""
    head = {
        "format": ARCHIVE_FORMAT,
        "archivedAt": archived_at,
        "execution": {k: v for k, v in execution.items() if k != "ResponseMetadata"},
    }
    yield _json(head)[:-1] + b',"events":['
    separator = b""
    for event in events:
        yield separator + _json(event)
        separator = b","
    yield b"]}"


def build_archive(execution: dict, events: list[dict], archived_at: datetime) -> bytes:
    """The whole archive document at once (the same bytes as ``archive_chunks``)."""
    return b"".join(archive_chunks(execution, events, archived_at))
