"""Decision records and A2I outputs with known quality figures (tests/unit/test_quality_figures.py works them out),
in the shapes RecordDecision and the local portal write, with the audit-sample and consensus fields (``auditSample``,
``auditOf``, ``auditVerdict``; ``requestedAt`` and per-reviewer verdicts in the review result) — and two records
written before those existed. ``store`` writes them into a decisions table and a bucket (moto or the local stack).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from vidmod.quality.window import Window

WINDOW = Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC))
OUT = "s3://results/a2i-output/vidmod-review/2026/12/0{day}/10/00/00/{loop}/output.json"
SEGMENTS = [
    {"index": 0, "id": "seg-0", "name": "Weapons", "parentName": "Violence", "category": "Violence"},
    {
        "index": 1,
        "id": "seg-1",
        "name": "Exposed Female Nipple",
        "parentName": "Explicit Nudity",
        "category": "Explicit",
    },
]


def sample(outcome: str, sampled: bool = True) -> str:
    return json.dumps({"sampled": sampled, "rate": 0.05, "draw": 0.01 if sampled else 0.9, "outcome": outcome})


def record(name: str, decided: str, decision: str, source: str, **fields: str) -> dict:
    base = {
        "videoUri": f"s3://media/{name}.mp4",
        "executionName": name,
        "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:vidmod:{name}",
        "decision": decision,
        "source": source,
        "reviewer": "",
        "ruleSetVersion": "2026-12-01.1",
        "reasons": "[]",
        "startedAt": decided,
        "decidedAt": decided,
        "detail": "[]",
    }
    return base | fields


def answer(worker: str, decision: str, submitted: str, verdicts: dict[int, str] | None = None) -> dict:
    """An A2I humanAnswers entry as the worker template submits it; verdicts: segment index → tp|fp|wrong:<cat>."""
    content = {"decision-approve": {"value": decision == "APPROVE"}, "decision-reject": {"value": decision == "REJECT"}}
    for index, verdict in (verdicts or {}).items():
        kind, _, category = verdict.partition(":")
        content[f"seg-{index}-{kind}"] = {"value": True}
        if category:
            content[f"seg-{index}-category"] = category
    return {
        "acceptanceTime": submitted,
        "submissionTime": submitted,
        "timeSpentInSeconds": 5.0,
        "workerId": worker,
        "workerMetadata": {"identityData": {"identityProviderType": "Oidc", "issuer": "vidmod-local", "sub": worker}},
        "answerContent": content,
    }


def output(loop: str, answers: list[dict], segments: list[dict] | None = None) -> dict:
    return {
        "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/vidmod-review",
        "humanLoopName": loop,
        "inputContent": {"schemaVersion": "1", "segments": SEGMENTS if segments is None else segments},
        "humanAnswers": answers,
    }


def review_detail(decision: str, uri: str, answers: list[dict], requested: str = "", **more) -> str:
    """The review result (ReviewResult.to_dict() + consensus fields) as the record's detail."""
    reviewers = [
        {
            "workerId": a["workerId"],
            "decision": "APPROVE" if a["answerContent"]["decision-approve"]["value"] else "REJECT",
            "acceptanceTime": a["acceptanceTime"],
            "submissionTime": a["submissionTime"],
            "timeSpentInSeconds": a["timeSpentInSeconds"],
            "identityProviderType": "Oidc",
            "verdicts": [],
            "comment": "",
        }
        for a in answers
    ]
    detail = {
        "decision": decision,
        "reviewer": ",".join(a["workerId"] for a in answers),
        "humanLoopName": uri.split("/")[-2] if uri else "",
        "outputS3Uri": uri,
        "acceptanceTime": answers[-1]["acceptanceTime"] if answers else "",
        "submissionTime": answers[-1]["submissionTime"] if answers else "",
        "timeSpentInSeconds": 5.0,
        "verdicts": [],
        "comment": "",
        "reviewers": reviewers,
        "outputSha256": "0" * 64,
        "agreement": {"rule": "any-reject", "answers": len(answers), "agreeing": 0, "unanimous": False},
    }
    if requested:
        detail["requestedAt"] = requested
    return json.dumps(detail | more)


# ---------------------------------------------------------------------------- the fixture set
R4_ANSWERS = [  # a panel of three: 2 reject, 1 approve → REJECT
    answer("alice", "REJECT", "2026-12-03T10:01:00.000Z", {0: "tp", 1: "fp"}),
    answer("bob", "REJECT", "2026-12-03T10:05:00.000Z", {0: "tp", 1: "wrong:Violence"}),
    answer("carol", "APPROVE", "2026-12-03T10:10:00.000Z", {0: "fp", 1: "fp"}),
]
R5_ANSWERS = [answer("dave", "REJECT", "2026-12-04T01:00:00.000Z", {0: "tp"})]  # overturns an approval
R6_ANSWERS = [  # two auditors of a rejection: the panel keeps it (REJECT): AGREE
    answer("dave", "REJECT", "2026-12-05T09:00:00.000Z", {0: "tp"}),
    answer("erin", "APPROVE", "2026-12-05T09:30:00.000Z", {0: "fp"}),
]
R9_ANSWERS = [answer("zed", "REJECT", "2026-11-30T23:59:00.000Z", {0: "tp", 1: "tp"})]
URI = {n: OUT.format(day=d, loop=f"loop-{n}") for n, d in (("r4", 3), ("r5", 4), ("r6", 5), ("r8", 6), ("r9", 1))}

RECORDS = [
    # rules decisions: R1 exactly at `since` (inside), sampled; R2 sampled; R3 not sampled; R7a sampled
    record("r1", "2026-12-01T00:00:00.000Z", "APPROVE", "rules", auditSample=sample("APPROVE")),
    record("r2", "2026-12-02T00:00:00.000Z", "REJECT", "rules", auditSample=sample("REJECT")),
    record("r3", "2026-12-02T12:00:00.000Z", "APPROVE", "rules", auditSample=sample("APPROVE", sampled=False)),
    record("r7a", "2026-12-06T00:00:00.000Z", "APPROVE", "rules", auditSample=sample("APPROVE")),
    # a human panel of three, requested at 10:00, last answer 10:10: 600 s
    record(
        "r4",
        "2026-12-03T10:10:01.000Z",
        "REJECT",
        "human",
        reviewer="alice,bob,carol",
        detail=review_detail("REJECT", URI["r4"], R4_ANSWERS, "2026-12-03T10:00:00.000Z"),
        auditSample="",
    ),
    # the audit of r1 (APPROVE) by dave overturns it: REJECT is in force; 3600 s
    record(
        "r5",
        "2026-12-04T01:00:01.000Z",
        "REJECT",
        "audit",
        reviewer="dave",
        auditOf="r1",
        auditVerdict="OVERTURN",
        auditSample=sample("APPROVE"),
        detail=review_detail("REJECT", URI["r5"], R5_ANSWERS, "2026-12-04T00:00:00.000Z"),
    ),
    # the audit of r2 (REJECT) agrees; no requestedAt: latency skipped. No auditSample on it: found through auditOf
    record(
        "r6",
        "2026-12-05T09:30:01.000Z",
        "REJECT",
        "audit",
        reviewer="dave,erin",
        auditOf="r2",
        auditVerdict="AGREE",
        detail=review_detail("REJECT", URI["r6"], R6_ANSWERS),
    ),
    # the audit of r7a expired: counted apart, no answers
    record(
        "r7",
        "2026-12-06T06:00:00.000Z",
        "APPROVE",
        "audit",
        auditOf="r7a",
        auditVerdict="EXPIRED",
        auditSample=sample("APPROVE"),
        detail=json.dumps({"Error": "HumanLoopExpired"}),
    ),
    # an old human record (before audit samples and consensus): no new fields, output.json gone → its detail
    record(
        "r8",
        "2026-12-06T12:00:00.000Z",
        "APPROVE",
        "human",
        reviewer="frank",
        detail=json.dumps(
            {
                "decision": "APPROVE",
                "reviewer": "frank",
                "humanLoopName": "loop-r8",
                "outputS3Uri": URI["r8"],
                "acceptanceTime": "2026-12-06T11:59:00.000Z",
                "submissionTime": "2026-12-06T11:59:30.000Z",
                "timeSpentInSeconds": 30.0,
                "verdicts": [{"index": 0, "label": "Weapons", "verdict": "false-positive", "category": ""}],
                "comment": "",
                "reviewers": [
                    {"workerId": "frank", "decision": "APPROVE", "submissionTime": "2026-12-06T11:59:30.000Z"}
                ],
            }
        ),
    ),
    record("r10", "2026-12-07T00:00:00.000Z", "ESCALATED", "system", detail=json.dumps({"Error": "States.Timeout"})),
    # two single-reviewer human records without an output URI: 60 s and 120 s
    record(
        "r11",
        "2026-12-07T01:01:00.000Z",
        "APPROVE",
        "human",
        reviewer="grace",
        detail=review_detail(
            "APPROVE", "", [answer("grace", "APPROVE", "2026-12-07T01:01:00.000Z")], "2026-12-07T01:00:00.000Z"
        ),
    ),
    record(
        "r12",
        "2026-12-07T02:02:00.000Z",
        "REJECT",
        "human",
        reviewer="grace",
        detail=review_detail(
            "REJECT", "", [answer("grace", "REJECT", "2026-12-07T02:02:00.000Z")], "2026-12-07T02:00:00.000Z"
        ),
    ),
    # outside the window: just before `since`, and exactly at `until` (excluded)
    record(
        "r9",
        "2026-11-30T23:59:59.999Z",
        "REJECT",
        "human",
        reviewer="zed",
        detail=review_detail("REJECT", URI["r9"], R9_ANSWERS, "2026-11-30T23:00:00.000Z"),
    ),
    record(
        "r13",
        "2026-12-08T00:00:00.000Z",
        "APPROVE",
        "audit",
        reviewer="zed",
        auditOf="r2",
        auditVerdict="OVERTURN",
        auditSample=sample("REJECT"),
        detail=review_detail("APPROVE", "", [answer("zed", "APPROVE", "2026-12-08T00:00:00.000Z")]),
    ),
]
OUTPUTS = {
    URI["r4"]: output("loop-r4", R4_ANSWERS),
    URI["r5"]: output("loop-r5", R5_ANSWERS),
    URI["r6"]: output("loop-r6", R6_ANSWERS),
    URI["r8"]: None,  # not readable
    URI["r9"]: output("loop-r9", R9_ANSWERS),
}


def store(ddb, s3, table: str, records: list[dict], outputs: dict[str, dict | None]) -> None:
    """Every record as a typed item (strings, as RecordDecision writes them); every readable output as its object
    (its bucket must exist)."""
    for item in records:
        ddb.put_item(TableName=table, Item={name: {"S": value} for name, value in item.items()})
    for uri, content in outputs.items():
        if content is not None:
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(content).encode())
