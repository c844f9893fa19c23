"""archive_execution keeps a finished execution's whole history in the audit bucket, once per end, with the
memory of a page whatever the history's length; and publishes the execution's metrics from it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from unit.conftest import ROOT
from unit.emf import metrics

ARN = "arn:aws:states:us-east-1:123456789012:execution:vidmod-Moderation:clip-abc"
RECORDINGS = ROOT / "tests" / "audit" / "fixtures"
NAMESPACE = "vidmod/test-stack"


def status_change(execution_arn: str, status: str = "SUCCEEDED") -> dict:
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-25T10:00:00Z",
        "region": "us-east-1",
        "resources": [execution_arn],
        "detail": {"executionArn": execution_arn, "status": status, "name": execution_arn.rsplit(":", 1)[-1]},
    }


class PagingStepFunctions:
    """DescribeExecution and GetExecutionHistory for one execution, pages made on demand (``event(i)`` builds
    event i, so a long history is never held whole by the test either)."""

    def __init__(self, arn: str, count: int, event, status: str = "SUCCEEDED", redrive_count: int = 0):
        self.arn, self.count, self.event, self.status, self.redrive_count = arn, count, event, status, redrive_count
        self.page_sizes: list[int] = []

    def describe_execution(self, executionArn: str) -> dict:
        assert executionArn == self.arn
        described = {"executionArn": self.arn, "name": self.arn.rsplit(":", 1)[-1], "status": self.status,
                     "startDate": datetime(2026, 11, 25, tzinfo=UTC), "input": "{}"}  # fmt: skip
        return described | ({"redriveCount": self.redrive_count} if self.redrive_count else {})

    def get_paginator(self, operation: str):
        assert operation == "get_execution_history"
        return self

    def paginate(self, executionArn: str, maxResults: int = 100):
        assert executionArn == self.arn
        for start in range(0, self.count, maxResults):
            page = [self.event(i) for i in range(start, min(start + maxResults, self.count))]
            self.page_sizes.append(len(page))
            yield {"events": page}


def recorded(name: str, redrive_count: int = 0) -> PagingStepFunctions:
    """A history recorded from a real run on the local stack (tests/audit/fixtures)."""
    recording = json.loads((RECORDINGS / f"{name}.history.json").read_text())
    events = recording["events"]
    status = "SUCCEEDED" if events[-1]["type"] == "ExecutionSucceeded" else "FAILED"
    return PagingStepFunctions(recording["executionArn"], len(events), events.__getitem__, status, redrive_count)


def redriven(name: str) -> PagingStepFunctions:
    """The recording, redriven once: its failed last state runs again and fails again."""
    first = recorded(name)
    events = [first.event(i) for i in range(first.count)]
    failed_state, ending = events[-2], events[-1]
    again = [{"id": first.count + 1, "type": "ExecutionRedriven", "timestamp": "2026-12-02T09:00:00.000Z",
              "executionRedrivenEventDetails": {"redriveCount": 1}},
             failed_state | {"id": first.count + 2, "timestamp": "2026-12-02T09:00:00.010Z"},
             ending | {"id": first.count + 3, "timestamp": "2026-12-02T09:00:00.020Z"}]  # fmt: skip
    history = events + again
    return PagingStepFunctions(first.arn, len(history), history.__getitem__, "FAILED", redrive_count=1)


@pytest.fixture
def finished_execution(aws):
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="vidmod-Moderation",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )
    return sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="clip-abc", input='{"video": 1}')


@pytest.fixture
def archiver(aws, load_function, monkeypatch):
    """archive_execution with its audit bucket, and an S3 client to read what it wrote."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="audit")
    monkeypatch.setenv("AUDIT_BUCKET", "audit")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "vidmod")
    return load_function("archive_execution"), s3


def test_the_archive_holds_the_description_and_every_event_with_iso_times(
    aws, archiver, lambda_context, finished_execution
):
    app, s3 = archiver
    arn = finished_execution["executionArn"]

    result = app.lambda_handler(status_change(arn), lambda_context)

    assert result == {"archived": True, "key": "executions/vidmod-Moderation/clip-abc.json"}
    archive = json.loads(s3.get_object(Bucket="audit", Key=result["key"])["Body"].read())
    live = aws.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    assert archive["format"] == 1
    assert archive["execution"]["executionArn"] == arn and archive["execution"]["input"] == '{"video": 1}'
    assert [e["id"] for e in archive["events"]] == [e["id"] for e in live] and len(live) > 1
    assert archive["events"][0]["timestamp"].endswith("Z")
    assert datetime.fromisoformat(archive["archivedAt"]) <= datetime.now(UTC)


def test_a_duplicate_event_never_replaces_the_archive_nor_counts_again(archiver, lambda_context, monkeypatch, capsys):
    app, s3 = archiver
    sfn = recorded("approved")
    monkeypatch.setattr(app, "sfn", sfn)
    first = app.lambda_handler(status_change(sfn.arn), lambda_context)
    original = s3.get_object(Bucket="audit", Key=first["key"])["Body"].read()
    assert metrics(capsys.readouterr().out)["Decisions"]["value"] == 1

    again = app.lambda_handler(status_change(sfn.arn), lambda_context)

    assert again == {"archived": False, "key": first["key"]}
    assert s3.get_object(Bucket="audit", Key=first["key"])["Body"].read() == original
    assert metrics(capsys.readouterr().out) == {}


def test_every_history_page_is_archived(aws, load_function):
    app = load_function("archive_execution")
    import execution_archive

    moment = datetime(2026, 11, 25, tzinfo=UTC)
    page = [{"id": i, "timestamp": moment, "type": "PassStateEntered"} for i in (1, 2)]
    asked = {"executionArn": ARN, "maxResults": execution_archive.PAGE_EVENTS}
    with Stubber(app.sfn) as stub:
        stub.add_response("get_execution_history", {"events": page, "nextToken": "p2"}, asked)
        stub.add_response(
            "get_execution_history",
            {"events": [{"id": 3, "timestamp": moment, "type": "ExecutionSucceeded"}]},
            asked | {"nextToken": "p2"},
        )
        assert [e["id"] for e in execution_archive.history(app.sfn, ARN)] == [1, 2, 3]


def test_archive_keys_name_the_execution_and_its_redrive(aws, load_function):
    load_function("archive_execution")
    from vidmod_contracts.archive import archive_key, latest_archive_key, redrive_count_of

    assert archive_key(ARN) == "executions/vidmod-Moderation/clip-abc.json"
    assert archive_key(ARN, 2) == "executions/vidmod-Moderation/clip-abc.redrive-2.json"
    keys = [archive_key(ARN), archive_key(ARN, 2), archive_key(ARN, 10), archive_key(ARN + "-x", 11)]
    assert latest_archive_key(ARN, keys) == archive_key(ARN, 10)  # numerically, and only this execution's
    assert [redrive_count_of(ARN, key) for key in keys] == [0, 2, 10, None]
    assert redrive_count_of(ARN, "executions/vidmod-Moderation/clip-abc.redrive-02.json") is None
    with pytest.raises(ValueError, match="not a Step Functions execution ARN"):
        archive_key("arn:aws:states:us-east-1:123456789012:stateMachine:vidmod-Moderation")


# ---------------------------------------------------------------------------------------------- metrics
SERVICE = {"service": "vidmod"}


def _at(event: dict) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def timings(name: str) -> dict[str, float]:
    """The two durations as a reader of the recorded history measures them: the moderation job from
    StartModeration's success to the first status check that saw the job end; the review from entering
    HumanReview to its verdict (only when a verdict came)."""
    recording = json.loads((RECORDINGS / f"{name}.history.json").read_text())
    state, started, entered_review, figures = "", None, None, {}
    for event in recording["events"]:
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        if event["type"].endswith("StateEntered"):
            state = details["name"]
            if state == "HumanReview":
                entered_review = _at(event)
        elif event["type"] != "TaskSucceeded":
            continue
        elif state == "StartModeration":
            started = _at(event)
        elif state == "CheckModeration" and "ModerationJobSeconds" not in figures:
            if json.loads(details["output"]).get("JobStatus") in ("SUCCEEDED", "FAILED"):
                figures["ModerationJobSeconds"] = round((_at(event) - started).total_seconds(), 3)
        elif state == "HumanReview":
            figures["ReviewLatencySeconds"] = round((_at(event) - entered_review).total_seconds(), 3)
    return figures


@pytest.mark.parametrize(
    ("recording", "decision", "failure"),
    [
        ("human_review", {"outcome": "REJECT", "source": "human"}, None),
        ("approved", {"outcome": "APPROVE", "source": "automatic"}, None),
        # the Rekognition job failed: a FAILED record, and the execution failed
        ("failed", {"outcome": "FAILED", "source": "automatic"}, {"error": "ModerationJobFailed"}),
        # nobody reviewed in time: escalated by the system, no review latency
        ("timed_out", {"outcome": "ESCALATED", "source": "automatic"}, {"error": "ReviewTimedOut"}),
    ],
)
def test_a_finished_execution_publishes_its_metrics_in_emf(
    archiver, lambda_context, monkeypatch, capsys, recording, decision, failure
):
    expected = {"Decisions": (1, "Count", decision)} | {
        name: (seconds, "Seconds", {}) for name, seconds in timings(recording).items()
    }
    if failure:
        expected["ExecutionFailures"] = (1, "Count", failure)
    assert "ModerationJobSeconds" in expected and ("ReviewLatencySeconds" in expected) == (recording == "human_review")
    app, _ = archiver
    sfn = recorded(recording)
    monkeypatch.setattr(app, "sfn", sfn)

    app.lambda_handler(status_change(sfn.arn, sfn.status), lambda_context)

    published = metrics(capsys.readouterr().out)
    assert {name: (m["value"], m["unit"], m["dimensions"]) for name, m in published.items()} == {
        name: (value, unit, SERVICE | dimensions) for name, (value, unit, dimensions) in expected.items()
    }
    assert {m["namespace"] for m in published.values()} == {NAMESPACE}


def test_emf_documents_have_cloudwatchs_shape(archiver, lambda_context, monkeypatch, capsys):
    app, _ = archiver
    monkeypatch.setattr(app, "sfn", recorded("human_review"))
    app.lambda_handler(status_change(app.sfn.arn), lambda_context)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    decisions = next(d for d in lines if "Decisions" in d)
    ((dimensions,),) = [directive.pop("Dimensions") for directive in decisions["_aws"]["CloudWatchMetrics"]]
    assert sorted(dimensions) == ["outcome", "service", "source"]  # one dimension set, these three
    assert decisions["_aws"]["CloudWatchMetrics"] == [
        {"Namespace": NAMESPACE, "Metrics": [{"Name": "Decisions", "Unit": "Count"}]}
    ]
    assert isinstance(decisions["_aws"]["Timestamp"], int)
    assert (decisions["service"], decisions["outcome"], decisions["source"], decisions["Decisions"]) == (
        "vidmod",
        "REJECT",
        "human",
        [1.0],
    )


def test_metrics_publish_under_vidmod_without_the_templates_environment(archiver, lambda_context, monkeypatch, capsys):
    app, _ = archiver
    monkeypatch.delenv("POWERTOOLS_METRICS_NAMESPACE")
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME")
    monkeypatch.setattr(app, "sfn", recorded("approved"))
    app.lambda_handler(status_change(app.sfn.arn), lambda_context)
    decisions = metrics(capsys.readouterr().out)["Decisions"]
    assert (decisions["namespace"], decisions["dimensions"]["service"]) == ("vidmod", "vidmod")


# ---------------------------------------------------------------------------------------------- redrive
def test_a_redriven_execution_is_archived_again_beside_its_first_archive(archiver, lambda_context, monkeypatch, capsys):
    app, s3 = archiver
    first_run = recorded("failed")
    monkeypatch.setattr(app, "sfn", first_run)
    first = app.lambda_handler(status_change(first_run.arn, "FAILED"), lambda_context)
    original = s3.get_object(Bucket="audit", Key=first["key"])["Body"].read()
    capsys.readouterr()

    monkeypatch.setattr(app, "sfn", redriven("failed"))
    second = app.lambda_handler(status_change(first_run.arn, "FAILED"), lambda_context)

    assert second == {"archived": True, "key": first["key"].replace(".json", ".redrive-1.json")}
    assert s3.get_object(Bucket="audit", Key=first["key"])["Body"].read() == original
    archive = json.loads(s3.get_object(Bucket="audit", Key=second["key"])["Body"].read())
    assert archive["execution"]["redriveCount"] == 1
    assert len(archive["events"]) == first_run.count + 3  # the first run's events, then the redriven run's
    # the redriven run failed again, and recorded no second decision: only its failure counts
    published = metrics(capsys.readouterr().out)
    assert {name: m["dimensions"] for name, m in published.items()} == {
        "ExecutionFailures": SERVICE | {"error": "ModerationJobFailed"}
    }


# ---------------------------------------------------------------------------------------------- long histories
def padded_event(i: int, size: int = 20_000) -> dict:
    """Event i of a long polling loop whose state data carries ``size`` bytes (label summaries, say)."""
    moment = datetime(2026, 11, 25, tzinfo=UTC) + timedelta(milliseconds=i)
    if i == 0:
        return {
            "id": 1,
            "type": "ExecutionStarted",
            "timestamp": moment,
            "executionStartedEventDetails": {"input": "{}"},
        }
    kind, key = (
        ("PassStateEntered", "stateEnteredEventDetails") if i % 2 else ("PassStateExited", "stateExitedEventDetails")
    )
    data = json.dumps({"poll": i, "notes": hashlib.sha256(str(i).encode()).hexdigest() * (size // 64)})
    return {
        "id": i + 1,
        "previousEventId": i,
        "type": kind,
        "timestamp": moment,
        key: {"name": "BackOff", "output": data},
    }


def test_a_failed_archive_is_counted_raised_and_leaves_no_parts(archiver, lambda_context, monkeypatch, capsys):
    app, s3 = archiver
    import execution_archive

    def event(i: int) -> dict:
        if i == 1_000:  # past the first multipart part
            raise RuntimeError("GetExecutionHistory throttled for good")
        return padded_event(i)

    monkeypatch.setattr(app, "sfn", PagingStepFunctions(ARN, 2_000, event, "FAILED"))
    parts = []
    app.s3.meta.events.register(
        "provide-client-params.s3.UploadPart", lambda params, **_: parts.append(params["PartNumber"])
    )
    with pytest.raises(RuntimeError, match="throttled"):
        app.lambda_handler(status_change(ARN, "FAILED"), lambda_context)

    assert parts == [1, 2]  # 20 MB of events had gone up in 8 MiB parts before the failure
    assert execution_archive.PART_BYTES == 8 * 1024 * 1024
    assert s3.list_multipart_uploads(Bucket="audit").get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket="audit").get("KeyCount") == 0
    published = metrics(capsys.readouterr().out)
    assert {name: (m["value"], m["dimensions"]) for name, m in published.items()} == {"ArchiveFailures": (1, SERVICE)}


SERVER = (
    "import sys\n"
    "from moto.server import ThreadedMotoServer\n"
    "server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
    "server.start()\n"
    "print(server.get_host_and_port()[1], flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def s3_elsewhere(monkeypatch):
    """moto's S3 in its own process, so the memory measured here is the archiver's alone."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        s3.create_bucket(Bucket="audit")
        yield s3
    finally:
        server.stdin.close()
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_5000_event_history_is_archived_within_128_mb(s3_elsewhere, load_function, monkeypatch, lambda_context):
    monkeypatch.setenv("AUDIT_BUCKET", "audit")
    app = load_function("archive_execution")
    import execution_archive

    from vidmod_contracts.archive import archive_chunks

    events = 5_000
    sfn = PagingStepFunctions(ARN, events, padded_event, "SUCCEEDED")
    monkeypatch.setattr(app, "sfn", sfn)
    monkeypatch.setattr(app, "s3", s3_elsewhere)

    tracemalloc.start()
    try:
        result = app.lambda_handler(status_change(ARN), lambda_context)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert result == {"archived": True, "key": "executions/vidmod-Moderation/clip-abc.json"}
    head = s3_elsewhere.head_object(Bucket="audit", Key=result["key"])
    assert head["ContentLength"] > events * 20_000  # 100 MB of history …
    assert peak < 128 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    print(
        f"archived {head['ContentLength'] / 2**20:.0f} MiB with a peak of {peak / 2**20:.0f} MiB"
    )  # … archived within a 128 MB Lambda
    assert sfn.page_sizes == [execution_archive.PAGE_EVENTS] * (events // execution_archive.PAGE_EVENTS)
    expected, written = hashlib.sha256(), hashlib.sha256()
    first_bytes = s3_elsewhere.get_object(Bucket="audit", Key=result["key"], Range="bytes=0-99")["Body"].read()
    archived_at = datetime.fromisoformat(re.search(rb'"archivedAt":"([^"]+)"', first_bytes).group(1).decode())
    for chunk in archive_chunks(sfn.describe_execution(ARN), (padded_event(i) for i in range(events)), archived_at):
        expected.update(chunk)
    for chunk in s3_elsewhere.get_object(Bucket="audit", Key=result["key"])["Body"].iter_chunks(1 << 20):
        written.update(chunk)
    assert written.hexdigest() == expected.hexdigest()  # byte for byte the archive format the audit reads
