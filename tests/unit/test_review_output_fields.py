"""Reading A2I's output.json field by field (each case kills mutants `make mutate` found; docs/testing.md).

The verdict goes into the execution history, the decision record and the vidmod.decision event: every field the
reviewers' page submitted must arrive under its own name, and nothing may be invented for what it did not submit."""

from __future__ import annotations

import pytest

from vidmod_contracts.review_answers import InvalidReviewOutput, parse_output

URI = "s3://results/a2i-output/vidmod-review/output.json"
SHOWN = [
    {"index": 0, "name": "Drugs & Tobacco", "category": "Drugs & Tobacco"},
    {"index": 1, "name": "Weapons", "category": "Violence"},
    {"index": 2, "name": "Corpses", "category": "Visually Disturbing"},
    {"index": 3, "name": "Pills", "category": "Drugs & Tobacco"},
    {"index": 4, "category": "Gambling"},  # a segment without a name
]


def box(value: bool = True) -> dict:
    return {"value": value}


def answer(worker: str, minute: int, content: dict, provider: str = "Cognito") -> dict:
    return {
        "acceptanceTime": f"2026-11-24T10:0{minute}:00.000Z",
        "submissionTime": f"2026-11-24T10:0{minute}:30.500Z",
        "timeSpentInSeconds": 30.5 + minute,
        "workerId": worker,
        "workerMetadata": {"identityData": {"identityProviderType": provider, "issuer": "https://idp", "sub": "s"}},
        "answerContent": content,
    }


def output(*answers: dict) -> dict:
    return {"humanLoopName": "vidmod-abc123", "inputContent": {"segments": SHOWN}, "humanAnswers": list(answers)}


ALICE = {
    "decision-approve": box(),
    "decision-reject": box(False),
    "seg-0-tp": box(),
    "comment": "looks fine",
}
BOB = {
    "decision-approve": box(False),
    "decision-reject": box(),
    "seg-0-tp": box(),
    "seg-0-category": "Alcohol",  # left over in the form: only a wrong-category verdict carries a category
    "seg-1-fp": box(),
    "seg-2-wrong": box(),
    "seg-2-category": "Violence",
    "seg-3-wrong": box(),  # wrong category, none chosen
    "seg-3-tp": box(False),
    "seg-4-fp": box(),
    "comment": "a real gun",
}


def test_a_panels_verdict_carries_every_field_of_each_answer_and_the_last_reviewers_details():
    result = parse_output(output(answer("alice", 1, ALICE), answer("bob", 2, BOB, "SAML")), URI, "ab12")
    assert result.to_dict() == {
        "decision": "REJECT",
        "reviewer": "alice,bob",
        "humanLoopName": "vidmod-abc123",
        "outputS3Uri": URI,
        "acceptanceTime": "2026-11-24T10:02:00.000Z",
        "submissionTime": "2026-11-24T10:02:30.500Z",
        "timeSpentInSeconds": 32.5,
        "verdicts": [
            {"index": 0, "label": "Drugs & Tobacco", "verdict": "true-positive", "category": ""},
            {"index": 1, "label": "Weapons", "verdict": "false-positive", "category": ""},
            {"index": 2, "label": "Corpses", "verdict": "wrong-category", "category": "Violence"},
            {"index": 3, "label": "Pills", "verdict": "wrong-category", "category": ""},
            {"index": 4, "label": "", "verdict": "false-positive", "category": ""},
        ],
        "comment": "a real gun",
        "reviewers": [
            {
                "workerId": "alice",
                "decision": "APPROVE",
                "acceptanceTime": "2026-11-24T10:01:00.000Z",
                "submissionTime": "2026-11-24T10:01:30.500Z",
                "timeSpentInSeconds": 31.5,
                "identityProviderType": "Cognito",
                "comment": "looks fine",
                "verdicts": [{"index": 0, "label": "Drugs & Tobacco", "verdict": "true-positive", "category": ""}],
            },
            {
                "workerId": "bob",
                "decision": "REJECT",
                "acceptanceTime": "2026-11-24T10:02:00.000Z",
                "submissionTime": "2026-11-24T10:02:30.500Z",
                "timeSpentInSeconds": 32.5,
                "identityProviderType": "SAML",
                "comment": "a real gun",
                "verdicts": [
                    {"index": 0, "label": "Drugs & Tobacco", "verdict": "true-positive", "category": ""},
                    {"index": 1, "label": "Weapons", "verdict": "false-positive", "category": ""},
                    {"index": 2, "label": "Corpses", "verdict": "wrong-category", "category": "Violence"},
                    {"index": 3, "label": "Pills", "verdict": "wrong-category", "category": ""},
                    {"index": 4, "label": "", "verdict": "false-positive", "category": ""},
                ],
            },
        ],
        "outputSha256": "ab12",
        "agreement": {"rule": "majority", "answers": 2, "agreeing": 1, "unanimous": False},  # a tie rejects
        "requestedAt": "",
    }


def test_a_single_approval_approves():
    result = parse_output(output(answer("alice", 1, ALICE)), URI)
    assert (result.decision, result.reviewer, result.comment, result.outputSha256) == (
        "APPROVE",
        "alice",
        "looks fine",
        "",
    )


def test_an_answer_with_only_a_decision_is_read_with_nothing_invented():
    """No metadata, times, comment or segments (a minimal answer): empty fields, not placeholders."""
    result = parse_output({"humanAnswers": [{"answerContent": {"decision-reject": box()}}]}, URI)
    assert result.to_dict() == {
        "decision": "REJECT",
        "reviewer": "",
        "humanLoopName": "",
        "outputS3Uri": URI,
        "acceptanceTime": "",
        "submissionTime": "",
        "timeSpentInSeconds": 0.0,
        "verdicts": [],
        "comment": "",
        "reviewers": [
            {
                "workerId": "",
                "decision": "REJECT",
                "acceptanceTime": "",
                "submissionTime": "",
                "timeSpentInSeconds": 0.0,
                "identityProviderType": "",
                "comment": "",
                "verdicts": [],
            }
        ],
        "outputSha256": "",
        "agreement": {"rule": "majority", "answers": 1, "agreeing": 1, "unanimous": True},
        "requestedAt": "",
    }


def test_verdicts_are_read_only_for_the_segments_the_reviewer_was_shown():
    content = {"decision-approve": box(), "seg-0-fp": box(), "seg-1-tp": box()}
    shown_none = {"humanAnswers": [answer("alice", 1, content)]}
    assert parse_output(shown_none, URI).verdicts == []
    one_shown = shown_none | {"inputContent": {"segments": SHOWN[:1]}}
    assert [(v.index, v.label, v.verdict) for v in parse_output(one_shown, URI).verdicts] == [
        (0, "Drugs & Tobacco", "false-positive")
    ]


def test_a_long_comment_is_kept_to_its_first_2000_characters():
    result = parse_output(output(answer("alice", 1, ALICE | {"comment": "x" * 2500})), URI)
    assert result.comment == "x" * 2000 and result.reviewers[0]["comment"] == "x" * 2000


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        ("2026-11-24T09:58:00.000Z", "2026-11-24T09:58:00.000Z"),
        ("2026-11-24T09:58:00Z", "2026-11-24T09:58:00.000Z"),  # one spelling, for latency arithmetic
        ("2026-11-24T10:58:00.123+01:00", "2026-11-24T09:58:00.123Z"),
        ("not a time", "not a time"),  # kept as given rather than lost
        ("", ""),
        (None, ""),
    ],
)
def test_requested_at_is_the_loops_creation_time_in_one_spelling(given, recorded):
    assert parse_output(output(answer("alice", 1, ALICE)), URI, requested_at=given).requestedAt == recorded


@pytest.mark.parametrize(
    "decisions",
    [
        {"decision-approve": box(), "decision-reject": box()},
        {"decision-approve": box(False), "decision-reject": box(False)},
        {},
    ],
)
def test_an_answer_without_exactly_one_decision_is_refused_with_the_reason(decisions):
    with pytest.raises(InvalidReviewOutput, match=r"^the review must carry exactly one overall decision"):
        parse_output(output(answer("alice", 1, ALICE), answer("bob", 2, decisions)), URI)


def test_an_output_without_answers_is_refused_naming_the_file():
    with pytest.raises(InvalidReviewOutput, match=f"^{URI} has no humanAnswers$"):
        parse_output({"humanLoopName": "vidmod-abc123", "humanAnswers": []}, URI)
