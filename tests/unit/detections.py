"""Rekognition moderation detections as GetContentModeration returns them (TIMESTAMPS aggregation)."""

from __future__ import annotations


def det(name: str, parent: str, level: int, confidence: float, ts: int) -> dict:
    """One detection of ``name`` (under ``parent``, at taxonomy ``level``) at ``ts`` milliseconds."""
    return {
        "Timestamp": ts,
        "ModerationLabel": {"Name": name, "ParentName": parent, "TaxonomyLevel": level, "Confidence": confidence},
    }
