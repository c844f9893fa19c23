"""Moderation slots: FIFO grants, idempotent acquire/release, and no double grant under racing Lambdas.

DynamoDB is moto's (real conditional writes and transactions); Step Functions is a recorder of the grants
sent, since only the task tokens matter here (the workflow itself runs on the local engine in tests/workflow).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

TABLE = "slots"


class Tokens:
    """Step Functions as the semaphore sees it: task tokens waiting for SendTaskSuccess, executions' status."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent: list[tuple[str, dict]] = []  # (token, grant) in the order sent
        self.gone: set[str] = set()  # tokens whose task no longer waits
        self.status: dict[str, str] = {}
        self.fail_next: list[str] = []  # error codes the next sends raise
        self.granted = {}  # token → threading.Event

    def send_task_success(self, taskToken: str, output: str) -> dict:
        with self.lock:
            if self.fail_next:
                raise ClientError({"Error": {"Code": self.fail_next.pop(0)}}, "SendTaskSuccess")
            if taskToken in self.gone:
                raise ClientError({"Error": {"Code": "TaskTimedOut"}}, "SendTaskSuccess")
            self.sent.append((taskToken, json.loads(output)))
            self.gone.add(taskToken)  # a token resumes its task once
            self.granted.setdefault(taskToken, threading.Event()).set()
        return {}

    def describe_execution(self, executionArn: str) -> dict:
        return {"status": self.status.get(executionArn, "RUNNING")}

    def tokens_sent(self) -> list[str]:
        return [token for token, _ in self.sent]


class Atomic:
    """A DynamoDB client whose every request is atomic, as DynamoDB's are (moto's in-process backend is not
    thread-safe); requests from different threads still interleave freely between one another."""

    def __init__(self, client):
        self.client, self.lock = client, threading.Lock()
        self.most_holders = 0  # the most executions the table ever recorded as holding a slot

    def __getattr__(self, name: str):
        method = getattr(self.client, name)

        def atomic(*args, **kwargs):
            with self.lock:
                result = method(*args, **kwargs)
                if name in {"transact_write_items", "update_item"}:
                    state = self.client.get_item(TableName=TABLE, Key={"pk": {"S": "semaphore"}, "sk": {"S": "state"}})
                    holders = state.get("Item", {}).get("holders", {}).get("M", {})
                    self.most_holders = max(self.most_holders, len(holders))
                return result

        return atomic


def arn(name: str) -> str:
    return f"arn:aws:states:us-east-1:123456789012:execution:moderation:{name}"


@pytest.fixture
def slots(aws, load_function):
    ddb = Atomic(aws.client("dynamodb"))
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    load_function("admission")
    import semaphore  # the function's module, as Lambda imports it

    tokens = Tokens()
    clock = [1_000_000.0]

    def make(limit: int = 2):
        return semaphore.Semaphore(ddb, tokens, TABLE, limit, clock=lambda: clock[0])

    make.table = ddb
    return make, tokens, clock, semaphore


def test_slots_are_granted_in_arrival_order_as_they_are_given_back(slots):
    make, tokens, clock, _ = slots
    sem = make(limit=2)
    for name in "abcd":
        assert sem.acquire(arn(name), f"token-{name}") == ("granted" if name in "ab" else "queued")
        clock[0] += 1
    assert tokens.tokens_sent() == ["token-a", "token-b"]  # c and d wait: no call, no polling
    assert sem.slots.usage(2).in_use == 2 and sem.slots.usage(2).queued == 2
    clock[0] += 5
    assert sem.release(arn("a"))["released"] is True
    assert tokens.tokens_sent() == ["token-a", "token-b", "token-c"]
    grant_c = tokens.sent[-1][1]
    assert grant_c["ticket"] == 3 and grant_c["queuedSeconds"] == 7.0 and grant_c["limit"] == 2
    sem.release(arn("b"))
    assert tokens.tokens_sent()[-1] == "token-d"
    assert sem.slots.usage(2).queued == 0


def test_a_retried_acquire_keeps_its_place_and_a_holder_is_granted_again_not_twice(slots):
    make, tokens, _, _ = slots
    sem = make(limit=1)
    sem.acquire(arn("a"), "a1")
    sem.acquire(arn("b"), "b1")
    assert sem.acquire(arn("b"), "b2") == "queued"  # the engine retried the invoke: one place, the newest token
    assert sem.slots.queue_length() == 1
    assert sem.acquire(arn("a"), "a2") == "held"  # the same execution run again after a restart
    assert tokens.tokens_sent() == ["a1", "a2"] and sem.slots.usage(1).in_use == 1
    sem.release(arn("a"))
    assert tokens.tokens_sent()[-1] == "b2"


def test_a_stopped_execution_leaves_the_queue_and_a_released_slot_is_not_released_twice(slots):
    make, tokens, _, _ = slots
    sem = make(limit=1)
    for name in "abc":
        sem.acquire(arn(name), name)
    left = sem.release(arn("b"))
    assert (left["released"], left["dequeued"]) == (False, True)
    assert sem.release(arn("a"))["released"] is True
    assert tokens.tokens_sent() == ["a", "c"]  # b left the queue: never granted
    assert sem.release(arn("a"))["released"] is False  # the status-change event after the in-flow release
    assert sem.slots.usage(1).in_use == 1  # c still holds its slot


def test_a_grant_to_an_execution_that_ended_goes_to_the_next_in_line(slots):
    make, tokens, _, _ = slots
    sem = make(limit=1)
    sem.acquire(arn("a"), "a")
    sem.acquire(arn("b"), "b")
    sem.acquire(arn("c"), "c")
    tokens.gone.add("b")  # b timed out in the queue; its release has not run yet
    tokens.status[arn("b")] = "FAILED"
    sem.release(arn("a"))
    assert tokens.tokens_sent() == ["a", "c"] and sem.slots.holders().keys() == {arn("c")}


def test_a_grant_whose_token_was_not_delivered_is_sent_again_later(slots):
    make, tokens, clock, semaphore = slots
    sem = make(limit=1)
    sem.acquire(arn("a"), "a")
    sem.acquire(arn("b"), "b")
    tokens.fail_next.append("ServiceUnavailable")
    with pytest.raises(ClientError):
        sem.release(arn("a"))  # b granted, then the send failed: the release Lambda errors and is retried
    assert arn("b") in sem.slots.holders() and tokens.tokens_sent() == ["a"]
    sem.release(arn("a"))  # the retry: nothing of a's left, and b's grant is too fresh to send again
    assert tokens.tokens_sent() == ["a"]
    clock[0] += semaphore.RESEND_AFTER_SECONDS + 1
    sem.release(arn("a"))
    assert tokens.tokens_sent() == ["a", "b"]
    assert "taskToken" not in sem.slots.holders()[arn("b")]  # delivered: not sent a third time
    clock[0] += 100
    sem.release(arn("a"))
    assert tokens.tokens_sent() == ["a", "b"]


def test_a_grant_beyond_the_limit_is_refused(slots):
    make, _, _, _ = slots
    sem = make(limit=2)
    sem.acquire(arn("a"), "a")
    sem.acquire(arn("b"), "b")
    fake_head = {"ticket": 9, "executionArn": arn("z"), "taskToken": "z", "queuedAt": "x", "queuedEpoch": 0}
    assert sem._grant(fake_head) is None  # two of two held: the condition refuses a third
    assert sem.slots.holders().keys() == {arn("a"), arn("b")}


@pytest.mark.parametrize("limit", [1, 3])
def test_racing_lambdas_never_hold_more_slots_than_the_limit_and_never_lose_a_wake_up(slots, limit, monkeypatch):
    """30 executions, 8 Lambdas at once: each holds its slot a moment, then gives it back. Reading the queue is
    slowed down so that another Lambda's grant or release often lands between a pump's reads."""
    make, tokens, _, semaphore = slots
    read_queue = semaphore.SlotTable.waiting

    def slow_read(self, limit=None):
        threading.Event().wait(0.003)
        return read_queue(self, limit)

    monkeypatch.setattr(semaphore.SlotTable, "waiting", slow_read)
    sems = [make(limit=limit) for _ in range(8)]
    holding, most, lock = [0], [0], threading.Lock()

    def run(i: int) -> None:
        sem, token = sems[i % len(sems)], f"t{i}"
        tokens.granted.setdefault(token, threading.Event())
        sem.acquire(arn(f"e{i}"), token)
        assert tokens.granted[token].wait(30), f"e{i} never woken"
        with lock:
            holding[0] += 1
            most[0] = max(most[0], holding[0])
        threading.Event().wait(0.005)
        with lock:
            holding[0] -= 1
        sem.release(arn(f"e{i}"))

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(run, i) for i in range(30)]
    errors = [repr(f.exception()) for f in futures if f.exception()]
    assert not errors
    assert len(tokens.sent) == 30 and len(set(tokens.tokens_sent())) == 30
    assert 1 <= most[0] <= limit
    assert make.table.most_holders == limit  # all the slots were used, never one more
    assert sems[0].slots.usage(limit) == sems[0].slots.usage(limit).__class__(0, limit, 0, ())


def test_the_handler_releases_on_an_execution_status_change(slots, monkeypatch, lambda_context):
    make, tokens, _, _ = slots
    import app

    sem = make(limit=1)
    monkeypatch.setattr(app, "semaphore", lambda: sem)
    app.lambda_handler({"action": "acquire", "executionArn": arn("a"), "taskToken": "a"}, lambda_context)
    app.lambda_handler({"action": "acquire", "executionArn": arn("b"), "taskToken": "b"}, lambda_context)
    event = {
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": arn("a"), "status": "ABORTED"},
    }
    assert app.lambda_handler(event, lambda_context)["released"] is True
    assert tokens.tokens_sent() == ["a", "b"]
    with pytest.raises(ValueError, match="unknown action"):
        app.lambda_handler({"action": "grab", "executionArn": arn("a")}, lambda_context)


def test_the_handler_publishes_slots_in_use_and_the_queue_after_each_call(slots, monkeypatch, lambda_context, capsys):
    from unit.emf import metrics

    make, _, _, _ = slots
    import app

    sem = make(limit=1)
    monkeypatch.setattr(app, "semaphore", lambda: sem)

    def figures() -> tuple[int, int]:
        published = metrics(capsys.readouterr().out)
        assert {m["unit"] for m in published.values()} == {"Count"}
        assert {tuple(m["dimensions"]) for m in published.values()} == {("service",)}
        return published["ModerationSlotsInUse"]["value"], published["ModerationQueueLength"]["value"]

    app.lambda_handler({"action": "acquire", "executionArn": arn("a"), "taskToken": "a"}, lambda_context)
    assert figures() == (1, 0)
    app.lambda_handler({"action": "acquire", "executionArn": arn("b"), "taskToken": "b"}, lambda_context)
    assert figures() == (1, 1)
    app.lambda_handler({"action": "release", "executionArn": arn("a")}, lambda_context)  # b is granted
    assert figures() == (1, 0)
    ended = {
        "detail-type": "Step Functions Execution Status Change",
        "detail": {"executionArn": arn("b"), "status": "SUCCEEDED"},
    }
    app.lambda_handler(ended, lambda_context)
    assert figures() == (0, 0)
