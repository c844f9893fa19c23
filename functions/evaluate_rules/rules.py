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

from vidmod_contracts.taxonomy import CategoryCoverage, Taxonomy

SHIPPED_RULESETS = Path(__file__).parent / "rules"  # <name>.json, chosen by the template's Ruleset parameter
DEFAULT_RULESET = SHIPPED_RULESETS / "ruleset.json"


class Outcome(StrEnum):
    APPROVE = "APPROVE"
    REVIEW = "REVIEW"
    REJECT = "REJECT"


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    review: float | None = Field(ge=0, le=100)  # None: never sent to review for this alone
    reject: float | None = Field(default=None, ge=0, le=100)  # None: never auto-reject, a human decides

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.reject is not None and self.review is not None and self.reject < self.review:
            raise ValueError(f"reject threshold {self.reject} is below review threshold {self.review}")
        return self

    @property
    def active(self) -> bool:
        """Whether a label judged by these thresholds can change a decision (and so must be checked)."""
        return self.review is not None or self.reject is not None


class Coverage(BaseModel):
    """What a detector (recognised by its ModerationModelVersion prefix) can actually see: v7 label names, or a
    category / level-2 name as shorthand for every label under it."""

    model_config = ConfigDict(extra="forbid")

    modelVersionPrefix: str = Field(min_length=1)
    covered: list[str]
    note: str = ""


AuditedOutcome = Literal["APPROVE", "REJECT"]
Consolidation = Literal["majority", "any-reject"]


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
    thresholdsInclusive: bool = True  # a confidence equal to a threshold crosses it; false: only one above it
    # Share of the rules' own decisions, per outcome, that also go to an audit review (0: none; see audit_sample).
    auditSample: dict[AuditedOutcome, float] = Field(default_factory=dict)
    # How several reviewers' answers become one decision: "majority" (a tie rejects) or "any-reject".
    consensus: Consolidation = "majority"

    @model_validator(mode="after")
    def _rates(self) -> RuleSet:
        wrong = {outcome: rate for outcome, rate in self.auditSample.items() if not 0 <= rate <= 1}
        if wrong:
            raise ValueError(f"auditSample rates must be between 0 and 1: {wrong}")
        return self

    def crosses(self, confidence: float, threshold: float | None) -> bool:
        if threshold is None:
            return False
        return confidence >= threshold if self.thresholdsInclusive else confidence > threshold

    def check_names(self, taxonomy: Taxonomy) -> None:
        """Reject typos: a threshold for a name the taxonomy does not know would silently never apply."""
        unknown = [c for c in self.categories if c not in taxonomy.categories]
        unknown += taxonomy.unknown(self.labels)
        for cov in self.coverage:
            unknown += taxonomy.unknown(cov.covered)
        if unknown:
            raise ValueError(f"rule set {self.version} names labels not in taxonomy v{taxonomy.version}: {unknown}")

    def thresholds_for(self, segment: Segment) -> Thresholds:
        return self.limits(segment.name, segment.parentName, segment.category)

    def limits(self, name: str, parent_name: str, category: str) -> Thresholds:
        return self.labels.get(name) or self.labels.get(parent_name) or self.categories.get(category) or self.defaults

    def watched_labels(self, taxonomy: Taxonomy) -> list[str]:
        """The labels whose detection could change a decision: those a detector must see."""
        return [
            label
            for label in taxonomy.labels
            if self.limits(label, taxonomy.places[label].parent_name, taxonomy.places[label].category).active
        ]

    def seen_by(self, model_version: str) -> list[str] | None:
        """What the detector that produced the labels can see, by its longest matching prefix.

        Longest wins so a catch-all (``vidmod-local``: any local model, nothing trusted) can sit next to
        entries for known versions. No entry at all (``None``) means a detector of full coverage (Rekognition)."""
        matching = [cov for cov in self.coverage if model_version.startswith(cov.modelVersionPrefix)]
        if not matching:
            return None
        return max(matching, key=lambda cov: len(cov.modelVersionPrefix)).covered


def load_ruleset(text: str, taxonomy: Taxonomy) -> RuleSet:
    ruleset = RuleSet.model_validate(json.loads(text))
    ruleset.check_names(taxonomy)
    return ruleset


@dataclass
class Reason:
    category: str
    label: str  # for "uncovered": the label not checked, or the category when none of its labels was
    band: str  # "reject" | "review" | "uncovered"
    maxConfidence: float | None = None
    threshold: float | None = None
    segments: int = 0


@dataclass
class Decision:
    outcome: Outcome
    ruleSetVersion: str
    reasons: list[Reason] = field(default_factory=list)
    uncoveredCategories: list[str] = field(default_factory=list)  # a label the rules act on was not checked
    coveredCategories: list[str] = field(default_factory=list)  # every label the rules act on was checked
    coverage: list[CategoryCoverage] = field(default_factory=list)  # per category: labels checked / not checked


_BAND_RANK = {"reject": 0, "review": 1, "uncovered": 2}


def _rank(reason: Reason) -> tuple[int, float, str]:
    """Most severe first: band, then confidence."""
    return (_BAND_RANK[reason.band], -(reason.maxConfidence or 0.0), reason.label)


def _strongest(segments: list[Segment], ruleset: RuleSet) -> list[Reason]:
    """One reason per label that crossed a threshold: its most severe band, with the segments that did."""
    strongest: dict[tuple[str, str], Reason] = {}
    for segment in segments:
        limits = ruleset.thresholds_for(segment)
        if ruleset.crosses(segment.maxConfidence, limits.reject):
            candidate = Reason(segment.category, segment.name, "reject", segment.maxConfidence, limits.reject)
        elif ruleset.crosses(segment.maxConfidence, limits.review):
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
    return sorted(strongest.values(), key=_rank)


def _not_checked(coverage: list[CategoryCoverage]) -> list[Reason]:
    """An ``uncovered`` reason per label the rules act on that the detector cannot see; a category none of
    whose labels it can see is named once (``label`` = the category)."""
    reasons = []
    for entry in coverage:
        if entry.notChecked and not entry.checked:
            reasons.append(Reason(entry.category, entry.category, "uncovered"))
        else:
            reasons += [Reason(entry.category, label, "uncovered") for label in entry.notChecked]
    return reasons


def decide(segments: list[Segment], ruleset: RuleSet, model_version: str, taxonomy: Taxonomy) -> Decision:
    """Reject if any label crosses its reject threshold, review if any crosses its review threshold (or a label
    the rules act on could not be checked and the ``uncovered`` policy says review), approve otherwise. Labels
    not checked are named in the reasons under either policy: an approval says what it did not look at."""
    reasons = _strongest(segments, ruleset)
    coverage = taxonomy.coverage(ruleset.seen_by(model_version), ruleset.watched_labels(taxonomy))
    not_checked = _not_checked(coverage)
    if any(r.band == "reject" for r in reasons):
        outcome = Outcome.REJECT
    elif reasons or (not_checked and ruleset.uncovered == "REVIEW"):
        outcome = Outcome.REVIEW
    else:
        outcome = Outcome.APPROVE
    return Decision(
        outcome,
        ruleset.version,
        reasons + not_checked,
        uncoveredCategories=[entry.category for entry in coverage if entry.notChecked],
        coveredCategories=[entry.category for entry in coverage if not entry.notChecked],
        coverage=coverage,
    )
