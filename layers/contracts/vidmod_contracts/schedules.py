"""EventBridge ``rate(...)`` schedules: the template's HeartbeatSchedule, run locally and checked by the
heartbeat Lambda against the review task's HeartbeatSeconds."""

from __future__ import annotations

import re

RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """The period of a ``rate(...)`` schedule in seconds; None for anything else (cron has no single period)."""
    match = RATE.fullmatch(expression.strip())
    if not match:
        return None
    return int(match[1]) * UNIT_SECONDS[match[2].rstrip("s")]
