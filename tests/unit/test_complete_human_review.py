"""complete_human_review: A2I status change → SendTaskSuccess / SendTaskFailure, duplicates ignored."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from botocore.stub import Stubber

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

TABLE = "review-tasks"
FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/vidmod-review"
OUTPUT_KEY = "a2i-output/vidmod-review/2026/11/24/10/05/00/vidmod-abc123/output.json"
SEGMENTS = [
    {"index": 0, "name": "Drugs & Tobacco", "category": "Drugs & Tobacco"},
    {"index": 1, "name": "Weapons", "category": "Violence"},
]


def a2i_output(answer: dict, worker: str = "alice") -> dict:
    return {
        "flowDefinitionArn": "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/vidmod-review",
        "humanLoopName": "vidmod-abc123",
        "inputContent": {"segments": SEGMENTS},
        "humanAnswers": [
            {
                "acceptanceTime": "2026-11-24T10:01:00.000Z",
                "submissionTime": "2026-11-24T10:04:30.500Z",
                "timeSpentInSeconds": 210.5,
                "workerId": worker,
                "workerMetadata": {
                    "identityData": {"identityProviderType": "Cognito", "issuer": "https://cognito", "sub": "s-1"}
                },
                "answerContent": answer,
            }
        ],
    }


APPROVE = {
    "decision-approve": {"value": True},
    "decision-reject": {"value": False},
    "seg-0-fp": {"value": True},
    "seg-1-wrong": {"value": True},
    "seg-1-category": "Gambling",
    "comment": "toy gun",
}


class FakeSfn:
    """Records what the Lambda sends; raises a chosen error code to mimic a used/expired token."""

    def __init__(self, error_code: str | None = None):
        self.calls: list[tuple[str, dict]] = []
        self.error_code = error_code

    def _call(self, name, **kwargs):
        from botocore.exceptions import ClientError

        self.calls.append((name, kwargs))
        if self.error_code:
            raise ClientError({"Error": {"Code": self.error_code, "Message": "gone"}}, name)

    def send_task_success(self, **kw):
        self._call("success", **kw)

    def send_task_failure(self, **kw):
        self._call("failure", **kw)


@pytest.fixture
def env(aws, monkeypatch, load_function):
    monkeypatch.setenv("REVIEW_TASKS_TABLE", TABLE)
    monkeypatch.setenv("FLOW_DEFINITION_ARN", FLOW)
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "humanLoopName", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "humanLoopName", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(
        TableName=TABLE,
        Item={"humanLoopName": {"S": "vidmod-abc123"}, "taskToken": {"S": "tok+/="}, "status": {"S": "PENDING"}},
    )
    s3.create_bucket(Bucket="results-bucket")
    app = load_function("complete_human_review")
    return app, ddb, s3


def event(status: str) -> dict:
    return json.loads((FIXTURES / f"a2i_status_{status}.json").read_text())


def status_of(ddb) -> str:
    return ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": "vidmod-abc123"}})["Item"]["status"]["S"]


def test_completed_review_resumes_the_execution_with_the_reviewers_verdict(env, lambda_context, monkeypatch):
    app, ddb, s3 = env
    stored = json.dumps(a2i_output(APPROVE), indent=1).encode()
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=stored)
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    assert app.lambda_handler(event("completed"), lambda_context) == {"sent": "APPROVE"}
    ((name, kwargs),) = sfn.calls
    assert name == "success" and kwargs["taskToken"] == "tok+/="
    output = json.loads(kwargs["output"])
    assert output["decision"] == "APPROVE" and output["reviewer"] == "alice"
    assert output["timeSpentInSeconds"] == 210.5 and output["submissionTime"] == "2026-11-24T10:04:30.500Z"
    assert output["verdicts"] == [
        {"index": 0, "label": "Drugs & Tobacco", "verdict": "false-positive", "category": ""},
        {"index": 1, "label": "Weapons", "verdict": "wrong-category", "category": "Gambling"},
    ]
    assert output["comment"] == "toy gun"
    assert output["outputSha256"] == hashlib.sha256(stored).hexdigest()  # of the bytes as stored, not re-encoded
    assert [r["workerId"] for r in output["reviewers"]] == ["alice"]
    assert output["reviewers"][0]["comment"] == "toy gun" and output["reviewers"][0]["verdicts"] == output["verdicts"]
    assert output["agreement"] == {"rule": "majority", "answers": 1, "agreeing": 1, "unanimous": True}
    assert output["requestedAt"] == "2026-11-24T10:00:00.000Z"  # the event's creationTime: the loop's start
    assert "s-1" not in kwargs["output"] and "https://cognito" not in kwargs["output"]  # no identityData
    assert status_of(ddb) == "DONE"


@pytest.mark.parametrize(
    ("status", "code", "error", "cause"),
    [
        # A2I's task lifetime ran out: a review timeout, which the workflow escalates (caught with States.Timeout).
        ("failed", "Expired", "HumanLoopExpired", "Expired: The human loop expired"),
        ("failed", "InternalError", "HumanLoopFailed", "InternalError: The human loop expired"),
        ("stopped", None, "HumanLoopStopped", "Stopped: no reason given"),
    ],
)
def test_failed_or_stopped_loop_fails_the_task_with_the_reason(
    env, lambda_context, monkeypatch, status, code, error, cause
):
    app, ddb, _ = env
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    failed = event(status)
    failed["detail"]["failureCode"] = code
    app.lambda_handler(failed, lambda_context)
    ((name, kwargs),) = sfn.calls
    assert (name, kwargs["error"]) == ("failure", error)
    assert kwargs["cause"].startswith(cause)
    assert status_of(ddb) == "DONE"


def test_duplicate_event_is_ignored_without_calling_step_functions(env, lambda_context, monkeypatch):
    app, _, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    app.lambda_handler(event("completed"), lambda_context)
    assert app.lambda_handler(event("completed"), lambda_context) == {"ignored": "duplicate"}
    assert len(sfn.calls) == 1


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_late_event_for_an_expired_token_is_logged_not_raised(env, lambda_context, monkeypatch, code):
    app, ddb, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    monkeypatch.setattr(app, "sfn", FakeSfn(error_code=code))
    assert app.lambda_handler(event("completed"), lambda_context) == {"ignored": code}
    assert status_of(ddb) == "EXPIRED"


def test_other_step_functions_errors_still_raise_so_eventbridge_retries(env, lambda_context, monkeypatch):
    from botocore.exceptions import ClientError

    app, ddb, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    monkeypatch.setattr(app, "sfn", FakeSfn(error_code="ThrottlingException"))
    with pytest.raises(ClientError):
        app.lambda_handler(event("completed"), lambda_context)
    assert status_of(ddb) == "PENDING"  # released: the retried event can still send
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    assert app.lambda_handler(event("completed"), lambda_context) == {"sent": "APPROVE"}


def test_racing_duplicates_send_once_and_the_loser_never_overwrites_done(env, lambda_context, monkeypatch):
    """Both events read PENDING; the first claims, sends and marks DONE; the second's claim must fail."""
    app, ddb, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    from vidmod_contracts.review_tasks import ReviewTasks

    tasks = ReviewTasks(ddb, TABLE)
    stale_read = tasks.get("vidmod-abc123")  # what the slower duplicate read before the winner finished
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    assert app.lambda_handler(event("completed"), lambda_context) == {"sent": "APPROVE"}
    monkeypatch.setattr(ReviewTasks, "get", lambda self, name: stale_read)
    monkeypatch.setattr(app, "sfn", FakeSfn(error_code="TaskTimedOut"))  # what a second send would get
    assert app.lambda_handler(event("completed"), lambda_context) == {"ignored": "duplicate"}
    assert len(sfn.calls) == 1 and status_of(ddb) == "DONE"


def test_an_event_arriving_while_another_sends_is_retried_and_a_crashed_claim_is_taken_over(
    env, lambda_context, monkeypatch
):
    app, ddb, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    from review_completion import ReviewBeingSent

    from vidmod_contracts.review_tasks import CLAIM_LEASE_SECONDS, ReviewTasks

    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    tasks = ReviewTasks(ddb, TABLE)
    assert tasks.claim("vidmod-abc123", "tok+/=", int(time.time()))  # another invocation is sending right now
    with pytest.raises(ReviewBeingSent):  # not "ignored": if that sender dies, this retry must deliver
        app.lambda_handler(event("completed"), lambda_context)
    assert sfn.calls == [] and status_of(ddb) == "SENDING"
    later = time.time() + CLAIM_LEASE_SECONDS + 5
    monkeypatch.setattr(app.time, "time", lambda: later)  # the sender crashed; its lease ran out
    assert app.lambda_handler(event("completed"), lambda_context) == {"sent": "APPROVE"}
    assert len(sfn.calls) == 1 and status_of(ddb) == "DONE"


def completed_loop(flow_definition_arn: str) -> dict:
    """DescribeHumanLoop of a finished loop, as A2I answers it."""
    return {
        "CreationTime": "2026-11-24T10:00:00Z",
        "HumanLoopStatus": "Completed",
        "HumanLoopName": "vidmod-abc123",
        "HumanLoopArn": "arn:aws:sagemaker:us-east-1:123456789012:human-loop/vidmod-abc123",
        "FlowDefinitionArn": flow_definition_arn,
        "HumanLoopOutput": {"OutputS3Uri": f"s3://results-bucket/{OUTPUT_KEY}"},
    }


def test_a_replayed_loop_is_read_from_a2i_and_resumes_the_task(env, lambda_context, monkeypatch):
    """start_human_review found the loop already Completed: the replay names the loop, A2I says the rest."""
    app, ddb, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    replay = json.loads((FIXTURES / "vidmod_human_loop_replay.json").read_text())
    with Stubber(app.a2i) as stub:
        stub.add_response("describe_human_loop", completed_loop(FLOW), {"HumanLoopName": "vidmod-abc123"})
        assert app.lambda_handler(replay, lambda_context) == {"sent": "APPROVE"}
    assert sfn.calls[0][0] == "success" and status_of(ddb) == "DONE"
    assert json.loads(sfn.calls[0][1]["output"])["requestedAt"] == "2026-11-24T10:00:00.000Z"  # A2I's CreationTime


def test_a_replay_for_another_flow_definition_is_ignored(env, lambda_context, monkeypatch):
    app, _, _ = env
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    replay = json.loads((FIXTURES / "vidmod_human_loop_replay.json").read_text())
    with Stubber(app.a2i) as stub:
        stub.add_response("describe_human_loop", completed_loop(FLOW.replace("vidmod-review", "someone-else")))
        assert app.lambda_handler(replay, lambda_context) == {"ignored": "unknown loop"}
    assert sfn.calls == []


def test_unknown_loop_is_ignored(env, lambda_context, monkeypatch):
    app, _, _ = env
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    other = event("completed")
    other["detail"]["humanLoopName"] = "someone-elses-loop"
    assert app.lambda_handler(other, lambda_context) == {"ignored": "unknown loop"}
    assert sfn.calls == []


@pytest.mark.parametrize(
    "answer",
    [
        {"decision-approve": {"value": False}, "decision-reject": {"value": False}},
        {"decision-approve": {"value": True}, "decision-reject": {"value": True}},
        {},
    ],
)
def test_an_answer_without_exactly_one_decision_fails_the_task_instead_of_hanging(
    env, lambda_context, monkeypatch, answer
):
    app, _, s3 = env
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(answer)))
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    assert app.lambda_handler(event("completed"), lambda_context) == {"sent": "InvalidReviewOutput"}
    assert sfn.calls[0][0] == "failure" and sfn.calls[0][1]["error"] == "InvalidReviewOutput"


REJECT_ANSWER = {"decision-approve": {"value": False}, "decision-reject": {"value": True}}


@pytest.mark.parametrize(
    ("panel", "expected"),
    [
        (["approve", "approve", "reject"], "REJECT"),
        (["approve", "reject", "approve"], "REJECT"),
        (["reject", "approve", "approve"], "REJECT"),
        (["reject", "approve"], "REJECT"),
        (["approve", "reject"], "REJECT"),
        (["approve", "approve"], "APPROVE"),
        (["reject", "reject"], "REJECT"),
    ],
)
def test_under_any_reject_a_reviewer_who_rejects_rejects_the_video_whatever_the_order(
    aws, load_function, panel, expected
):
    load_function("complete_human_review")
    from vidmod_contracts import review_answers as parser

    workers = ["alice", "bob", "carol"][: len(panel)]
    output = a2i_output({})
    output["inputContent"]["consensus"] = "any-reject"
    output["humanAnswers"] = [
        a2i_output(APPROVE if choice == "approve" else REJECT_ANSWER, worker=worker)["humanAnswers"][0]
        for choice, worker in zip(panel, workers, strict=True)
    ]
    result = parser.parse_output(output, "s3://x/y")
    assert result.decision == expected and result.reviewer == ",".join(workers)
    assert [r["decision"] for r in result.reviewers] == [choice.upper() for choice in panel]
    assert result.agreement["rule"] == "any-reject" and result.agreement["answers"] == len(panel)


@pytest.mark.parametrize("value", ["false", "true", 1, 0, "yes", None, [True], {"value": True}])
def test_a_box_counts_as_checked_only_when_its_value_is_json_true(aws, load_function, value):
    """A tampered or foreign answer ("false" is a truthy string) never becomes a decision or a verdict."""
    load_function("complete_human_review")
    from vidmod_contracts import review_answers as parser

    answer = {"decision-approve": {"value": value}, "decision-reject": {"value": False}, "seg-0-tp": {"value": value}}
    output = a2i_output(answer)
    with pytest.raises(parser.InvalidReviewOutput, match="exactly one overall decision"):
        parser.parse_output(output, "s3://x/y")
    assert parser.segment_verdicts(answer, SEGMENTS) == []
    assert parser.overall_decision({**answer, "decision-reject": {"value": True}}) == "REJECT"


def test_a_row_expired_by_a_refused_heartbeat_still_gets_its_verdict(env, lambda_context, monkeypatch):
    """EXPIRED is what the heartbeat believed; while Step Functions still takes the token, the reviewer's answer
    must reach the execution instead of being dropped as a duplicate (it would wait until the review timeout)."""
    app, ddb, s3 = env
    ddb.update_item(
        TableName=TABLE,
        Key={"humanLoopName": {"S": "vidmod-abc123"}},
        UpdateExpression="SET #s = :e",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":e": {"S": "EXPIRED"}},
    )
    s3.put_object(Bucket="results-bucket", Key=OUTPUT_KEY, Body=json.dumps(a2i_output(APPROVE)))
    sfn = FakeSfn()
    monkeypatch.setattr(app, "sfn", sfn)
    assert app.lambda_handler(event("completed"), lambda_context) == {"sent": "APPROVE"}
    assert [name for name, _ in sfn.calls] == ["success"] and status_of(ddb) == "DONE"
    assert app.lambda_handler(event("completed"), lambda_context) == {"ignored": "duplicate"}  # DONE is final
    assert len(sfn.calls) == 1
