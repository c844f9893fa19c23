"""Read reviewers' answers from A2I's output.json (the shape ui/moderation-review.liquid.html submits).

complete_human_review turns them into the verdict the workflow acts on; the audit re-reads the same file and
checks that verdict against it. Element names in the template are index based (``seg-<i>-tp``), never built
from label text, so a label like "Drugs & Tobacco" cannot break the mapping; index i refers to
``inputContent.segments[i]``. A box counts as checked only when its value is the JSON ``true``.

With several reviewers per video (the flow definition's TaskCount, the template's ``ReviewersPerVideo``) their
answers are consolidated by the rule set's ``consensus`` rule, which start_human_review puts in the loop's
InputContent (so output.json carries it back in ``inputContent.consensus``; absent: ``majority``).
``majority`` approves only when more reviewers approve than reject (a tie rejects); ``any-reject`` rejects
when any reviewer rejects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from vidmod_contracts.times import iso_millis

VERDICTS = {"tp": "true-positive", "fp": "false-positive", "wrong": "wrong-category"}
APPROVE, REJECT, INVALID = "APPROVE", "REJECT", "INVALID"
COMMENT_CHARS = 2000
MAJORITY, ANY_REJECT = "majority", "any-reject"
CONSENSUS_RULES = (MAJORITY, ANY_REJECT)


class InvalidReviewOutput(Exception):
    """The output does not carry exactly one overall decision per reviewer, repeats a reviewer, or names a
    consensus rule this code does not know."""


@dataclass
class SegmentVerdict:
    index: int
    label: str
    verdict: str
    category: str = ""


@dataclass
class ReviewerAnswer:
    """One reviewer's answer as the template submitted it; ``decision`` is INVALID without exactly one choice."""

    workerId: str
    decision: str
    acceptanceTime: str
    submissionTime: str
    timeSpentInSeconds: float
    identityProviderType: str
    comment: str
    verdicts: list[SegmentVerdict]


@dataclass
class ReviewResult:
    decision: str
    reviewer: str
    humanLoopName: str
    outputS3Uri: str
    acceptanceTime: str
    submissionTime: str
    timeSpentInSeconds: float
    verdicts: list[SegmentVerdict] = field(default_factory=list)  # the last reviewer's (as with one reviewer)
    comment: str = ""  # the last reviewer's
    reviewers: list[dict] = field(default_factory=list)  # every answer, in submission order
    outputSha256: str = ""  # hex SHA-256 of output.json as read: lets the audit prove the answers are unchanged
    # {"rule", "answers", "agreeing" (answers equal to ``decision``), "unanimous"}
    agreement: dict = field(default_factory=dict)
    requestedAt: str = ""  # the human loop's creation time, when known ("" otherwise)

    def to_dict(self) -> dict:
        return asdict(self)


def checked(content: dict, name: str) -> bool:
    value = content.get(name)
    return isinstance(value, dict) and value.get("value") is True


def overall_decision(content: dict) -> str:
    approve, reject = checked(content, "decision-approve"), checked(content, "decision-reject")
    if approve == reject:
        return INVALID
    return APPROVE if approve else REJECT


def segment_verdicts(content: dict, segments: list[dict]) -> list[SegmentVerdict]:
    verdicts = []
    for index, segment in enumerate(segments):
        suffix = next((s for s in VERDICTS if checked(content, f"seg-{index}-{s}")), None)
        if suffix:
            category = str(content.get(f"seg-{index}-category", "")) if suffix == "wrong" else ""
            verdicts.append(SegmentVerdict(index, segment.get("name", ""), VERDICTS[suffix], category))
    return verdicts


def reviewer_answers(output: dict) -> list[ReviewerAnswer]:
    """Every reviewer's answer, in output order."""
    shown = (output.get("inputContent") or {}).get("segments") or []
    answers = []
    for answer in output.get("humanAnswers") or []:
        content = answer.get("answerContent") or {}
        identity = (answer.get("workerMetadata") or {}).get("identityData") or {}
        answers.append(
            ReviewerAnswer(
                workerId=answer.get("workerId", ""),
                decision=overall_decision(content),
                acceptanceTime=answer.get("acceptanceTime", ""),
                submissionTime=answer.get("submissionTime", ""),
                timeSpentInSeconds=float(answer.get("timeSpentInSeconds", 0.0)),
                identityProviderType=identity.get("identityProviderType", ""),
                comment=str(content.get("comment", ""))[:COMMENT_CHARS],
                verdicts=segment_verdicts(content, shown),
            )
        )
    return answers


def consensus_rule(output: dict) -> str:
    """The consolidation rule the loop was started with (``inputContent.consensus``; older loops: majority)."""
    content = output.get("inputContent")
    rule = content.get("consensus", MAJORITY) if isinstance(content, dict) else MAJORITY
    if rule not in CONSENSUS_RULES:
        raise InvalidReviewOutput(f"unknown consensus rule {rule!r} (expected one of {', '.join(CONSENSUS_RULES)})")
    return rule


def consolidated_decision(decisions: Iterable[str], rule: str = MAJORITY) -> str:
    """The panel's decision from each reviewer's, by ``rule``: ``majority`` approves only when more reviewers
    approve than reject (a tie rejects); ``any-reject`` rejects when any reviewer rejects."""
    decisions = list(decisions)
    if rule == ANY_REJECT:
        return REJECT if REJECT in decisions else APPROVE
    if rule == MAJORITY:
        return APPROVE if decisions.count(APPROVE) > decisions.count(REJECT) else REJECT
    raise InvalidReviewOutput(f"unknown consensus rule {rule!r} (expected one of {', '.join(CONSENSUS_RULES)})")


def agreement(decisions: list[str], decision: str, rule: str) -> dict:
    """How many answers agree with the consolidated ``decision``."""
    agreeing = decisions.count(decision)
    return {"rule": rule, "answers": len(decisions), "agreeing": agreeing, "unanimous": agreeing == len(decisions)}


def _requested_at(moment: object) -> str:
    """The loop's creation time in vidmod's one spelling (as given when it cannot be read)."""
    if not moment:
        return ""
    try:
        return iso_millis(moment)
    except (TypeError, ValueError):
        return str(moment)


def parse_output(output: dict, output_s3_uri: str, output_sha256: str = "", requested_at: object = "") -> ReviewResult:
    """The verdict of one or more reviewers, consolidated by the loop's consensus rule; refuses an answer without
    exactly one overall decision, a reviewer who answered twice, and an unknown rule.

    ``requested_at``: the human loop's creation time (the status event's ``creationTime``), when known.
    The result goes into the execution history, the decision record and the vidmod.decision event, so it
    names reviewers by workerId only: identityData (``sub``, ``issuer``) stays in output.json."""
    answers = reviewer_answers(output)
    if not answers:
        raise InvalidReviewOutput(f"{output_s3_uri} has no humanAnswers")
    if any(a.decision == INVALID for a in answers):
        raise InvalidReviewOutput("the review must carry exactly one overall decision (approve or reject)")
    workers = [a.workerId for a in answers]
    if repeated := sorted({w for w in workers if workers.count(w) > 1}):
        raise InvalidReviewOutput(f"a reviewer answered more than once: {', '.join(map(repr, repeated))}")
    rule = consensus_rule(output)
    decisions = [a.decision for a in answers]
    decision = consolidated_decision(decisions, rule)
    last = answers[-1]
    return ReviewResult(
        decision=decision,
        reviewer=",".join(a.workerId for a in answers),
        humanLoopName=output.get("humanLoopName", ""),
        outputS3Uri=output_s3_uri,
        acceptanceTime=last.acceptanceTime,
        submissionTime=last.submissionTime,
        timeSpentInSeconds=last.timeSpentInSeconds,
        verdicts=last.verdicts,
        comment=last.comment,
        reviewers=[
            {
                "workerId": a.workerId,
                "decision": a.decision,
                "acceptanceTime": a.acceptanceTime,
                "submissionTime": a.submissionTime,
                "timeSpentInSeconds": a.timeSpentInSeconds,
                "identityProviderType": a.identityProviderType,
                "comment": a.comment,
                "verdicts": [asdict(v) for v in a.verdicts],
            }
            for a in answers
        ],
        outputSha256=output_sha256,
        agreement=agreement(decisions, decision, rule),
        requestedAt=_requested_at(requested_at),
    )
