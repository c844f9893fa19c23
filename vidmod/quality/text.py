"""How the quality figures read as text, the same in ``vidmod metrics`` and on the portal's /metrics page."""

from __future__ import annotations


def share(value: float | None) -> str:
    """A proportion as a percentage; "–" when there is none (nothing to divide by)."""
    return "–" if value is None else f"{value:.1%}"


def share_of(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part} of {whole})" if whole else "–"


def interval(low: float, high: float) -> str:
    return f"{low:.1%} – {high:.1%}"


def duration(seconds: float | None) -> str:
    """Seconds below 2 minutes, minutes below 2 hours, then hours."""
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
