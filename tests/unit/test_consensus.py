"""Reviewer consensus: several reviewers' answers (A2I's ``humanAnswers``) become one decision by the loop's rule.

``majority``: more rejects than approves rejects, more approves approves, a tie rejects. ``any-reject``: one
reject rejects. The rule travels in the loop's InputContent (``inputContent.consensus``; absent: majority), and
the decision records every answer and how many agreed.
"""

from __future__ import annotations

import json

import pytest

from vidmod_contracts.review_answers import (
    InvalidReviewOutput,
    agreement,
    consensus_rule,
    consolidated_decision,
    parse_output,
)

URI = "s3://results/a2i-output/vidmod-review/2026/11/24/10/05/00/vidmod-abc123/output.json"
SEGMENTS = [{"index": 0, "name": "Weapons", "category": "Violence"}]
WORKERS = ["ann", "ben", "cat"]


def answer(worker: str, decision: str, minute: int, verdict: str = "tp", comment: str = "") -> dict:
    content = {
        "decision-approve": {"value": decision == "APPROVE"},
        "decision-reject": {"value": decision == "REJECT"},
        f"seg-0-{verdict}": {"value": True},
    }
    if comment:
        content["comment"] = comment
    return {
        "acceptanceTime": f"2026-11-24T10:0{minute}:00.000Z",
        "submissionTime": f"2026-11-24T10:0{minute}:45.000Z",
        "timeSpentInSeconds": 45.0,
        "workerId": worker,
        "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "issuer": "https://idp", "sub": "x"}},
        "answerContent": content,
    }


def panel(decisions: list[str], rule: str | None = None, workers: list[str] = WORKERS) -> dict:
    content: dict = {"segments": SEGMENTS}
    if rule is not None:
        content["consensus"] = rule
    answers = [answer(w, d, i + 1) for i, (w, d) in enumerate(zip(workers, decisions, strict=False))]
    return {"humanLoopName": "vidmod-abc123", "inputContent": content, "humanAnswers": answers}


R, A = "REJECT", "APPROVE"


@pytest.mark.parametrize(
    ("decisions", "majority", "any_reject"),
    [
        ([R, R, A], R, R),  # 2 reject / 1 approve: rejected under both rules
        ([A, R, R], R, R),
        ([R, A, A], A, R),  # 1 reject / 2 approve: approved by the majority, rejected by any-reject
        ([A, A, R], A, R),
        ([A, R], R, R),  # a tie rejects under majority
        ([R, A], R, R),
        ([A, A, A], A, A),
        ([R, R, R], R, R),
        ([A], A, A),
        ([R], R, R),
    ],
)
def test_each_rule_consolidates_a_panel(decisions, majority, any_reject):
    assert consolidated_decision(decisions, "majority") == majority
    assert consolidated_decision(decisions, "any-reject") == any_reject
    assert consolidated_decision(decisions) == majority  # majority is the default
    assert parse_output(panel(decisions, "majority"), URI).decision == majority
    assert parse_output(panel(decisions, "any-reject"), URI).decision == any_reject
    assert parse_output(panel(decisions), URI).decision == majority  # a loop started without a rule


def test_the_agreement_counts_the_answers_equal_to_the_decision():
    result = parse_output(panel([R, A, R], "majority"), URI)
    assert result.agreement == {"rule": "majority", "answers": 3, "agreeing": 2, "unanimous": False}
    result = parse_output(panel([R, A, A], "any-reject"), URI)
    assert (result.decision, result.agreement) == (
        R,
        {"rule": "any-reject", "answers": 3, "agreeing": 1, "unanimous": False},
    )
    tie = parse_output(panel([A, R], "majority"), URI)
    assert tie.agreement == {"rule": "majority", "answers": 2, "agreeing": 1, "unanimous": False}
    unanimous = parse_output(panel([A, A, A], "majority"), URI)
    assert unanimous.agreement == {"rule": "majority", "answers": 3, "agreeing": 3, "unanimous": True}
    assert agreement([A, A], R, "any-reject") == {"rule": "any-reject", "answers": 2, "agreeing": 0, "unanimous": False}


def test_every_reviewers_answer_is_recorded_in_submission_order():
    output = panel([R, A, R], "majority")
    output["humanAnswers"][0] = answer("ann", R, 1, "tp", "a real gun")
    output["humanAnswers"][1] = answer("ben", A, 2, "fp", "a toy")
    result = parse_output(output, URI, "ab12", requested_at="2026-11-24T09:59:00.000Z")
    recorded = result.to_dict()
    assert [(r["workerId"], r["decision"]) for r in recorded["reviewers"]] == [("ann", R), ("ben", A), ("cat", R)]
    assert [r["comment"] for r in recorded["reviewers"]] == ["a real gun", "a toy", ""]
    assert [[v["verdict"] for v in r["verdicts"]] for r in recorded["reviewers"]] == [
        ["true-positive"],
        ["false-positive"],
        ["true-positive"],
    ]
    assert set(recorded["reviewers"][0]) == {
        "workerId",
        "decision",
        "acceptanceTime",
        "submissionTime",
        "timeSpentInSeconds",
        "identityProviderType",
        "comment",
        "verdicts",
    }  # no identityData (sub, issuer): it stays in output.json
    # the top-level fields stay the last reviewer's, as with one reviewer
    assert (recorded["reviewer"], recorded["submissionTime"]) == ("ann,ben,cat", "2026-11-24T10:03:45.000Z")
    assert recorded["requestedAt"] == "2026-11-24T09:59:00.000Z"
    assert json.loads(json.dumps(recorded)) == recorded  # what SendTaskSuccess carries


@pytest.mark.parametrize("rule", ["unanimous", "MAJORITY", "", None, 2, ["majority"]])
def test_an_unknown_rule_is_refused(rule):
    output = panel([A, A, A])
    output["inputContent"]["consensus"] = rule  # present but not a rule (null too)
    said = r"unknown consensus rule .* \(expected one of majority, any-reject\)$"  # names the rules there are
    with pytest.raises(InvalidReviewOutput, match=said):
        parse_output(output, URI)
    with pytest.raises(InvalidReviewOutput, match=said):
        consensus_rule({"inputContent": {"consensus": rule}})
    if isinstance(rule, str):
        with pytest.raises(InvalidReviewOutput, match=said):
            consolidated_decision([A], rule)


def test_the_rule_defaults_to_majority_only_when_absent():
    assert consensus_rule({"inputContent": {"segments": []}}) == "majority"
    assert consensus_rule({}) == "majority"
    assert consensus_rule({"inputContent": {"consensus": "any-reject"}}) == "any-reject"


def test_a_reviewer_who_answered_twice_is_refused():
    output = panel([A, R, A], "majority", workers=["ann", "ben", "ann"])
    with pytest.raises(InvalidReviewOutput, match=r"a reviewer answered more than once: 'ann'$"):
        parse_output(output, URI)
    output = panel([A, R, A, R], "majority", workers=["ann", "ben", "ann", "ben"])
    with pytest.raises(InvalidReviewOutput, match=r"a reviewer answered more than once: 'ann', 'ben'$"):
        parse_output(output, URI)


def test_complete_human_review_sends_the_panels_decision_with_every_answer(aws, load_function, monkeypatch):
    """The Lambda path: output.json with three answers → SendTaskSuccess with the consolidated decision."""
    monkeypatch.setenv("REVIEW_TASKS_TABLE", "review-tasks")
    monkeypatch.setenv("FLOW_DEFINITION_ARN", "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/f")
    load_function("complete_human_review")
    from loop_outcome import LoopOutcome
    from resumption import resume

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="results")
    key = URI.removeprefix("s3://results/")
    sent: list[tuple[str, dict]] = []

    class Sfn:
        def send_task_success(self, **kwargs):
            sent.append(("success", kwargs))

        def send_task_failure(self, **kwargs):
            sent.append(("failure", kwargs))

    detail = {
        "creationTime": "2026-11-24T10:00:00.000Z",
        "humanLoopName": "vidmod-abc123",
        "humanLoopStatus": "Completed",
        "humanLoopOutput": {"outputS3Uri": URI},
    }
    s3.put_object(Bucket="results", Key=key, Body=json.dumps(panel([R, A, R], "majority")))
    assert resume(Sfn(), s3, "token", LoopOutcome.from_detail(detail)) == R
    result = json.loads(sent[-1][1]["output"])
    assert [r["decision"] for r in result["reviewers"]] == [R, A, R]
    assert result["agreement"] == {"rule": "majority", "answers": 3, "agreeing": 2, "unanimous": False}
    assert result["requestedAt"] == "2026-11-24T10:00:00.000Z"

    s3.put_object(Bucket="results", Key=key, Body=json.dumps(panel([R, A, A], "any-reject")))
    assert resume(Sfn(), s3, "token", LoopOutcome.from_detail(detail)) == R
    s3.put_object(Bucket="results", Key=key, Body=json.dumps(panel([R, A, A], "majority")))
    assert resume(Sfn(), s3, "token", LoopOutcome.from_detail(detail)) == A

    s3.put_object(Bucket="results", Key=key, Body=json.dumps(panel([R, A, A], "two-thirds")))
    assert resume(Sfn(), s3, "token", LoopOutcome.from_detail(detail)) == "InvalidReviewOutput"
    assert sent[-1][0] == "failure" and "unknown consensus rule 'two-thirds'" in sent[-1][1]["cause"]
