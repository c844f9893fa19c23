"""The Rekognition moderation taxonomy (v7) as data, and placement of any label in it.

Rekognition accounts migrated to v7 in 2024, but stored results, old rule sets and other detectors still
speak pre-v7 names ("Drinking", "Barechested Male"): every label is resolved to its v7 place here, once,
so rules and reviewers only ever see v7.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TAXONOMY_FILE = Path(__file__).with_name("taxonomy_v7.json")


@dataclass(frozen=True)
class Placement:
    """Where a label sits in the v7 taxonomy."""

    name: str
    parent_name: str  # "" for top-level categories, as Rekognition reports it
    category: str  # the level-1 ancestor
    level: int


@dataclass(frozen=True)
class Taxonomy:
    version: str
    places: dict[str, Placement]
    legacy: dict[str, str]

    @property
    def categories(self) -> list[str]:
        return [p.name for p in self.places.values() if p.level == 1]

    def place(self, name: str, parent_name: str = "", level: int | None = None) -> Placement:
        """Place a label; unknown labels stay visible under their parent's category instead of vanishing.

        ``level`` disambiguates names that changed level in v7 ("Explicit Nudity" was level 1, is now 2).
        """
        known = self.places.get(name)
        if known is not None and (level is None or known.level == level or name not in self.legacy):
            return known
        if name in self.legacy:
            return self.places[self.legacy[name]]
        parent = self.place(parent_name) if parent_name else None
        if parent is not None and parent.category != "Unknown":
            return Placement(name, parent.name, parent.category, min(parent.level + 1, 3))
        return Placement(name, parent_name, "Unknown", 1 if not parent_name else 2)


@cache
def load_taxonomy(path: Path = TAXONOMY_FILE) -> Taxonomy:
    data = json.loads(path.read_text(encoding="utf-8"))
    places: dict[str, Placement] = {}
    for category, level2 in data["categories"].items():
        places[category] = Placement(category, "", category, 1)
        for l2, l3s in level2.items():
            places[l2] = Placement(l2, category, category, 2)
            for l3 in l3s:
                places[l3] = Placement(l3, l2, category, 3)
    unknown_targets = sorted(set(data["legacy"].values()) - places.keys())
    if unknown_targets:
        raise ValueError(f"legacy labels map to names missing from the taxonomy: {unknown_targets}")
    return Taxonomy(version=data["version"], places=places, legacy=data["legacy"])
