"""Reading an audit's sources: the archive in S3 when Step Functions has forgotten, s3:// targets, names."""

from __future__ import annotations

import copy
import json
from datetime import datetime

import boto3
import pytest
from audit.golden import as_json, load_recording, report_from
from botocore.stub import Stubber
from moto import mock_aws

from vidmod.audit.archive import parse_archive, read_archive
from vidmod.audit.sources import AuditSources, audit, audit_target
from vidmod_contracts.archive import archive_key

REGION = "us-east-1"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:vidmod-ModerationStateMachine"


@pytest.fixture
def recording():
    return load_recording("human_review")


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def handmade_archive(recording: dict) -> dict:
    """The shape functions/archive_execution writes: DescribeExecution + every event, ISO times."""
    events = copy.deepcopy(recording["events"])
    return {
        "format": 1,
        "archivedAt": "2026-11-25T11:05:00.000Z",
        "execution": {
            "executionArn": recording["executionArn"],
            "stateMachineArn": MACHINE,
            "name": recording["executionArn"].rsplit(":", 1)[-1],
            "status": "SUCCEEDED",
            "startDate": events[0]["timestamp"],
            "stopDate": events[-1]["timestamp"],
            "input": events[0]["executionStartedEventDetails"]["input"],
            "output": events[-1]["executionSucceededEventDetails"]["output"],
        },
        "events": events,
    }


def moto_sources(recording: dict, sfn) -> AuditSources:
    """DynamoDB and S3 in moto holding the recorded record, evidence files and the archive."""
    ddb, s3 = boto3.client("dynamodb", region_name=REGION), boto3.client("s3", region_name=REGION)
    ddb.create_table(
        TableName="decisions",
        KeySchema=[
            {"AttributeName": "videoUri", "KeyType": "HASH"},
            {"AttributeName": "executionName", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("videoUri", "executionName")],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="decisions", Item=recording["record"])
    for uri, text in recording["objects"].items():
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=text.encode())
    s3.create_bucket(Bucket="audit")
    body = json.dumps(handmade_archive(recording)).encode()
    s3.put_object(Bucket="audit", Key=archive_key(recording["executionArn"]), Body=body)
    return AuditSources(sfn, ddb, s3, "decisions", MACHINE, "audit")


def forgotten_sfn():
    """Step Functions after 90 days: ExecutionDoesNotExist for this execution."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    stub = Stubber(sfn)
    for _ in range(3):
        stub.add_client_error("get_execution_history", "ExecutionDoesNotExist", "Execution Does Not Exist")
    stub.activate()
    return sfn


def live_sfn(recording: dict, archive: dict):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    stub = Stubber(sfn)
    events = [
        dict(e, timestamp=datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))) for e in recording["events"]
    ]
    described = dict(archive["execution"])
    for name in ("startDate", "stopDate"):
        described[name] = datetime.fromisoformat(described[name].replace("Z", "+00:00"))
    stub.add_response("get_execution_history", {"events": events})
    stub.add_response("describe_execution", described)
    stub.activate()
    return sfn


def without_source(report) -> dict:
    return {k: v for k, v in as_json(report).items() if k not in {"historySource", "notes"}}


def test_a_forgotten_execution_is_audited_from_its_archive(aws, recording):
    report = audit(moto_sources(recording, forgotten_sfn()), recording["executionArn"])
    key = archive_key(recording["executionArn"])
    assert report.historySource == f"archive s3://audit/{key} (2026-11-25T11:05:00.000Z)"
    assert report.integrity == [] and without_source(report) == without_source(report_from(recording))


def test_from_archive_skips_step_functions(aws, recording):
    sfn = boto3.client("stepfunctions", region_name=REGION)
    with Stubber(sfn):  # any call would fail: nothing is stubbed
        report = audit(moto_sources(recording, sfn), recording["executionArn"], from_archive=True)
    assert report.historySource.startswith("archive s3://audit/") and report.integrity == []


def test_the_archive_is_checked_against_the_live_history(aws, recording):
    archive = handmade_archive(recording)
    sources = moto_sources(recording, live_sfn(recording, archive))
    report = audit(sources, recording["executionArn"])
    assert report.historySource.endswith(f"matched against the archive s3://audit/{archive_key(report.executionArn)}")
    assert report.integrity == []
    archive["events"][5]["timestamp"] = "2026-11-25T12:00:00.000Z"
    archive["execution"]["status"] = "FAILED"
    sources.s3.put_object(Bucket="audit", Key=archive_key(report.executionArn), Body=json.dumps(archive).encode())
    sources.sfn = live_sfn(recording, handmade_archive(recording))
    findings = audit(sources, recording["executionArn"]).integrity
    assert findings[:2] == [
        "archive event 6 differs from the live history in timestamp",
        "archived execution status is 'FAILED' but DescribeExecution says 'SUCCEEDED'",
    ]


def test_neither_history_nor_archive_is_a_clear_lookup_error(aws, recording):
    sources = moto_sources(recording, forgotten_sfn())
    sources.s3.delete_object(Bucket="audit", Key=archive_key(recording["executionArn"]))
    with pytest.raises(LookupError, match=r"no such execution \(not in Step Functions, nor archived: s3://audit\)"):
        audit(sources, recording["executionArn"])


def test_archive_format_is_read_in_one_place():
    archive = parse_archive("k", json.dumps({"format": 1, "execution": {}, "events": [
        {"id": 1, "type": "ExecutionStarted", "timestamp": "2026-11-25T11:04:21.541+00:00"}]}).encode())  # fmt: skip
    assert archive.events[0]["timestamp"] == "2026-11-25T11:04:21.541Z"
    with pytest.raises(ValueError, match="archive format 2 is not supported"):
        parse_archive("k", b'{"format": 2}')


def test_names_become_arns_and_videos_list_every_recorded_execution(aws, recording):
    sources = moto_sources(recording, forgotten_sfn())
    name = recording["executionArn"].rsplit(":", 1)[-1]
    assert sources.execution_arn(name) == recording["executionArn"]
    with pytest.raises(LookupError, match="not an execution ARN"):
        sources.execution_arn(MACHINE)
    uri = recording["record"]["videoUri"]["S"]
    assert sources.executions_for_video(uri) == [recording["executionArn"]]
    assert sources.executions_for_video(uri, recording["record"]["versionId"]["S"]) == [recording["executionArn"]]
    (report,) = audit_target(sources, uri)
    assert report.final["decision"] == "REJECT"


def test_video_lookups_page_through_the_table():
    ddb = boto3.client("dynamodb", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
    item = {"videoUri": {"S": "s3://b/k.mp4"}, "versionId": {"S": "v"}}
    expected = {
        "TableName": "t",
        "KeyConditionExpression": "videoUri = :v",
        "ExpressionAttributeValues": {":v": {"S": "s3://b/k.mp4"}},
    }
    with Stubber(ddb) as stub:
        stub.add_response("query", {"Items": [item | {"executionArn": {"S": "arn:2"}, "startedAt": {"S": "2"}}],
                                    "LastEvaluatedKey": {"videoUri": {"S": "s3://b/k.mp4"}}}, expected)  # fmt: skip
        stub.add_response("query", {"Items": [item | {"executionArn": {"S": "arn:1"}, "startedAt": {"S": "1"}}]},
                          expected | {"ExclusiveStartKey": {"videoUri": {"S": "s3://b/k.mp4"}}})  # fmt: skip
        assert AuditSources(None, ddb, None, "t").executions_for_video("s3://b/k.mp4") == ["arn:1", "arn:2"]


def described(arn: str, key: str) -> dict:
    video = {"bucket": "b", "key": key}
    return {"executionArn": arn, "stateMachineArn": MACHINE, "status": "RUNNING", "startDate": datetime(2026, 11, 25),
            "input": json.dumps({"video": video})}  # fmt: skip


def test_nothing_recorded_falls_back_to_list_executions_and_says_when_nothing_is_found():
    creds = {"region_name": REGION, "aws_access_key_id": "t", "aws_secret_access_key": "t"}
    ddb, sfn = boto3.client("dynamodb", **creds), boto3.client("stepfunctions", **creds)
    arn = MACHINE.replace(":stateMachine:", ":execution:")
    started = datetime(2026, 11, 25)
    listed = [{"executionArn": f"{arn}:{n}", "stateMachineArn": MACHINE, "name": n, "status": "RUNNING",
               "startDate": started} for n in ("clip-aaa", "other-bbb", "clip-ccc")]  # fmt: skip
    with Stubber(ddb) as dstub, Stubber(sfn) as sstub:
        for _ in range(2):
            dstub.add_response("query", {"Items": []})
        # ListExecutions pages are read lazily: each page's candidates are described before the next page
        sstub.add_response("list_executions", {"executions": listed[:2], "nextToken": "p2"})
        sstub.add_response("describe_execution", described(f"{arn}:clip-aaa", "clip.mp4"))  # "other-…" is skipped
        sstub.add_response("list_executions", {"executions": listed[2:]})
        sstub.add_response("describe_execution", described(f"{arn}:clip-ccc", "elsewhere/clip.mp4"))
        sources = AuditSources(sfn, ddb, None, "t", MACHINE)
        assert sources.executions_for_video("s3://b/clip.mp4") == [f"{arn}:clip-aaa"]
        sstub.add_response("list_executions", {"executions": []})
        with pytest.raises(LookupError, match=r"^no execution found for s3://b/gone.mp4 version v9$"):
            sources.executions_for_video("s3://b/gone.mp4", "v9")


def test_an_archive_rewritten_within_the_same_second_is_still_read_as_first_written(aws, recording):
    """S3's LastModified has whole seconds: a forgery written right after the original must not be taken for it."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="locked-audit")
    s3.put_bucket_versioning(Bucket="locked-audit", VersioningConfiguration={"Status": "Enabled"})
    key = archive_key(recording["executionArn"])
    original = handmade_archive(recording)
    forged = copy.deepcopy(original)
    forged["execution"]["output"] = forged["execution"]["output"].replace('"REJECT"', '"APPROVE"')
    for document in (original, forged, forged):
        s3.put_object(Bucket="locked-audit", Key=key, Body=json.dumps(document).encode())
    archived = read_archive(s3, "locked-audit", recording["executionArn"])
    assert archived.execution == original["execution"] and archived.overwrites == 2


@pytest.mark.parametrize("body", [b"[1]", b"not json", b'{"events": [1, 2]}', b'{"execution": "x", "events": []}'])
def test_an_archive_that_is_not_one_is_named_not_a_crash(body):
    with pytest.raises(ValueError, match=r"executions/m/n\.json is not an execution archive"):
        parse_archive("executions/m/n.json", body)


def test_a_redriven_execution_is_audited_from_its_latest_archive_and_says_which(aws, recording):
    sources = moto_sources(recording, forgotten_sfn())
    arn = recording["executionArn"]
    redriven = handmade_archive(recording)
    redriven["execution"]["redriveCount"] = 1
    redriven["archivedAt"] = "2026-11-26T09:00:00.000Z"
    sources.s3.put_object(Bucket="audit", Key=archive_key(arn, 1), Body=json.dumps(redriven).encode())

    report = audit(sources, arn)

    latest = archive_key(arn, 1)
    assert latest.endswith(".redrive-1.json")
    assert report.historySource == f"archive s3://audit/{latest} (2026-11-26T09:00:00.000Z)"
    assert f"2 archives of this execution (one per end: it was redriven): read {latest}" in report.notes
    assert report.integrity == []


def test_a_live_history_redriven_since_its_archive_is_compared_up_to_the_archives_end(aws, recording):
    archive = handmade_archive(recording)
    sfn = boto3.client("stepfunctions", region_name=REGION)
    events = [
        dict(e, timestamp=datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))) for e in recording["events"]
    ]
    events.append({"id": len(events) + 1, "type": "ExecutionRedriven", "timestamp": datetime(2026, 11, 26),
                   "executionRedrivenEventDetails": {"redriveCount": 1}})  # fmt: skip
    described = dict(archive["execution"], status="RUNNING", redriveCount=1, startDate=events[0]["timestamp"])
    described.pop("stopDate")
    with Stubber(sfn) as stub:
        stub.add_response("get_execution_history", {"events": events})
        stub.add_response("describe_execution", described)
        report = audit(moto_sources(recording, sfn), recording["executionArn"])

    assert report.integrity == []  # not "holds N events, the live history N+1" nor a status mismatch
    key = archive_key(recording["executionArn"])
    assert f"the execution was redriven after {key} was written: its first {len(events) - 1} events were compared" in (
        report.notes
    )
