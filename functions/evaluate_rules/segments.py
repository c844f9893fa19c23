"""Merge per-timestamp detections into per-label time segments.

Rekognition reports a label at every sampled timestamp; reviewers need intervals ("Violence 0:12-0:31"),
not hundreds of rows, and rules should judge a label by its strongest moment.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from taxonomy import Taxonomy


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


def merge_segments(detections: Iterable[dict], taxonomy: Taxonomy, gap_millis: int) -> list[Segment]:
    """Group detections by v7 label and merge those closer than ``gap_millis`` into one segment."""
    by_label: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    places = {}
    for detection in detections:
        label = detection["ModerationLabel"]
        place = taxonomy.place(label["Name"], label.get("ParentName", ""), label.get("TaxonomyLevel"))
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
