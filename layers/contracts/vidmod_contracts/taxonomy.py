"""The Rekognition moderation taxonomy (v7) as data, and placement of any label in it.

Rekognition accounts migrated to v7 in 2024, but stored results, old rule sets and other detectors still
speak pre-v7 names ("Drinking", "Barechested Male"): every label is resolved to its v7 place here, once,
so rules and reviewers only ever see v7.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
class CategoryCoverage:
    """One category's labels split into those a detector can see and those it cannot (taxonomy order)."""

    category: str
    checked: list[str]
    notChecked: list[str]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    places: dict[str, Placement]
    legacy: dict[str, str]

    @property
    def categories(self) -> list[str]:
        return [p.name for p in self.places.values() if p.level == 1]

    @property
    def labels(self) -> list[str]:
        """What coverage is counted in: every name with nothing under it (level-3 labels, level-2 labels without
        children, a category without labels such as Gambling), in taxonomy order. A parent is seen when all of
        its labels are: Rekognition reports a parent with the child it saw."""
        parents = {p.parent_name for p in self.places.values()}
        return [name for name in self.places if name not in parents]

    def labels_under(self, name: str) -> list[str]:
        """The labels ``name`` stands for: itself if it is one, else every label below it (a category or a
        level-2 name is shorthand for all of its labels)."""
        return [label for label in self.labels if name in self.lineage(label)]

    def unknown(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if name not in self.places]

    def coverage(self, seen: Iterable[str] | None, watched: Iterable[str] | None = None) -> list[CategoryCoverage]:
        """Per category, which labels a detector that reports ``seen`` can see (``None``: all of them, as
        Rekognition). ``watched`` limits the answer to the labels a rule set acts on; a category with none of
        them is left out."""
        names = self.labels if seen is None else seen
        visible = {label for name in names for label in self.labels_under(name)}
        wanted = set(self.labels if watched is None else watched)
        split = []
        for category in self.categories:
            labels = [label for label in self.labels_under(category) if label in wanted]
            if labels:
                checked = [label for label in labels if label in visible]
                split.append(CategoryCoverage(category, checked, [label for label in labels if label not in visible]))
        return split

    def lineage(self, name: str) -> list[str]:
        """``name`` and its ancestors, most specific first."""
        names = [name]
        while self.places[names[-1]].parent_name:
            names.append(self.places[names[-1]].parent_name)
        return names

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
