"""The runtime against plain moto (no gateway): output.json lands in S3 and the status-change event reaches a
real EventBridge rule (source aws.sagemaker) whose SQS target a consumer would read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer

from vidmod.emulator.a2i import A2IError, HumanLoopRuntime

FLOW = "arn:aws:sagemaker:us-east-1:123456789012:flow-definition/review-flow"
INPUT = {
    "schemaVersion": "1",
    "video": {"uri": "s3://media/a.mp4", "name": "a.mp4", "durationMillis": 8000},
    "segments": [{"index": 0, "name": "Weapons", "parentName": "Violence", "startMillis": 1000, "endMillis": 2000}],
}


@pytest.fixture
def moto_a2i(tmp_path):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)  # binds a free port and keeps it
    server.start()
    port = server.get_host_and_port()[1]
    url = f"http://127.0.0.1:{port}"
    kwargs = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}
    s3, events, sqs = (boto3.client(name, **kwargs) for name in ("s3", "events", "sqs"))
    s3.create_bucket(Bucket="results")
    queue = sqs.create_queue(QueueName="a2i-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="a2i-status",
        EventPattern=json.dumps(
            {"source": ["aws.sagemaker"], "detail-type": ["SageMaker A2I HumanLoop Status Change"]}
        ),
    )
    events.put_targets(Rule="a2i-status", Targets=[{"Id": "q", "Arn": queue_arn}])
    runtime = HumanLoopRuntime(url, tmp_path, {FLOW: "s3://results/human-output"})
    yield runtime, s3, sqs, queue, tmp_path
    server.stop()


def received(sqs, queue: str) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_submit_writes_output_and_the_event_reaches_a_rule_target(moto_a2i):
    runtime, s3, sqs, queue, _ = moto_a2i
    content = json.dumps(INPUT)
    arn = runtime.start_human_loop("clip-1", FLOW, content)
    assert runtime.start_human_loop("clip-1", FLOW, content) == arn
    answer = {"decision-approve": {"value": False}, "decision-reject": {"value": True}, "seg-0-tp": {"value": True}}
    uri = runtime.submit("clip-1", answer, "alice", datetime.now(UTC) - timedelta(seconds=5))

    _, _, bucket, key = uri.split("/", 3)
    assert bucket == "results" and key.startswith("human-output/review-flow/") and key.endswith("/clip-1/output.json")
    stamp = key.split("/")[2:8]
    assert [len(part) for part in stamp] == [4, 2, 2, 2, 2, 2] and all(part.isdigit() for part in stamp)
    output = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert output["flowDefinitionArn"] == FLOW and output["humanLoopName"] == "clip-1"
    assert output["inputContent"] == INPUT and output["humanAnswers"][0]["answerContent"] == answer

    (event,) = received(sqs, queue)
    assert event["source"] == "aws.sagemaker"
    assert event["detail-type"] == "SageMaker A2I HumanLoop Status Change"
    assert event["detail"]["humanLoopStatus"] == "Completed" and event["detail"]["humanLoopName"] == "clip-1"
    assert event["detail"]["humanLoopArn"] == arn and event["detail"]["humanLoopOutput"] == {"outputS3Uri": uri}
    assert set(event["detail"]) == {
        "creationTime",
        "failureCode",
        "failureReason",
        "flowDefinitionArn",
        "humanLoopArn",
        "humanLoopName",
        "humanLoopOutput",
        "humanLoopStatus",
    }
    described = runtime.describe("clip-1")
    assert described["HumanLoopStatus"] == "Completed" and described["HumanLoopOutput"] == {"OutputS3Uri": uri}
    with pytest.raises(A2IError) as again:
        runtime.submit("clip-1", answer, "bob", datetime.now(UTC))
    assert again.value.code == "ConflictException"


def test_fail_and_stop_emit_their_status_and_state_survives_a_restart(moto_a2i):
    runtime, _, sqs, queue, state_dir = moto_a2i
    for name in ("old", "broken", "halted"):
        runtime.start_human_loop(name, FLOW, json.dumps(INPUT))
    runtime.fail("broken", "WorkerTimeout", "no reviewer in time")
    runtime.stop("halted")
    statuses = {e["detail"]["humanLoopName"]: e["detail"] for e in received(sqs, queue)}
    assert statuses["broken"]["humanLoopStatus"] == "Failed"
    assert statuses["broken"]["failureReason"] == "no reviewer in time"
    assert statuses["halted"]["humanLoopStatus"] == "Stopped"

    reopened = HumanLoopRuntime(runtime.endpoint_url, state_dir, runtime.flow_definitions)
    assert [loop["HumanLoopName"] for loop in reopened.list_open()] == ["old"]
    assert reopened.describe("broken")["FailureCode"] == "WorkerTimeout"
    with pytest.raises(A2IError) as missing:
        reopened.describe("never-started")
    assert (missing.value.code, missing.value.status) == ("ResourceNotFoundException", 404)
