"""Local A2I runtime through a real boto3 sagemaker-a2i-runtime client: validation, idempotency, output, events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from vidmod.a2i.runtime import HumanLoopRuntime
from vidmod.local.events import EventRouter
from vidmod.local.gateway import Gateway

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
