"""store_labels keeps pages in S3; review_heartbeat keeps live review tasks alive."""

from __future__ import annotations

import json

import pytest


def test_pages_are_stored_in_order_and_only_a_summary_is_returned(aws, load_function, lambda_context):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="results")
    app = load_function("store_labels")
    results = {"bucket": "results", "prefix": "moderations/x/"}
    page1 = {
        "JobStatus": "SUCCEEDED",
        "ModerationLabels": [{"Timestamp": i} for i in range(100)],
        "NextToken": "t2",
        "ModerationModelVersion": "7.0",
        "VideoMetadata": {"DurationMillis": 5000},
    }
    first = app.lambda_handler(
        {"page": page1, "previous": {"pages": 0, "detections": 0}, "results": results}, lambda_context
    )
    assert first == {
        "pages": 1,
        "detections": 100,
        "modelVersion": "7.0",
        "statusMessage": "",
        "videoMetadata": {"DurationMillis": 5000},
        "hasMore": True,
        "nextToken": "t2",
    }
    page2 = {"JobStatus": "SUCCEEDED", "ModerationLabels": [{"Timestamp": 1}], "ModerationModelVersion": "7.0"}
    second = app.lambda_handler({"page": page2, "previous": first, "results": results}, lambda_context)
    assert (second["pages"], second["detections"], second["hasMore"], second["nextToken"]) == (2, 101, False, "")
    stored = json.loads(s3.get_object(Bucket="results", Key="moderations/x/pages/00001.json")["Body"].read())
    assert len(stored["ModerationLabels"]) == 100
    assert len(json.dumps(second)) < 1024


@pytest.fixture
def heartbeat(aws, monkeypatch, load_function):
    monkeypatch.setenv("REVIEW_TASKS_TABLE", "tasks")
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName="tasks",
        KeySchema=[{"AttributeName": "humanLoopName", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "humanLoopName", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for name, status in [("live", "PENDING"), ("finished", "PENDING"), ("done", "DONE")]:
        ddb.put_item(
            TableName="tasks",
            Item={"humanLoopName": {"S": name}, "taskToken": {"S": f"tok-{name}"}, "status": {"S": status}},
        )
    return load_function("review_heartbeat")


def describe(name: str, status: str) -> dict:
    return {
        "CreationTime": "2026-11-24T10:00:00Z",
        "HumanLoopStatus": status,
        "HumanLoopName": name,
        "HumanLoopArn": f"arn:{name}",
        "FlowDefinitionArn": "arn:flow",
    }


def test_heartbeats_only_loops_still_in_progress(heartbeat, lambda_context):
    app = heartbeat
    beats = []
    app.sfn.send_task_heartbeat = lambda taskToken: beats.append(taskToken)
    responses = {"live": "InProgress", "finished": "Completed"}  # scan order is not guaranteed: answer by name
    app.a2i.describe_human_loop = lambda HumanLoopName: describe(HumanLoopName, responses[HumanLoopName])
    counts = app.lambda_handler({}, lambda_context)
    assert beats == ["tok-live"]
    assert counts == {"heartbeat": 1, "Completed": 1}


def status_of(ddb, name: str) -> str:
    return ddb.get_item(TableName="tasks", Key={"humanLoopName": {"S": name}})["Item"]["status"]["S"]


def client_error(code: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}}, "op")


@pytest.mark.parametrize("code", ["TaskTimedOut", "TaskDoesNotExist", "InvalidToken"])
def test_rows_whose_task_already_ended_are_expired_not_polled_forever(heartbeat, aws, lambda_context, code):
    app, ddb = heartbeat, aws.client("dynamodb")

    def refuse(taskToken):
        raise client_error(code)

    app.sfn.send_task_heartbeat = refuse
    app.a2i.describe_human_loop = lambda HumanLoopName: describe(HumanLoopName, "InProgress")
    assert app.lambda_handler({}, lambda_context) == {"expired": 2}
    assert (status_of(ddb, "live"), status_of(ddb, "finished"), status_of(ddb, "done")) == (
        "EXPIRED",
        "EXPIRED",
        "DONE",
    )
    assert app.lambda_handler({}, lambda_context) == {}  # nothing left to poll


def test_a_refused_heartbeat_expires_only_a_row_older_than_its_tasks_start(heartbeat, aws, lambda_context):
    """The row is written while the callback task's Lambda still runs: an engine that refuses the token then
    has not finished starting the task, and expiring the row would drop the reviewer's verdict later."""
    import time

    app, ddb = heartbeat, aws.client("dynamodb")
    ddb.update_item(
        TableName="tasks",
        Key={"humanLoopName": {"S": "live"}},
        UpdateExpression="SET createdAt = :c",
        ExpressionAttributeValues={":c": {"N": str(int(time.time()))}},
    )

    def refuse(taskToken):
        raise client_error("TaskDoesNotExist")

    app.sfn.send_task_heartbeat = refuse
    app.a2i.describe_human_loop = lambda HumanLoopName: describe(HumanLoopName, "InProgress")
    assert app.lambda_handler({}, lambda_context) == {"refused": 1, "expired": 1}
    assert (status_of(ddb, "live"), status_of(ddb, "finished")) == ("PENDING", "EXPIRED")  # "finished" is old


def test_a_missing_loop_expires_its_row_only_after_the_start_grace_period(heartbeat, aws, lambda_context):
    import time

    from heartbeats import LOOP_START_GRACE_SECONDS

    app, ddb = heartbeat, aws.client("dynamodb")
    now = int(time.time())
    for name, created in [("live", now - LOOP_START_GRACE_SECONDS - 60), ("finished", now)]:
        ddb.update_item(
            TableName="tasks",
            Key={"humanLoopName": {"S": name}},
            UpdateExpression="SET createdAt = :c",
            ExpressionAttributeValues={":c": {"N": str(created)}},
        )

    def missing(HumanLoopName):
        raise client_error("ResourceNotFoundException")

    app.a2i.describe_human_loop = missing
    counts = app.lambda_handler({}, lambda_context)
    assert counts == {"expired": 1, "unknown": 1}
    assert (status_of(ddb, "live"), status_of(ddb, "finished")) == ("EXPIRED", "PENDING")  # "finished" is starting


def test_a_row_whose_token_was_replaced_meanwhile_is_not_expired(heartbeat, aws):
    from vidmod_contracts.review_tasks import ReviewTasks

    ddb = aws.client("dynamodb")
    ddb.update_item(
        TableName="tasks",
        Key={"humanLoopName": {"S": "live"}},
        UpdateExpression="SET taskToken = :t",
        ExpressionAttributeValues={":t": {"S": "tok-retried"}},
    )
    ReviewTasks(ddb, "tasks").expire("live", "tok-live")
    assert status_of(ddb, "live") == "PENDING"


def test_a_heartbeat_limit_below_the_schedule_period_is_reported(heartbeat, aws, monkeypatch, lambda_context):
    from vidmod_contracts.schedules import rate_seconds

    app, ddb = heartbeat, aws.client("dynamodb")
    assert rate_seconds("rate(10 minutes)") == 600 and rate_seconds("rate(1 hour)") == 3600
    monkeypatch.setenv("HEARTBEAT_SCHEDULE", "rate(10 minutes)")
    ddb.update_item(
        TableName="tasks",
        Key={"humanLoopName": {"S": "live"}},
        UpdateExpression="SET heartbeatSeconds = :h",
        ExpressionAttributeValues={":h": {"N": "300"}},
    )
    errors = []
    monkeypatch.setattr(app.logger, "error", lambda message, **kw: errors.append((message, kw)))
    app.sfn.send_task_heartbeat = lambda taskToken: None
    app.a2i.describe_human_loop = lambda HumanLoopName: describe(HumanLoopName, "InProgress")
    app.lambda_handler({}, lambda_context)
    ((message, kw),) = errors
    assert "must exceed the HeartbeatSchedule period" in message and kw["extra"] == {"scheduleSeconds": 600, "tasks": 1}


def test_every_tick_publishes_the_open_reviews_and_the_oldest_ones_age(heartbeat, aws, lambda_context, capsys):
    """The review SLA alarm reads OldestOpenReviewAgeSeconds: a finished loop whose event has not arrived is
    still open (no verdict reached the workflow), an expired row is not, and no open review reads 0."""
    import time

    from unit.emf import metrics

    app, ddb = heartbeat, aws.client("dynamodb")
    now = int(time.time())
    for name, age in [("live", 600), ("finished", 3600)]:
        ddb.update_item(
            TableName="tasks",
            Key={"humanLoopName": {"S": name}},
            UpdateExpression="SET createdAt = :c",
            ExpressionAttributeValues={":c": {"N": str(now - age)}},
        )
    app.sfn.send_task_heartbeat = lambda taskToken: {}
    loops = {"live": "InProgress", "finished": "Completed"}
    app.a2i.describe_human_loop = lambda HumanLoopName: describe(HumanLoopName, loops[HumanLoopName])

    app.lambda_handler({}, lambda_context)

    published = metrics(capsys.readouterr().out)
    assert {name: (m["unit"], m["dimensions"]) for name, m in published.items()} == {
        "OpenReviews": ("Count", {"service": "vidmod"}),
        "OldestOpenReviewAgeSeconds": ("Seconds", {"service": "vidmod"}),
    }
    assert published["OpenReviews"]["value"] == 2
    assert 3600 <= published["OldestOpenReviewAgeSeconds"]["value"] < 3660

    def gone(taskToken):
        raise client_error("TaskDoesNotExist")

    app.sfn.send_task_heartbeat = gone
    loops["finished"] = "InProgress"
    app.lambda_handler({}, lambda_context)  # both tasks ended: their rows expire
    published = metrics(capsys.readouterr().out)
    assert (published["OpenReviews"]["value"], published["OldestOpenReviewAgeSeconds"]["value"]) == (0, 0)
