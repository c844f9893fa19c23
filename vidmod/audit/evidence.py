"""The evidence a decision rests on, re-read from S3 and checked against the hashes in the history.

``segments.json`` is what the rules judged (``evidenceSha256`` = SHA-256 of its bytes, computed by
evaluate_rules); A2I's ``output.json`` holds every reviewer's answers (``outputSha256`` in the verdict, when
complete_human_review records it). Without that hash the answers are still cross-checked with the verdict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from vidmod_contracts import review_answers

Fetch = Callable[[str, str], bytes | None]  # (bucket, key) → bytes, or None when the object is gone


@dataclass
class EvidenceCheck:
    what: str
    uri: str
    status: str  # verified | altered | missing | not recorded | unreadable | none
    expected: str = ""
    actual: str = ""

    def finding(self) -> str | None:
        if self.status == "altered":
            return f"{self.what} {self.uri} was altered: SHA-256 {self.actual}, the history recorded {self.expected}"
        if self.status in {"missing", "unreadable"}:
            return f"{self.what} {self.uri} is {self.status}: the evidence cannot be checked"
        return None

    def to_dict(self) -> dict:
        return asdict(self)


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _objects(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _segments(value: object) -> bool:
    """Segment objects whose fields the report reads have the types evaluate_rules writes."""
    return _objects(value) and all(
        all(_number(s.get(k, 0)) for k in ("startMillis", "endMillis"))
        and all(isinstance(s.get(k, ""), str) for k in ("name", "parentName", "category"))
        for s in value
    )


def segments_shape(document: object) -> bool:
    """What evaluate_rules writes: ``{"segments": [{...}, ...], ...}``."""
    return isinstance(document, dict) and _segments(document.get("segments") or [])


def output_shape(document: object) -> bool:
    """A2I's output.json: ``inputContent.segments`` and ``humanAnswers`` lists of objects, answers objects."""
    if not isinstance(document, dict) or not isinstance(content := document.get("inputContent") or {}, dict):
        return False
    answers = document.get("humanAnswers") or []
    return (
        _segments(content.get("segments") or [])
        and _objects(answers)
        and all(
            isinstance(a.get("answerContent") or {}, dict) and _number(a.get("timeSpentInSeconds", 0)) for a in answers
        )
    )


def check_file(
    what: str, uri: str, expected: str | None, fetch: Fetch, shape: Callable[[object], bool]
) -> tuple[EvidenceCheck, dict | None]:
    """Fetch, hash and parse one evidence file; one that is not JSON of the expected ``shape`` is unreadable
    (a tampered file is reported, it must not crash the audit)."""
    body = fetch(*split_uri(uri))
    if body is None:
        return EvidenceCheck(what, uri, "missing", expected or ""), None
    actual = hashlib.sha256(body).hexdigest()
    status = "not recorded" if not expected else "verified" if actual == expected else "altered"
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not shape(document):
        return EvidenceCheck(what, uri, "unreadable", expected or "", actual), None
    return EvidenceCheck(what, uri, status, expected or "", actual), document


def reviewer_answers(output: dict) -> list[dict]:
    """Each reviewer's answers as the report shows them; verdict index i refers to ``inputContent.segments[i]``."""
    return [
        {
            "workerId": answer.workerId,
            "decision": answer.decision,
            "acceptanceTime": answer.acceptanceTime,
            "submissionTime": answer.submissionTime,
            "timeSpentInSeconds": answer.timeSpentInSeconds,
            "comment": answer.comment,
            "verdicts": [asdict(verdict) for verdict in answer.verdicts],
        }
        for answer in review_answers.reviewer_answers(output)
    ]


def cross_check(review: dict, answers: list[dict], rule: str = review_answers.MAJORITY) -> list[str]:
    """The verdict the workflow acted on must be what output.json says the reviewers answered, consolidated by the
    consensus rule the loop was started with (``review_answers.consensus_rule``)."""
    if not answers:
        return ["A2I output.json holds no answers, but the history has a verdict"]
    last, decisions = answers[-1], [a["decision"] for a in answers]
    decision = review_answers.consolidated_decision(decisions, rule)
    said = {
        "reviewer": ",".join(a["workerId"] for a in answers),
        "decision": decision,
        "agreement": review_answers.agreement(decisions, decision, rule),
        "acceptanceTime": last["acceptanceTime"],
        "submissionTime": last["submissionTime"],
        "timeSpentInSeconds": last["timeSpentInSeconds"],
        "comment": last["comment"],
        "verdicts": last["verdicts"],
    }
    recorded = dict(review)
    if "timeSpentInSeconds" in recorded:
        recorded["timeSpentInSeconds"] = float(recorded["timeSpentInSeconds"])
    return [
        f"A2I output.json says {name} {said[name]!r} but the verdict in the history says {recorded.get(name)!r}"
        for name in said
        if name in recorded and said[name] != recorded[name]
    ]


def _range(start: int, end: int) -> str:
    def clock(millis: int) -> str:
        return f"{millis // 60000}:{millis % 60000 / 1000:06.3f}"

    return f"{clock(start)}–{clock(end)}"


def _identity(segment: dict) -> tuple:
    return segment.get("name"), segment.get("parentName"), segment.get("startMillis"), segment.get("endMillis")


def annotate_segments(segments: list[dict], output: dict | None, answers: list[dict]) -> list[dict]:
    """Each segment the rules judged, with every reviewer's verdict on it (if it was shown to them)."""
    shown = ((output or {}).get("inputContent") or {}).get("segments") or []
    index_of = {_identity(s): i for i, s in enumerate(shown)}
    rows = []
    for segment in segments:
        index = index_of.get(_identity(segment))
        verdicts = [
            {"reviewer": a["workerId"], "verdict": v["verdict"], "category": v["category"]}
            for a in answers
            for v in a["verdicts"]
            if index is not None and v["index"] == index
        ]
        rows.append(
            {
                "range": _range(int(segment.get("startMillis", 0)), int(segment.get("endMillis", 0))),
                "parentName": segment.get("parentName", ""),
                "name": segment.get("name", ""),
                "category": segment.get("category", ""),
                "maxConfidence": segment.get("maxConfidence"),
                "detections": segment.get("detections"),
                "shownToReviewer": index,
                "verdicts": verdicts,
            }
        )
    return rows
