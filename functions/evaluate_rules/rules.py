"""Moderation rules as data: per-category (and per-label) review/reject thresholds.

A rule set is a versioned JSON document (``rules/ruleset.json`` ships with the function; a deployment can
point ``RULESET_S3_URI`` at its own). Every decision names the rule-set version and the labels that caused
it, so an auditor can replay it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from segments import Segment
from taxonomy import Taxonomy

DEFAULT_RULESET = Path(__file__).parent / "rules" / "ruleset.json"


class Outcome(StrEnum):
    APPROVE = "APPROVE"
    REVIEW = "REVIEW"
    REJECT = "REJECT"


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review: float = Field(ge=0, le=100)
    reject: float | None = Field(default=None, ge=0, le=100)  # None: never auto-reject, a human decides

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.reject is not None and self.reject < self.review:
            raise ValueError(f"reject threshold {self.reject} is below review threshold {self.review}")
        return self


class Coverage(BaseModel):
    """What a detector (recognised by its ModerationModelVersion prefix) can actually see."""

    model_config = ConfigDict(extra="forbid")

    modelVersionPrefix: str = Field(min_length=1)
    covered: list[str]
    note: str = ""


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    mergeGapMillis: int = Field(default=2000, ge=0)
    defaults: Thresholds
    categories: dict[str, Thresholds] = {}
    labels: dict[str, Thresholds] = {}
    coverage: list[Coverage] = []
    uncovered: Literal["REVIEW", "IGNORE"] = "REVIEW"

    def check_names(self, taxonomy: Taxonomy) -> None:
        """Reject typos: a threshold for a name the taxonomy does not know would silently never apply."""
        unknown = [c for c in self.categories if c not in taxonomy.categories]
        unknown += [n for n in self.labels if n not in taxonomy.places]
        for cov in self.coverage:
            unknown += [c for c in cov.covered if c not in taxonomy.categories]
        if unknown:
            raise ValueError(f"rule set {self.version} names labels not in taxonomy v{taxonomy.version}: {unknown}")

    def thresholds_for(self, segment: Segment) -> Thresholds:
        return (
            self.labels.get(segment.name)
            or self.labels.get(segment.parentName)
            or self.categories.get(segment.category)
            or self.defaults
        )

    def uncovered_categories(self, model_version: str, taxonomy: Taxonomy) -> list[str]:
        """Categories the detector that produced the labels cannot see, by its longest matching prefix.

        Longest wins so a catch-all (``vidmod-local``: any local model, nothing trusted) can sit next to
        entries for known versions. No entry at all means a detector of full coverage (Rekognition)."""
        matching = [cov for cov in self.coverage if model_version.startswith(cov.modelVersionPrefix)]
        if not matching:
            return []
        best = max(matching, key=lambda cov: len(cov.modelVersionPrefix))
        return [c for c in taxonomy.categories if c not in best.covered]


def load_ruleset(text: str, taxonomy: Taxonomy) -> RuleSet:
    ruleset = RuleSet.model_validate(json.loads(text))
    ruleset.check_names(taxonomy)
    return ruleset


@dataclass
class Reason:
    category: str
    label: str
    band: str  # "reject" | "review" | "uncovered"
    maxConfidence: float | None = None
    threshold: float | None = None
    segments: int = 0


@dataclass
class Decision:
    outcome: Outcome
    ruleSetVersion: str
    reasons: list[Reason] = field(default_factory=list)
    uncoveredCategories: list[str] = field(default_factory=list)
    coveredCategories: list[str] = field(default_factory=list)  # the rest of the top level, in taxonomy order


_BAND_RANK = {"reject": 0, "review": 1, "uncovered": 2}


def _rank(reason: Reason) -> tuple[int, float, str]:
    """Most severe first: band, then confidence."""
    return (_BAND_RANK[reason.band], -(reason.maxConfidence or 0.0), reason.label)


def decide(segments: list[Segment], ruleset: RuleSet, model_version: str, taxonomy: Taxonomy) -> Decision:
    """Reject if any label crosses its reject threshold, review if any crosses its review threshold
    (or a category could not be checked and the policy says review), approve otherwise."""
    strongest: dict[tuple[str, str], Reason] = {}
    for segment in segments:
        limits = ruleset.thresholds_for(segment)
        if limits.reject is not None and segment.maxConfidence >= limits.reject:
            candidate = Reason(segment.category, segment.name, "reject", segment.maxConfidence, limits.reject)
        elif segment.maxConfidence >= limits.review:
            candidate = Reason(segment.category, segment.name, "review", segment.maxConfidence, limits.review)
        else:
            continue
        key = (segment.category, segment.name)
        previous = strongest.get(key)
        candidate.segments = 1 + (previous.segments if previous else 0)
        if previous is None or _rank(candidate) < _rank(previous):
            strongest[key] = candidate
        else:
            previous.segments = candidate.segments

    reasons = sorted(strongest.values(), key=_rank)
    uncovered = ruleset.uncovered_categories(model_version, taxonomy)
    if any(r.band == "reject" for r in reasons):
        outcome = Outcome.REJECT
    elif reasons or (uncovered and ruleset.uncovered == "REVIEW"):
        outcome = Outcome.REVIEW
    else:
        outcome = Outcome.APPROVE
    if uncovered and ruleset.uncovered == "REVIEW":
        reasons += [Reason(category, category, "uncovered") for category in uncovered]
    covered = [category for category in taxonomy.categories if category not in uncovered]
    return Decision(outcome, ruleset.version, reasons, uncovered, covered)
