"""Read a reviewer's answer from A2I's output.json (the shape ui/moderation-review.liquid.html submits).

Element names in the template are index based (``seg-<i>-tp``), never built from label text, so a
label like "Drugs & Tobacco" cannot break the mapping; index i refers to ``inputContent.segments[i]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

VERDICTS = {"tp": "true-positive", "fp": "false-positive", "wrong": "wrong-category"}


class InvalidReviewOutput(Exception):
    """The output does not carry exactly one overall decision."""


@dataclass
class SegmentVerdict:
    index: int
    label: str
    verdict: str
    category: str = ""


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


def _checked(answer: dict, name: str) -> bool:
    value = answer.get(name)
    return isinstance(value, dict) and value.get("value") is True


def overall_decision(answer: dict) -> str:
    approve, reject = _checked(answer, "decision-approve"), _checked(answer, "decision-reject")
    if approve == reject:
        raise InvalidReviewOutput("the review must carry exactly one overall decision (approve or reject)")
    return "APPROVE" if approve else "REJECT"


def segment_verdicts(answer: dict, segments: list[dict]) -> list[SegmentVerdict]:
    verdicts = []
    for index, segment in enumerate(segments):
        for suffix, verdict in VERDICTS.items():
            if _checked(answer, f"seg-{index}-{suffix}"):
                category = answer.get(f"seg-{index}-category", "") if suffix == "wrong" else ""
                verdicts.append(SegmentVerdict(index, segment.get("name", ""), verdict, str(category)))
                break
    return verdicts


def parse_output(output: dict, output_s3_uri: str, output_sha256: str = "") -> ReviewResult:
    """One or more reviewers: any reject rejects (the conservative reading of a split panel).

    The result goes into the execution history, the decision record and the vidmod.decision event, so it
    names reviewers by workerId only: identityData (``sub``, ``issuer``) stays in output.json."""
    answers = output.get("humanAnswers") or []
    if not answers:
        raise InvalidReviewOutput(f"{output_s3_uri} has no humanAnswers")
    segments = (output.get("inputContent") or {}).get("segments", [])
    reviewers = []
    for answer in answers:
        content = answer.get("answerContent") or {}
        reviewers.append(
            {
                "workerId": answer.get("workerId", ""),
                "decision": overall_decision(content),
                "acceptanceTime": answer.get("acceptanceTime", ""),
                "submissionTime": answer.get("submissionTime", ""),
                "timeSpentInSeconds": float(answer.get("timeSpentInSeconds", 0.0)),
                "identityProviderType": ((answer.get("workerMetadata") or {}).get("identityData") or {}).get(
                    "identityProviderType", ""
                ),
            }
        )
    decision = "REJECT" if any(r["decision"] == "REJECT" for r in reviewers) else "APPROVE"
    last = answers[-1]
    content = last.get("answerContent") or {}
    return ReviewResult(
        decision=decision,
        reviewer=",".join(r["workerId"] for r in reviewers),
        humanLoopName=output.get("humanLoopName", ""),
        outputS3Uri=output_s3_uri,
        acceptanceTime=last.get("acceptanceTime", ""),
        submissionTime=last.get("submissionTime", ""),
        timeSpentInSeconds=float(last.get("timeSpentInSeconds", 0.0)),
        verdicts=segment_verdicts(content, segments),
        comment=str(content.get("comment", ""))[:2000],
        reviewers=reviewers,
        outputSha256=output_sha256,
    )
