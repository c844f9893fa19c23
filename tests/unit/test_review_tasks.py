"""vidmod_contracts.review_tasks: the review-task row and its conditional transitions, on moto's DynamoDB."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

LAYER = Path(__file__).resolve().parents[2] / "layers" / "contracts"  # /opt/python in AWS
TABLE = "review-tasks"
NOW = 1_800_000_000


@pytest.fixture
def tasks(aws):
    from vidmod_contracts.review_tasks import ReviewTasks

    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "humanLoopName", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "humanLoopName", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    tasks = ReviewTasks(ddb, TABLE)
    tasks.remember("loop-1", "tok-1", "arn:aws:states:us-east-1:123456789012:execution:vidmod:x", 3600, 900, NOW)
    return tasks, ddb


def row(ddb, name: str = "loop-1") -> dict:
    return ddb.get_item(TableName=TABLE, Key={"humanLoopName": {"S": name}})["Item"]


def test_remember_writes_the_row_start_human_review_always_wrote(tasks):
    _, ddb = tasks
    assert row(ddb) == {
        "humanLoopName": {"S": "loop-1"},
        "taskToken": {"S": "tok-1"},
        "executionArn": {"S": "arn:aws:states:us-east-1:123456789012:execution:vidmod:x"},
        "status": {"S": "PENDING"},
        "createdAt": {"N": str(NOW)},
        "heartbeatSeconds": {"N": "900"},
        "expiresAt": {"N": str(NOW + 3600 + 7 * 24 * 3600)},  # a week past the task's own timeout, then TTL
    }


def test_only_one_of_two_claims_wins_and_only_its_holder_settles(tasks):
    from vidmod_contracts.review_tasks import TaskStatus

    tasks, ddb = tasks
    first = tasks.claim("loop-1", "tok-1", NOW)
    assert first is not None and row(ddb)["status"]["S"] == "SENDING"
    assert tasks.claim("loop-1", "tok-1", NOW) is None  # a concurrent duplicate
    assert tasks.settle("loop-1", "someone-else", TaskStatus.DONE) is False
    assert row(ddb)["status"]["S"] == "SENDING"
    assert tasks.settle("loop-1", first, TaskStatus.DONE) is True
    assert row(ddb)["status"]["S"] == "DONE" and "claimId" not in row(ddb)
    assert tasks.claim("loop-1", "tok-1", NOW) is None  # DONE is final


def test_a_claim_needs_the_stored_token_and_a_stale_claim_can_be_taken_over(tasks):
    from vidmod_contracts.review_tasks import CLAIM_LEASE_SECONDS

    tasks, _ = tasks
    assert tasks.claim("loop-1", "an-old-token", NOW) is None
    crashed = tasks.claim("loop-1", "tok-1", NOW)
    assert tasks.claim("loop-1", "tok-1", NOW + CLAIM_LEASE_SECONDS) is None  # the lease still holds
    taken = tasks.claim("loop-1", "tok-1", NOW + CLAIM_LEASE_SECONDS + 1)
    assert taken not in {None, crashed}


def test_expire_only_for_the_matching_token_of_a_pending_row(tasks):
    from vidmod_contracts.review_tasks import TaskStatus

    tasks, ddb = tasks
    assert tasks.expire("loop-1", "tok-replaced") is False
    assert row(ddb)["status"]["S"] == "PENDING"
    assert tasks.expire("loop-1", "tok-1") is True
    assert tasks.get("loop-1").status == TaskStatus.EXPIRED
    assert tasks.expire("loop-1", "tok-1") is False  # only PENDING rows expire
    claim = tasks.claim("loop-1", "tok-1", NOW)  # an EXPIRED row still takes a verdict
    assert claim is not None and tasks.settle("loop-1", claim, TaskStatus.DONE)


def test_pending_lists_only_pending_rows_typed(tasks):
    from vidmod_contracts.review_tasks import TaskStatus

    tasks, _ = tasks
    tasks.remember("loop-2", "tok-2", "arn:x", 3600, 0, NOW)
    tasks.expire("loop-2", "tok-2")
    (pending,) = tasks.pending()
    assert (pending.loop_name, pending.token, pending.status) == ("loop-1", "tok-1", TaskStatus.PENDING)
    assert (pending.created_at, pending.heartbeat_seconds) == (NOW, 900)
    assert tasks.get("missing") is None


def test_a_function_imports_the_contracts_from_the_layer_folder(load_function):
    load_function("store_labels")
    contracts = sys.modules["vidmod_contracts.label_pages"]
    assert contracts.__file__.startswith(str(LAYER / "vidmod_contracts"))
    assert sys.modules["page_store"].page_key is contracts.page_key
