"""Merge per-timestamp detections into per-label time segments.

Rekognition reports a label at every sampled timestamp; reviewers need intervals ("Violence 0:12-0:31"),
not hundreds of rows, and rules should judge a label by its strongest moment.

Rekognition also reports every label together with its ancestors at the same timestamp ("Kissing on the
Lips" arrives with "Non-Explicit Nudity of Intimate parts and Kissing"). Only the most specific label of
each moment is kept: otherwise the parent's category threshold would judge the child's evidence first and
per-label rules (``labels`` in the rule set) could never take effect. A parent reported on its own (no
more specific label at that moment) is kept and judged by its own rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from vidmod_contracts.taxonomy import Placement, Taxonomy


@dataclass
class Segment:
    name: str
    parentName: str
    category: str
    taxonomyLevel: int
    startMillis: int
    endMillis: int
    maxConfidence: float
    detections: int

    def to_dict(self) -> dict:
        return asdict(self)


def _interval(detection: dict) -> tuple[int, int]:
    """A detection's span: SEGMENTS aggregation gives start/end, TIMESTAMPS gives one instant."""
    start = detection.get("StartTimestampMillis", detection.get("Timestamp", 0))
    end = detection.get("EndTimestampMillis", detection.get("Timestamp", start))
    return int(start), int(max(start, end))


def _place(detection: dict, taxonomy: Taxonomy) -> Placement:
    label = detection["ModerationLabel"]
    return taxonomy.place(label["Name"], label.get("ParentName", ""), label.get("TaxonomyLevel"))


def _ancestors(place: Placement) -> set[str]:
    return {place.parent_name, place.category} - {place.name, ""}


def most_specific(detections: Iterable[dict], taxonomy: Taxonomy) -> list[tuple[dict, Placement]]:
    """Placed detections without those whose label is an ancestor of another label seen at the same moment."""
    placed = [(detection, _place(detection, taxonomy)) for detection in detections]
    ancestors_at: dict[tuple[int, int], set[str]] = defaultdict(set)
    for detection, place in placed:
        ancestors_at[_interval(detection)] |= _ancestors(place)
    return [(d, place) for d, place in placed if place.name not in ancestors_at[_interval(d)]]


def merge_segments(detections: Iterable[dict], taxonomy: Taxonomy, gap_millis: int) -> list[Segment]:
    """Group the most specific detections by v7 label and merge those closer than ``gap_millis``."""
    by_label: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    places = {}
    for detection, place in most_specific(detections, taxonomy):
        label = detection["ModerationLabel"]
        key = (place.name, place.parent_name)
        places[key] = place
        start, end = _interval(detection)
        by_label[key].append((start, end, float(label.get("Confidence", 0.0))))

    segments: list[Segment] = []
    for key, spans in by_label.items():
        place = places[key]
        current: Segment | None = None
        for start, end, confidence in sorted(spans):
            if current is not None and start - current.endMillis <= gap_millis:
                current.endMillis = max(current.endMillis, end)
                current.maxConfidence = max(current.maxConfidence, confidence)
                current.detections += 1
                continue
            current = Segment(
                place.name, place.parent_name, place.category, place.level, start, end, round(confidence, 3), 1
            )
            segments.append(current)
    segments.sort(key=lambda s: (s.startMillis, s.taxonomyLevel, s.name))
    return segments
