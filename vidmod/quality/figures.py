"""The quality figures of the moderation loop, from decision records and the A2I outputs they name. Pure: no I/O.

Inputs are decision records as plain ``{name: value}`` dicts (every attribute RecordDecision writes is a string)
and the review outputs (A2I ``output.json``, parsed) by ``outputS3Uri``. Every record of the table may be passed:
only those decided in the window ``[since, until)`` (``decidedAt``) are counted, the others are there so that an
audit can find the decision it audited. Records written before audit samples and consensus existed (no
``auditSample``, ``auditOf``, ``auditVerdict``, ``requestedAt``, per-reviewer verdicts) are read as far as they go.

Figures (each documented where it is computed, and in docs/quality.md):

- ``precision``: per category of the segment as shown, the detector's precision by reviewers' segment verdicts;
- ``overturns``: per audited automatic outcome, how often auditors overturned it, with a Wilson interval;
- ``reviewers``: per reviewer, agreement with their panel's consensus and with the audited automatic decision;
- ``latency``: human and audit review latency percentiles;
- ``decisions``: decisions by outcome and source.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from vidmod.quality.window import Window
from vidmod_contracts.review_answers import reviewer_answers
from vidmod_contracts.taxonomy import load_taxonomy
from vidmod_contracts.times import iso_millis

Z95 = 1.959964  # the standard normal's 97.5 % quantile: a two-sided 95 % interval
APPROVE, REJECT = "APPROVE", "REJECT"
DECIDED = (APPROVE, REJECT)
AGREE, OVERTURN, EXPIRED = "AGREE", "OVERTURN", "EXPIRED"
HUMAN, AUDIT = "human", "audit"
TRUE_POSITIVE, FALSE_POSITIVE, WRONG_CATEGORY = "true-positive", "false-positive", "wrong-category"
UNKNOWN_REVIEWER = "(unknown)"


# ---------------------------------------------------------------------------- statistics
def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a binomial proportion (Wilson 1927, JASA 22:209-212).

    With ``p = k / n`` (k successes in n trials) and ``z`` the normal quantile (1.959964 for 95 %)::

        centre     = (p + z² / 2n) / (1 + z² / n)
        half width = z / (1 + z² / n) · √( p (1 − p) / n + z² / 4n² )
        interval   = [centre − half width, centre + half width]

    Unlike the normal approximation ``p ± z √(p (1 − p) / n)``, it stays inside [0, 1] and does not shrink to a
    point at k = 0 or k = n, which matters for the small audit samples a rate is read from. k = 1, n = 10 gives
    [0.0179, 0.4042]. ``n = 0``: no interval (None).
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes in {trials} trials")
    p, n, z2 = successes / trials, trials, z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ascending values, interpolating linearly between the closest ranks (Hyndman
    and Fan's type 7, numpy's default): rank ``h = (n − 1) q``, value ``x[⌊h⌋] + (h − ⌊h⌋)(x[⌊h⌋+1] − x[⌊h⌋])``.
    None for no values."""
    if not ordered:
        return None
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# ---------------------------------------------------------------------------- the figures
@dataclass
class LabelPrecision:
    label: str
    truePositives: int = 0
    falsePositives: int = 0
    wrongCategory: int = 0
    verdicts: int = 0  # tp + fp + wrong category
    precision: float | None = None  # tp / verdicts


@dataclass
class CategoryPrecision:
    """Segment verdicts on the segments shown under ``category`` (the detector's category for them)."""

    category: str
    truePositives: int = 0
    falsePositives: int = 0
    wrongCategory: int = 0
    verdicts: int = 0
    precision: float | None = None
    wrongAs: dict[str, int] = field(default_factory=dict)  # the category reviewers named instead → how often
    labels: list[LabelPrecision] = field(default_factory=list)


@dataclass
class Interval:
    low: float
    high: float


@dataclass
class OverturnRate:
    """Audits of automatic decisions with this ``outcome``, decided in the window."""

    outcome: str
    sampled: int = 0  # automatic decisions with this outcome in the window drawn for an audit
    audited: int = 0  # audits with a verdict: agreed + overturned
    agreed: int = 0
    overturned: int = 0
    expired: int = 0  # audits nobody answered in time: counted apart, not in the rate
    rate: float | None = None  # overturned / audited
    interval: Interval | None = None  # 95 % Wilson score interval of the rate


@dataclass
class ReviewerFigures:
    reviewer: str
    answers: int = 0  # answers given, human and audit reviews
    panelAnswers: int = 0  # of those, on panels of 2 or more answers
    withConsensus: int = 0  # panel answers equal to the panel's decision
    consensusAgreement: float | None = None  # withConsensus / panelAnswers
    auditAnswers: int = 0  # answers to audits of a known automatic decision
    agreedWithAutomatic: int = 0  # of those, equal to the automatic decision
    automaticAgreement: float | None = None  # agreedWithAutomatic / auditAnswers = 1 - their overturn rate


@dataclass
class Latency:
    """Seconds from the review's request (``requestedAt``) to its last answer's ``submissionTime``."""

    kind: str  # human | audit
    count: int = 0
    skipped: int = 0  # reviews without a (usable) requestedAt
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None
    max: float | None = None
    seconds: list[float] = field(default_factory=list, repr=False)  # ascending; for plots, not in to_dict


@dataclass
class DecisionCounts:
    total: int = 0
    byDecision: dict[str, int] = field(default_factory=dict)
    bySource: dict[str, int] = field(default_factory=dict)
    bySourceAndDecision: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class ReviewCounts:
    human: int = 0  # human reviews decided in the window
    audit: int = 0  # audit reviews decided in the window (expired ones included)
    outputsRead: int = 0  # reviews whose output.json was read: every reviewer's answer counted
    outputsMissing: int = 0  # not readable: the record's own detail was used (older records: last reviewer only)


@dataclass
class Figures:
    since: str
    until: str
    decisions: DecisionCounts
    reviews: ReviewCounts
    precision: list[CategoryPrecision]
    overturns: list[OverturnRate]
    reviewers: list[ReviewerFigures]
    latency: list[Latency]
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.decisions.total == 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["window"] = {"since": data.pop("since"), "until": data.pop("until")}
        for latency in data["latency"]:
            del latency["seconds"]
        return {key: data[key] for key in FIGURES_KEYS}


FIGURES_KEYS = ("window", "decisions", "reviews", "precision", "overturns", "reviewers", "latency", "notes")


# ---------------------------------------------------------------------------- reading records
def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return value if isinstance(value, str) else ""


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except (TypeError, ValueError):
        return None


def _object(text: str) -> dict:
    value = _json(text)
    return value if isinstance(value, dict) else {}


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 time (``Z``, an offset, or none: UTC); None when absent or not a time."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def audit_sample(record: Mapping[str, Any]) -> dict:
    """The record's ``auditSample`` ({sampled, rate, draw, outcome}); {} when absent, "" or not JSON."""
    return _object(_text(record, "auditSample"))


@dataclass
class Verdict:
    category: str  # the category of the segment as shown
    label: str
    verdict: str
    said: str = ""  # wrong-category: the category the reviewer named


@dataclass
class Answer:
    workerId: str
    decision: str
    submissionTime: str
    verdicts: list[Verdict]


@dataclass
class Review:
    kind: str  # human | audit
    decision: str  # the panel's (consolidated) decision
    answers: list[Answer]
    requestedAt: str
    submittedAt: datetime | None
    fromOutput: bool
    automatic: str = ""  # audit: the automatic decision audited
    verdict: str = ""  # audit: AGREE | OVERTURN | EXPIRED ("" unknown)


def _category_of(label: str, parent: str = "") -> str:
    return load_taxonomy().place(label, parent).category if label else "Unknown"


def _answers_from_output(output: Mapping[str, Any]) -> list[Answer]:
    """Every reviewer's answer in A2I's output.json; a verdict's category is the shown segment's."""
    shown = (output.get("inputContent") or {}).get("segments") or []
    answers = []
    for answer in reviewer_answers(dict(output)):
        verdicts = []
        for verdict in answer.verdicts:
            segment = shown[verdict.index] if 0 <= verdict.index < len(shown) else {}
            segment = segment if isinstance(segment, dict) else {}
            label = str(segment.get("name") or verdict.label)
            category = str(segment.get("category") or "") or _category_of(label, str(segment.get("parentName") or ""))
            said = verdict.category if verdict.verdict == WRONG_CATEGORY else ""
            verdicts.append(Verdict(category, label, verdict.verdict, said))
        answers.append(Answer(answer.workerId, answer.decision, answer.submissionTime, verdicts))
    return answers


def _verdicts_from_detail(items: object) -> list[Verdict]:
    """Verdicts as the review result carries them ({index, label, verdict, category}); the category shown is the
    label's place in the taxonomy (the result does not carry it)."""
    verdicts = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("verdict") in (TRUE_POSITIVE, FALSE_POSITIVE, WRONG_CATEGORY):
            label = str(item.get("label") or "")
            said = str(item.get("category") or "") if item["verdict"] == WRONG_CATEGORY else ""
            verdicts.append(Verdict(_category_of(label), label, item["verdict"], said))
    return verdicts


def _answers_from_detail(detail: Mapping[str, Any]) -> list[Answer]:
    """The answers the record's review result names: ``reviewers[]`` (with their verdicts since consensus;
    before, only the last reviewer's ``verdicts`` were kept), or one reviewer for the oldest records."""
    reviewers = [r for r in detail.get("reviewers") or [] if isinstance(r, dict)]
    if not reviewers:
        if not detail.get("reviewer") and detail.get("decision") not in DECIDED:
            return []
        reviewers = [{"workerId": detail.get("reviewer"), "decision": detail.get("decision")}]
    answers = [
        Answer(
            str(r.get("workerId") or ""),
            str(r.get("decision") or ""),
            str(r.get("submissionTime") or ""),
            _verdicts_from_detail(r.get("verdicts")),
        )
        for r in reviewers
    ]
    if not any("verdicts" in r for r in reviewers):
        answers[-1].verdicts = _verdicts_from_detail(detail.get("verdicts"))
    return answers


def _review(record: Mapping[str, Any], kind: str, outputs: Mapping[str, Any], audited: Mapping[str, Any]) -> Review:
    detail = _object(_text(record, "detail"))
    output = outputs.get(str(detail.get("outputS3Uri") or ""))
    try:
        answers = _answers_from_output(output) if isinstance(output, dict) else []
    except (TypeError, ValueError, AttributeError):  # an output.json not in A2I's shape: read the record instead
        answers = []
    from_output = bool(answers)
    if not answers:
        answers = _answers_from_detail(detail)
    decision = str(detail.get("decision") or "")
    if decision not in DECIDED and kind == HUMAN:
        decision = _text(record, "decision")
    times = [t for t in (parse_time(a.submissionTime) for a in answers) if t is not None]
    submitted = max(times) if times else parse_time(detail.get("submissionTime"))
    review = Review(kind, decision, answers, str(detail.get("requestedAt") or ""), submitted, from_output)
    if kind == AUDIT:
        original = audited.get(_text(record, "auditOf")) or {}
        review.automatic = str(
            audit_sample(record).get("outcome") or audit_sample(original).get("outcome") or original.get("decision", "")
        )
        review.verdict = _text(record, "auditVerdict")
        if not review.verdict and answers and decision in DECIDED and review.automatic in DECIDED:
            review.verdict = AGREE if decision == review.automatic else OVERTURN  # records before auditVerdict
    return review


def review_kind(record: Mapping[str, Any]) -> str:
    """``audit`` for an audit record, ``human`` for a human review's, "" for any other."""
    source = _text(record, "source")
    if source == AUDIT or _text(record, "auditVerdict"):
        return AUDIT
    return HUMAN if source == HUMAN else ""


def output_uri(record: Mapping[str, Any]) -> str:
    """The A2I output.json a review record names ("" for none)."""
    return str(_object(_text(record, "detail")).get("outputS3Uri") or "") if review_kind(record) else ""


def in_window(record: Mapping[str, Any], window: Window) -> bool:
    decided = parse_time(record.get("decidedAt"))
    return decided is not None and window.since <= decided < window.until


# ---------------------------------------------------------------------------- computing
def _precision(reviews: list[Review]) -> list[CategoryPrecision]:
    categories: dict[str, CategoryPrecision] = {}
    labels: dict[tuple[str, str], LabelPrecision] = {}
    for verdict in (v for review in reviews for answer in review.answers for v in answer.verdicts):
        row = categories.setdefault(verdict.category, CategoryPrecision(verdict.category))
        label = labels.setdefault((verdict.category, verdict.label), LabelPrecision(verdict.label))
        for counts in (row, label):
            counts.verdicts += 1
            if verdict.verdict == TRUE_POSITIVE:
                counts.truePositives += 1
            elif verdict.verdict == FALSE_POSITIVE:
                counts.falsePositives += 1
            else:
                counts.wrongCategory += 1
        if verdict.verdict == WRONG_CATEGORY:
            said = verdict.said or "(not named)"
            row.wrongAs[said] = row.wrongAs.get(said, 0) + 1
    order = {name: i for i, name in enumerate(load_taxonomy().categories)}
    rows = sorted(categories.values(), key=lambda r: (order.get(r.category, len(order)), r.category))
    for row in rows:
        row.precision = _ratio(row.truePositives, row.verdicts)
        row.wrongAs = dict(sorted(row.wrongAs.items(), key=lambda item: (-item[1], item[0])))
        row.labels = sorted(
            (label for (category, _), label in labels.items() if category == row.category),
            key=lambda label: (-label.verdicts, label.label),
        )
        for label in row.labels:
            label.precision = _ratio(label.truePositives, label.verdicts)
    return rows


def _overturns(reviews: list[Review], sampled: Counter) -> list[OverturnRate]:
    rows: dict[str, OverturnRate] = {outcome: OverturnRate(outcome) for outcome in DECIDED}
    for review in reviews:
        if review.kind != AUDIT or not review.automatic or review.verdict not in (AGREE, OVERTURN, EXPIRED):
            continue
        row = rows.setdefault(review.automatic, OverturnRate(review.automatic))
        if review.verdict == EXPIRED:
            row.expired += 1
        else:
            row.audited += 1
            row.agreed += review.verdict == AGREE
            row.overturned += review.verdict == OVERTURN
    for outcome, count in sampled.items():
        rows.setdefault(outcome, OverturnRate(outcome)).sampled = count
    for row in rows.values():
        row.rate = _ratio(row.overturned, row.audited)
        interval = wilson_interval(row.overturned, row.audited)
        row.interval = Interval(*interval) if interval else None
    return [rows[o] for o in DECIDED] + [rows[o] for o in sorted(set(rows) - set(DECIDED))]


def _reviewers(reviews: list[Review]) -> list[ReviewerFigures]:
    rows: dict[str, ReviewerFigures] = {}
    for review in reviews:
        answered = [a for a in review.answers if a.decision in DECIDED]
        panel = len(answered) >= 2 and review.decision in DECIDED
        audit = review.kind == AUDIT and review.automatic in DECIDED
        for answer in review.answers:
            name = answer.workerId or UNKNOWN_REVIEWER
            row = rows.setdefault(name, ReviewerFigures(name))
            row.answers += 1
            if answer.decision not in DECIDED:
                continue
            if panel:
                row.panelAnswers += 1
                row.withConsensus += answer.decision == review.decision
            if audit:
                row.auditAnswers += 1
                row.agreedWithAutomatic += answer.decision == review.automatic
    for row in rows.values():
        row.consensusAgreement = _ratio(row.withConsensus, row.panelAnswers)
        row.automaticAgreement = _ratio(row.agreedWithAutomatic, row.auditAnswers)
    return sorted(rows.values(), key=lambda r: (-r.answers, r.reviewer))


def _latency(reviews: list[Review], kind: str) -> Latency:
    row = Latency(kind)
    for review in reviews:
        if review.kind != kind or review.submittedAt is None:
            continue  # no answer (an expired audit): not a finished review
        requested = parse_time(review.requestedAt)
        if requested is None or requested > review.submittedAt:
            row.skipped += 1
            continue
        row.seconds.append(round((review.submittedAt - requested).total_seconds(), 3))
    row.seconds.sort()
    row.count = len(row.seconds)
    row.p50, row.p90, row.p99 = (percentile(row.seconds, q) for q in (0.5, 0.9, 0.99))
    row.max = row.seconds[-1] if row.seconds else None
    return row


def _counts(records: list[Mapping[str, Any]]) -> DecisionCounts:
    counts = DecisionCounts(total=len(records))
    by_source: dict[str, Counter] = {}
    for record in records:
        decision, source = _text(record, "decision") or "(none)", _text(record, "source") or "(none)"
        by_source.setdefault(source, Counter())[decision] += 1
    counts.byDecision = dict(sorted(sum(by_source.values(), Counter()).items()))
    counts.bySource = {s: sum(c.values()) for s, c in sorted(by_source.items())}
    counts.bySourceAndDecision = {s: dict(sorted(c.items())) for s, c in sorted(by_source.items())}
    return counts


def compute(
    records: Iterable[Mapping[str, Any]], outputs: Mapping[str, Any], window: Window, notes: Iterable[str] = ()
) -> Figures:
    """The figures of the records decided in ``window``. ``outputs``: parsed output.json by ``outputS3Uri``
    (absent or None: unreadable, the record's own detail is used instead)."""
    everything = list(records)
    by_name = {_text(r, "executionName"): r for r in everything if review_kind(r) != AUDIT}
    chosen = [r for r in everything if in_window(r, window)]
    reviews, seen = [], set()
    for record in chosen:
        kind = review_kind(record)
        if not kind:
            continue
        key = output_uri(record) or f"{_text(record, 'videoUri')}/{_text(record, 'executionName')}/{kind}"
        if key in seen:  # the same review named twice
            continue
        seen.add(key)
        reviews.append(_review(record, kind, outputs, by_name))
    sampled = Counter(
        str(audit_sample(r).get("outcome") or "")
        for r in chosen
        if review_kind(r) != AUDIT and audit_sample(r).get("sampled") is True
    )
    sampled.pop("", None)
    undated = sum(parse_time(r.get("decidedAt")) is None for r in everything)
    all_notes = list(notes)
    if undated:
        all_notes.append(f"{undated} record(s) without a readable decidedAt: not counted")
    unnamed = sum(r.kind == AUDIT and not r.automatic for r in reviews)
    if unnamed:
        all_notes.append(f"{unnamed} audit record(s) name no audited decision: not in the overturn rates")
    return Figures(
        since=iso_millis(window.since),
        until=iso_millis(window.until),
        decisions=_counts(chosen),
        reviews=ReviewCounts(
            human=sum(r.kind == HUMAN for r in reviews),
            audit=sum(r.kind == AUDIT for r in reviews),
            outputsRead=sum(r.fromOutput for r in reviews),
            outputsMissing=sum(not r.fromOutput and bool(r.answers) for r in reviews),
        ),
        precision=_precision(reviews),
        overturns=_overturns(reviews, sampled),
        reviewers=_reviewers(reviews),
        latency=[_latency(reviews, HUMAN), _latency(reviews, AUDIT)],
        notes=all_notes,
    )
