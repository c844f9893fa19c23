"""The time window of the quality figures: ``30m``, ``12h``, ``7d``, ``2w`` (that long before now) or an ISO time.

The CLI (``--since`` / ``--until``) and the portal (``?since=`` / ``?until=``) accept the same spellings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"(\d{1,6})([mhdw])")
DEFAULT_SINCE = "7d"
SPELLINGS = "a duration like 30m, 12h, 7d, 2w, or an ISO time like 2026-12-01 or 2026-12-01T08:00:00Z"


@dataclass(frozen=True)
class Window:
    """Decisions count when ``since <= decidedAt < until`` (both timezone-aware, UTC)."""

    since: datetime
    until: datetime


def parse_moment(text: str, now: datetime) -> datetime:
    """A duration before ``now``, or an ISO-8601 time (no offset: UTC). ValueError names what is accepted."""
    text = (text or "").strip()
    found = DURATION.fullmatch(text)
    if found:
        try:
            return now - timedelta(**{UNITS[found.group(2)]: int(found.group(1))})
        except OverflowError:
            raise ValueError(f"{text!r} reaches before the year 1") from None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use {SPELLINGS}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_window(since: str | None, until: str | None = None, now: datetime | None = None) -> Window:
    """``since`` defaults to 7d, ``until`` to now; ``since`` must be before ``until``."""
    now = now or datetime.now(UTC)
    start = parse_moment(since or DEFAULT_SINCE, now)
    end = parse_moment(until, now) if until else now
    if start >= end:
        raise ValueError("the window is empty: since must be before until")
    return Window(start, end)
