"""One spelling for every timestamp vidmod writes or compares: UTC, milliseconds, ``Z``.

It is the format Step Functions gives ``$$.Execution.StartTime`` and A2I gives ``submissionTime``
(``2026-11-25T11:31:27.357Z``), so decision records, archives and audit reports read alike everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime


def iso_millis(moment: datetime | str) -> str:
    """A datetime (naive means UTC) or an ISO-8601 string (``Z`` or an offset) in the one format."""
    if not isinstance(moment, datetime):
        moment = datetime.fromisoformat(str(moment).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso_millis(datetime.now(UTC))
