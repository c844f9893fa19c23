"""Read reviewers' answers from A2I's output.json (the shape ui/moderation-review.liquid.html submits).

complete_human_review turns them into the verdict the workflow acts on; the audit re-reads the same file and
checks that verdict against it. Element names in the template are index based (``seg-<i>-tp``), never built
from label text, so a label like "Drugs & Tobacco" cannot break the mapping; index i refers to
``inputContent.segments[i]``. A box counts as checked only when its value is the JSON ``true``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

VERDICTS = {"tp": "true-positive", "fp": "false-positive", "wrong": "wrong-category"}
APPROVE, REJECT, INVALID = "APPROVE", "REJECT", "INVALID"
COMMENT_CHARS = 2000


class InvalidReviewOutput(Exception):
    """The output does not carry exactly one overall decision per reviewer."""


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
    verdicts: list[SegmentVerdict] = field(default_factory=list)
    comment: str = ""
    reviewers: list[dict] = field(default_factory=list)
    outputSha256: str = ""  # hex SHA-256 of output.json as read: lets the audit prove the answers are unchanged

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


def consolidated_decision(decisions: Iterable[str]) -> str:
    """The panel's decision from each reviewer's: any reject rejects (the conservative reading of a split panel)."""
    return REJECT if REJECT in set(decisions) else APPROVE


def parse_output(output: dict, output_s3_uri: str, output_sha256: str = "") -> ReviewResult:
    """The verdict of one or more reviewers; refuses an answer without exactly one overall decision.

    The result goes into the execution history, the decision record and the vidmod.decision event, so it
    names reviewers by workerId only: identityData (``sub``, ``issuer``) stays in output.json."""
    answers = reviewer_answers(output)
    if not answers:
        raise InvalidReviewOutput(f"{output_s3_uri} has no humanAnswers")
    if any(a.decision == INVALID for a in answers):
        raise InvalidReviewOutput("the review must carry exactly one overall decision (approve or reject)")
    last = answers[-1]
    return ReviewResult(
        decision=consolidated_decision(a.decision for a in answers),
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
            }
            for a in answers
        ],
        outputSha256=output_sha256,
    )
