"""Local A2I runtime through a real boto3 sagemaker-a2i-runtime client: validation, idempotency, output, events."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from vidmod.emulator.a2i import HumanLoopRuntime
from vidmod.emulator.event_router import EventRouter
from vidmod.emulator.gateway import Gateway

FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/vidmod-local-review"
INPUT = json.dumps({"video": {"uri": "s3://media/a.mp4", "name": "a.mp4"}, "segments": []})


@pytest.fixture
def a2i(tmp_path):
    events: list[dict] = []
    router = EventRouter(lambda *_: None)
    router.publish = lambda event: events.append(event) or "id"
    gateway = Gateway(router)
    url = gateway.start()
    runtime = HumanLoopRuntime(url, tmp_path, {FLOW: "s3://results/a2i-output"})
    gateway.a2i = runtime.wsgi_app
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    boto3.client("s3", **kwargs).create_bucket(Bucket="results")
    yield runtime, boto3.client("sagemaker-a2i-runtime", **kwargs), boto3.client("s3", **kwargs), events, tmp_path
    gateway.stop()
    router.close()


def error_code(call, **kwargs) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]["Code"]


def test_start_is_idempotent_for_the_same_input_and_conflicts_for_another(a2i):
    _, client, _, _, _ = a2i
    arn = client.start_human_loop(
        HumanLoopName="loop-1", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT}
    )["HumanLoopArn"]
    again = client.start_human_loop(
        HumanLoopName="loop-1", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT}
    )["HumanLoopArn"]
    assert arn == again and arn.endswith(":human-loop/loop-1")
    other = json.dumps({"video": {"uri": "s3://media/b.mp4"}})
    assert (
        error_code(
            client.start_human_loop,
            HumanLoopName="loop-1",
            FlowDefinitionArn=FLOW,
            HumanLoopInput={"InputContent": other},
        )
        == "ConflictException"
    )
    described = client.describe_human_loop(HumanLoopName="loop-1")
    assert described["HumanLoopStatus"] == "InProgress" and described["FlowDefinitionArn"] == FLOW


@pytest.mark.parametrize(
    ("name", "flow", "content"),
    [
        ("Upper-Case", FLOW, INPUT),
        ("ends-with-", FLOW, INPUT),
        ("x" * 64, FLOW, INPUT),
        ("ok", FLOW.replace("vidmod-local-review", "unknown"), INPUT),
        ("ok", FLOW, "{not json"),
        ("ok", FLOW, json.dumps({"pad": "x" * 3_145_728})),
    ],
)
def test_a2i_validation(a2i, name, flow, content):
    _, client, _, _, _ = a2i
    assert (
        error_code(
            client.start_human_loop,
            HumanLoopName=name,
            FlowDefinitionArn=flow,
            HumanLoopInput={"InputContent": content},
        )
        == "ValidationException"
    )


def test_submit_writes_a2i_output_at_a2is_path_emits_the_event_and_only_once(a2i):
    runtime, client, s3, events, _ = a2i
    client.start_human_loop(HumanLoopName="loop-2", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    accepted = datetime.now(UTC) - timedelta(seconds=42)
    uri = runtime.submit("loop-2", {"decision-approve": {"value": True}}, "alice", accepted)
    assert uri.startswith("s3://results/a2i-output/vidmod-local-review/") and uri.endswith("/loop-2/output.json")
    parts = uri.split("/")
    assert len(parts[5:11]) == 6 and all(p.isdigit() for p in parts[5:11])  # YYYY/MM/DD/hh/mm/ss
    output = json.loads(s3.get_object(Bucket="results", Key=uri.split("/", 3)[3])["Body"].read())
    answer = output["humanAnswers"][0]
    assert output["flowDefinitionArn"] == FLOW and output["inputContent"] == json.loads(INPUT)
    assert answer["workerId"] == "alice" and 41 <= answer["timeSpentInSeconds"] <= 60
    assert answer["acceptanceTime"].endswith("Z") and len(answer["submissionTime"]) == 24
    (event,) = events
    assert event["source"] == "aws.sagemaker" and event["detail-type"] == "SageMaker A2I HumanLoop Status Change"
    assert event["detail"]["humanLoopStatus"] == "Completed"
    assert event["detail"]["humanLoopOutput"]["outputS3Uri"] == uri
    assert client.describe_human_loop(HumanLoopName="loop-2")["HumanLoopOutput"]["OutputS3Uri"] == uri
    with pytest.raises(Exception, match="cannot be submitted again"):
        runtime.submit("loop-2", {"decision-reject": {"value": True}}, "mallory", accepted)
    assert len(events) == 1


def test_stop_list_unknown_and_persistence(a2i):
    runtime, client, _, events, state_dir = a2i
    for name in ("loop-a", "loop-b"):
        client.start_human_loop(HumanLoopName=name, FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    client.stop_human_loop(HumanLoopName="loop-a")
    assert events[-1]["detail"]["humanLoopStatus"] == "Stopped"
    summaries = client.list_human_loops(FlowDefinitionArn=FLOW)["HumanLoopSummaries"]
    assert {s["HumanLoopName"]: s["HumanLoopStatus"] for s in summaries} == {
        "loop-a": "Stopped",
        "loop-b": "InProgress",
    }
    assert error_code(client.describe_human_loop, HumanLoopName="nope") == "ResourceNotFoundException"
    reopened = HumanLoopRuntime(runtime.endpoint_url, state_dir, runtime.flow_definitions)
    assert [loop["HumanLoopName"] for loop in reopened.list_open()] == ["loop-b"]


def test_a_name_with_a_trailing_newline_is_not_a_name(a2i):
    runtime, client, _, _, _ = a2i
    from vidmod.emulator.a2i import A2IError

    with pytest.raises(A2IError) as raised:
        runtime.start_human_loop("abc\n", FLOW, INPUT)
    assert raised.value.code == "ValidationException"
    assert (
        error_code(
            client.start_human_loop,
            HumanLoopName="abc\n",
            FlowDefinitionArn=FLOW,
            HumanLoopInput={"InputContent": INPUT},
        )
        == "ValidationException"
    )
    client.start_human_loop(HumanLoopName="abc", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    with pytest.raises(A2IError) as missing:
        runtime.describe("abc\n")  # not the loop "abc"
    assert missing.value.code == "ResourceNotFoundException"


def test_input_content_limit_is_exactly_3_mib_of_characters(a2i):
    _, client, _, _, _ = a2i
    at_limit = '{"pad":"' + "x" * (3_145_728 - 10) + '"}'
    assert len(at_limit) == 3_145_728
    client.start_human_loop(HumanLoopName="at-limit", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": at_limit})
    assert client.describe_human_loop(HumanLoopName="at-limit")["HumanLoopStatus"] == "InProgress"
    above = '{"pad":"' + "x" * (3_145_728 - 9) + '"}'
    assert len(above) == 3_145_729
    assert (
        error_code(
            client.start_human_loop,
            HumanLoopName="above",
            FlowDefinitionArn=FLOW,
            HumanLoopInput={"InputContent": above},
        )
        == "ValidationException"
    )


def test_list_human_loops_sorts_pages_and_filters_by_creation_time(a2i):
    runtime, client, _, _, _ = a2i
    names = [f"loop-{i}" for i in range(5)]
    for i, name in enumerate(names):
        client.start_human_loop(HumanLoopName=name, FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
        path = runtime.directory / f"{name}.json"  # creation times one minute apart
        loop = json.loads(path.read_text())
        loop["CreationTime"] = f"2026-11-24T10:0{i}:00.000Z"
        path.write_text(json.dumps(loop))

    def listed(**kwargs) -> list[str]:
        return [
            s["HumanLoopName"] for s in client.list_human_loops(FlowDefinitionArn=FLOW, **kwargs)["HumanLoopSummaries"]
        ]

    assert listed() == names[::-1]  # SortOrder defaults to Descending
    assert listed(SortOrder="Ascending") == names
    assert listed(SortOrder="Descending") == names[::-1]
    first = client.list_human_loops(FlowDefinitionArn=FLOW, SortOrder="Ascending", MaxResults=2)
    assert [s["HumanLoopName"] for s in first["HumanLoopSummaries"]] == names[:2] and first["NextToken"]
    second = client.list_human_loops(
        FlowDefinitionArn=FLOW, SortOrder="Ascending", MaxResults=2, NextToken=first["NextToken"]
    )
    assert [s["HumanLoopName"] for s in second["HumanLoopSummaries"]] == names[2:4]
    third = client.list_human_loops(
        FlowDefinitionArn=FLOW, SortOrder="Ascending", MaxResults=2, NextToken=second["NextToken"]
    )
    assert [s["HumanLoopName"] for s in third["HumanLoopSummaries"]] == names[4:] and "NextToken" not in third
    paged = client.get_paginator("list_human_loops").paginate(FlowDefinitionArn=FLOW, PaginationConfig={"PageSize": 2})
    assert [s["HumanLoopName"] for page in paged for s in page["HumanLoopSummaries"]] == names[::-1]
    after = datetime(2026, 11, 24, 10, 1, tzinfo=UTC)
    before = datetime(2026, 11, 24, 10, 3, tzinfo=UTC)
    assert listed(CreationTimeAfter=after, SortOrder="Ascending") == names[1:]
    assert listed(CreationTimeBefore=before, SortOrder="Ascending") == names[:4]
    assert listed(CreationTimeAfter=after, CreationTimeBefore=before, SortOrder="Ascending") == names[1:4]
    summary = client.list_human_loops(FlowDefinitionArn=FLOW, MaxResults=1)["HumanLoopSummaries"][0]
    assert set(summary) == {"HumanLoopName", "HumanLoopStatus", "CreationTime", "FlowDefinitionArn"}
    unknown = FLOW.replace("vidmod-local-review", "no-such-flow")
    assert error_code(client.list_human_loops, FlowDefinitionArn=unknown) == "ResourceNotFoundException"
    assert error_code(client.list_human_loops, FlowDefinitionArn=FLOW, SortOrder="Sideways") == "ValidationException"
    assert error_code(client.list_human_loops, FlowDefinitionArn=FLOW, NextToken="garbage") == "ValidationException"


def test_a_status_event_that_could_not_be_sent_is_sent_later(a2i, monkeypatch):
    """The answer is saved first; an event that fails is re-sent (describe, start, retry thread), never lost."""
    import vidmod.emulator.a2i as module

    runtime, client, _, events, _ = a2i
    client.start_human_loop(HumanLoopName="late", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    real_emit, failures = runtime._emit, []

    def broken(loop):
        failures.append(loop["HumanLoopName"])
        raise ConnectionError("endpoint down")

    monkeypatch.setattr(module, "RETRY_DELAYS", (3600,))  # no background retry during this part
    runtime._emit = broken
    uri = runtime.submit("late", {"decision-approve": {"value": True}}, "alice", datetime.now(UTC))  # no error
    assert failures == ["late"] and events == []
    saved = json.loads((runtime.directory / "late.json").read_text())
    assert saved["HumanLoopStatus"] == "Completed" and saved["EventEmitted"] is False
    runtime._emit = real_emit
    described = client.describe_human_loop(HumanLoopName="late")  # a caller looking at the loop sends it
    assert described["HumanLoopStatus"] == "Completed" and described["HumanLoopOutput"]["OutputS3Uri"] == uri
    (event,) = events
    assert (
        event["detail"]["humanLoopStatus"] == "Completed" and event["detail"]["humanLoopOutput"]["outputS3Uri"] == uri
    )
    assert json.loads((runtime.directory / "late.json").read_text())["EventEmitted"] is True
    client.describe_human_loop(HumanLoopName="late")
    assert len(events) == 1  # sent once it got through


def test_a_failed_status_event_is_retried_in_the_background(a2i, monkeypatch):
    import vidmod.emulator.a2i as module

    runtime, client, _, events, _ = a2i
    monkeypatch.setattr(module, "RETRY_DELAYS", (0.05,))
    client.start_human_loop(HumanLoopName="retried", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    real_emit, attempts = runtime._emit, []

    def flaky(loop):
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("endpoint down")
        real_emit(loop)

    runtime._emit = flaky
    runtime.stop("retried")
    deadline = time.monotonic() + 10
    while not events and time.monotonic() < deadline:
        time.sleep(0.05)
    (event,) = events
    assert event["detail"]["humanLoopStatus"] == "Stopped" and len(attempts) == 3

    def emitted() -> bool:  # the loop is marked once the event is out (at least once, never lost)
        return json.loads((runtime.directory / "retried.json").read_text())["EventEmitted"]

    while not emitted() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emitted() is True


def test_an_answer_that_could_not_be_saved_is_an_error_and_the_loop_stays_open(a2i):
    from vidmod.emulator.a2i import A2IError

    runtime, client, _, events, _ = a2i
    client.start_human_loop(HumanLoopName="unsaved", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    runtime.flow_definitions[FLOW] = "s3://no-such-bucket/a2i-output"  # the write fails
    with pytest.raises(A2IError) as raised:
        runtime.submit("unsaved", {"decision-approve": {"value": True}}, "alice")
    assert raised.value.status == 500 and "not saved" in raised.value.message
    assert client.describe_human_loop(HumanLoopName="unsaved")["HumanLoopStatus"] == "InProgress" and events == []


def test_starting_a_finished_loop_again_returns_it_and_its_status_is_visible(a2i):
    runtime, client, _, events, _ = a2i
    client.start_human_loop(HumanLoopName="done", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    runtime.submit("done", {"decision-approve": {"value": True}}, "alice")
    again = client.start_human_loop(
        HumanLoopName="done", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT}
    )
    assert again["HumanLoopArn"].endswith(":human-loop/done")
    assert client.describe_human_loop(HumanLoopName="done")["HumanLoopStatus"] == "Completed"
    client.start_human_loop(HumanLoopName="halted", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    client.stop_human_loop(HumanLoopName="halted")
    client.start_human_loop(HumanLoopName="halted", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    assert client.describe_human_loop(HumanLoopName="halted")["HumanLoopStatus"] == "Stopped"
    assert [e["detail"]["humanLoopStatus"] for e in events] == ["Completed", "Stopped"]  # nothing re-sent


def test_acceptance_time_is_the_reviewers_first_opening(a2i):
    runtime, client, s3, _, _ = a2i
    client.start_human_loop(HumanLoopName="opened", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    first = runtime.accept("opened", "alice")["alice"]
    time.sleep(0.05)
    assert runtime.accept("opened", "alice")["alice"] == first  # a reload does not reset it
    assert set(runtime.accept("opened", "bob")) == {"alice", "bob"}
    uri = runtime.submit("opened", {"decision-approve": {"value": True}}, "alice")
    (answer,) = json.loads(s3.get_object(Bucket="results", Key=uri.split("/", 3)[3])["Body"].read())["humanAnswers"]
    assert answer["acceptanceTime"] == first and answer["timeSpentInSeconds"] >= 0.05
    assert runtime.acceptances("opened") == {}  # removed on submit


def test_media_references_are_the_loops_videos(a2i):
    runtime, client, _, _, _ = a2i
    pinned = json.dumps({"video": {"uri": "s3://media/b.mp4", "name": "b.mp4", "versionId": "v1"}})
    client.start_human_loop(HumanLoopName="ref-a", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    client.start_human_loop(HumanLoopName="ref-b", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": pinned})
    assert runtime.media_references() == {("media", "a.mp4"): {""}, ("media", "b.mp4"): {"v1"}}
    client.delete_human_loop(HumanLoopName="ref-a")
    assert runtime.media_references() == {("media", "b.mp4"): {"v1"}}


# ---------------------------------------------------------------- several reviewers per object (TaskCount)
def answers_of(s3, uri: str) -> list[dict]:
    return json.loads(s3.get_object(Bucket="results", Key=uri.split("/", 3)[3])["Body"].read())["humanAnswers"]


def test_a_loop_waits_for_task_count_distinct_workers_then_writes_every_answer_once(a2i):
    from vidmod.emulator.a2i import A2IError

    runtime, client, s3, events, _ = a2i
    runtime.task_counts[FLOW] = 3
    client.start_human_loop(HumanLoopName="panel", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    runtime.accept("panel", "ann")
    runtime.accept("panel", "ben")
    first = runtime.answer("panel", {"decision-reject": {"value": True}}, "ann")
    assert (first.output_uri, first.answers, first.needed, first.waiting_for) == ("", 1, 3, 2)
    assert client.describe_human_loop(HumanLoopName="panel")["HumanLoopStatus"] == "InProgress"
    assert "HumanLoopOutput" not in client.describe_human_loop(HumanLoopName="panel") and events == []
    assert runtime.answers("panel") == (["ann"], 3)
    assert set(runtime.acceptances("panel")) == {"ben"}  # ann answered: she is not reviewing it any more
    assert set(runtime.accept("panel", "ann")) == {"ben"}  # opening it again does not accept it again
    (listed,) = [loop for loop in runtime.list_open() if loop["HumanLoopName"] == "panel"]
    assert (listed["Answered"], listed["TaskCount"]) == (["ann"], 3)
    with pytest.raises(A2IError) as raised:  # never the same task twice
        runtime.submit("panel", {"decision-approve": {"value": True}}, "ann")
    assert (raised.value.code, raised.value.status) == ("ConflictException", 409)
    assert "already answered" in raised.value.message
    assert runtime.submit("panel", {"decision-approve": {"value": True}}, "ben") == ""
    uri = runtime.submit("panel", {"decision-reject": {"value": True}}, "cat")
    assert uri.endswith("/panel/output.json")
    answers = answers_of(s3, uri)
    assert [a["workerId"] for a in answers] == ["ann", "ben", "cat"]  # submission order
    assert [a["answerContent"] for a in answers] == [
        {"decision-reject": {"value": True}},
        {"decision-approve": {"value": True}},
        {"decision-reject": {"value": True}},
    ]
    assert answers[0]["submissionTime"] <= answers[1]["submissionTime"] <= answers[2]["submissionTime"]
    assert all(set(a) == set(answers_of(s3, uri)[0]) for a in answers)  # each in A2I's shape
    (event,) = events
    assert (
        event["detail"]["humanLoopStatus"] == "Completed" and event["detail"]["humanLoopOutput"]["outputS3Uri"] == uri
    )
    assert client.describe_human_loop(HumanLoopName="panel")["HumanLoopStatus"] == "Completed"
    with pytest.raises(A2IError, match="cannot be submitted again"):
        runtime.submit("panel", {"decision-approve": {"value": True}}, "dan")


def test_saved_answers_survive_a_restart_and_a_loop_keeps_its_own_task_count(a2i):
    runtime, client, s3, _, state = a2i
    runtime.task_counts[FLOW] = 2
    client.start_human_loop(HumanLoopName="durable", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})
    runtime.submit("durable", {"decision-approve": {"value": True}}, "ann")
    saved = json.loads((state / "a2i" / "durable.json").read_text())  # on disk when the call returned
    assert [a["workerId"] for a in saved["Answers"]] == ["ann"] and saved["TaskCount"] == 2
    restarted = HumanLoopRuntime(runtime.endpoint_url, state, {FLOW: "s3://results/a2i-output"}, task_counts={FLOW: 3})
    assert restarted.answers("durable") == (["ann"], 2)  # started with 2: the new count is for new loops
    uri = restarted.submit("durable", {"decision-reject": {"value": True}}, "ben")
    assert [a["workerId"] for a in answers_of(s3, uri)] == ["ann", "ben"]
    assert "Answers" not in json.loads((state / "a2i" / "durable.json").read_text())  # output.json holds them


def test_an_answer_that_could_not_be_kept_with_the_loop_is_an_error(a2i, monkeypatch):
    from vidmod.emulator.a2i import A2IError

    runtime, client, _, _, _ = a2i
    runtime.task_counts[FLOW] = 2
    client.start_human_loop(HumanLoopName="disk-full", FlowDefinitionArn=FLOW, HumanLoopInput={"InputContent": INPUT})

    def full(loop):
        raise OSError("No space left on device")

    monkeypatch.setattr(runtime, "_save", full)
    with pytest.raises(A2IError) as raised:
        runtime.submit("disk-full", {"decision-approve": {"value": True}}, "ann")
    assert raised.value.status == 500 and "not saved" in raised.value.message
    monkeypatch.undo()
    assert runtime.answers("disk-full") == ([], 2)  # ann may submit again


@pytest.mark.parametrize("count", [0, 4, "2"])
def test_task_count_is_one_to_three_workers(tmp_path, count):
    with pytest.raises(ValueError, match="TaskCount"):
        HumanLoopRuntime("http://127.0.0.1:1", tmp_path, {FLOW: "s3://results/out"}, task_counts={FLOW: count})
