"""The archived form of a finished execution: what the audit reads once Step Functions has forgotten it.

Step Functions keeps a closed Standard execution's history for 90 days; auditors ask months later. The
archive is the DescribeExecution answer plus every GetExecutionHistory event, as JSON with ISO-8601 times,
one object per execution at ``executions/<state machine name>/<execution name>.json``.
"""

from __future__ import annotations

import json
from datetime import datetime

from vidmod_contracts.executions import split_execution_arn
from vidmod_contracts.times import iso_millis

ARCHIVE_FORMAT = 1
ARCHIVE_PREFIX = "executions/"


def archive_prefix(machine: str, name_start: str = "") -> str:
    """Where a state machine's archives (optionally those whose name starts so) are listed."""
    return f"{ARCHIVE_PREFIX}{machine}/{name_start}"


def archive_key(execution_arn: str) -> str:
    """``arn:aws:states:REGION:ACCOUNT:execution:MACHINE:NAME`` → ``executions/MACHINE/NAME.json``."""
    machine, name = split_execution_arn(execution_arn)
    return f"{archive_prefix(machine, name)}.json"


def _iso(value: object) -> object:
    if isinstance(value, datetime):
        return iso_millis(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def build_archive(execution: dict, events: list[dict], archived_at: datetime) -> bytes:
    """The archive document; ``execution`` and ``events`` as boto3 returns them (datetimes allowed)."""
    document = {
        "format": ARCHIVE_FORMAT,
        "archivedAt": archived_at,
        "execution": {k: v for k, v in execution.items() if k != "ResponseMetadata"},
        "events": events,
    }
    return json.dumps(document, default=_iso, separators=(",", ":")).encode()
