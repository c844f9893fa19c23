"""vidmod audit on histories from real runs of the workflow on the local engine.

Who/what/when/why for each outcome (the timeout is in test_review_timeout.py), tamper evidence on the
record and on the evidence files, the archive, targets (ARN, name, s3://) and the command line.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest
from audit.golden import check_run
from botocore.stub import Stubber
from harness import WEAPON
from scripted_rekognition import Script, detection
from starlette.applications import Starlette
from starlette.testclient import TestClient

from vidmod.audit.history import all_events
from vidmod.audit.render import to_html
from vidmod.audit.sources import AuditSources, audit, audit_target
from vidmod.cli.main import main
from vidmod.emulator.clients import http_api_event
from vidmod.emulator.portal.audit_pages import audit_routes
from vidmod_contracts.record_hash import VERSION_3_FIELDS, record_hash

pytestmark = pytest.mark.workflow
EVIL = '<img src=x onerror="window.__pwned=1">'
HATE = detection("Nazi Party", "Hate Symbols", 2, 97.0, 0)
SMOKING = detection("Smoking", "Drugs & Tobacco Paraphernalia & Use", 3, 75.0, 5000)
FINGER = detection("Middle Finger", "Rude Gestures", 2, 80.0, 8000)
AUDITOR = "arn:aws:iam::123456789012:user/auditor"
ACCOUNT = "123456789012"  # locally the S3 upload's EventBridge `requester`
RULESET_FILE = Path(__file__).parents[2] / "functions/evaluate_rules/rules/ruleset.json"
RULESET = json.loads(RULESET_FILE.read_text(encoding="utf-8"))["version"]


def sources(workflow) -> AuditSources:
    stack = workflow.stack
    archive = stack.resources.bucket_name("AuditBucket")
    return AuditSources(
        workflow.sfn, workflow.ddb, workflow.s3, stack.decisions_table, stack.state_machine_arn, archive
    )


def run_audit(workflow, target: str, **options):
    return audit(sources(workflow), target, **options)


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_when(workflow, report) -> None:
    """Start and stop as Step Functions reports them; the decision was taken in between."""
    described = workflow.sfn.describe_execution(executionArn=report.executionArn)
    started, stopped = described["startDate"], described["stopDate"]
    assert abs((when(report.startedAt) - started).total_seconds()) < 0.002  # ExecutionStarted is the start
    assert abs((when(report.stoppedAt) - stopped).total_seconds()) < 0.5
    assert abs((when(report.final["startedAt"]) - started).total_seconds()) < 0.002
    assert started <= when(report.final["decidedAt"]) <= stopped


def assert_video(report, bucket: str, key: str, version: str) -> None:
    video = report.submitted["video"]
    assert (video["bucket"], video["key"], video["versionId"]) == (bucket, key, version)
    final = report.final
    assert (final["bucket"], final["key"], final["versionId"], final["videoUri"]) == (
        bucket,
        key,
        version,
        f"s3://{bucket}/{key}",
    )


def finished(workflow, key: str, script: Script) -> tuple[str, str]:
    workflow.scripted.script(key, script)
    version = workflow.upload(key)
    arn = workflow.execution_for(key)
    workflow.wait(arn)
    return arn, version


def archived(workflow, arn: str, timeout: float = 30) -> None:
    bucket, (machine, name) = workflow.stack.resources.bucket_name("AuditBucket"), arn.split(":")[-2:]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            workflow.s3.head_object(Bucket=bucket, Key=f"executions/{machine}/{name}.json")
            return
        except workflow.s3.exceptions.ClientError:
            time.sleep(0.3)
    raise AssertionError(f"{arn} was not archived")


# ---------------------------------------------------------------------------- scenarios (one run each)
@pytest.fixture(scope="module")
def approved(workflow):
    return finished(workflow, "audit/approve.mp4", Script(labels=[]))


@pytest.fixture(scope="module")
def rejected_by_api(workflow):
    """Submitted through the API (as `vidmod submit s3://…` does) for an object that predates the upload rule."""
    key = "audit/api-reject.mp4"
    workflow.scripted.script(key, Script(labels=[HATE]))
    router = workflow.stack.router
    with pytest.MonkeyPatch.context() as patch:
        original = router.matching
        patch.setattr(
            router, "matching", lambda e: [] if e.get("detail", {}).get("object", {}).get("key") == key else original(e)
        )
        version = workflow.upload(key)
    body = {"video": f"s3://{workflow.stack.media_bucket}/{key}"}
    event = http_api_event("POST", "/moderations", body, "req-audit-api", AUDITOR)
    response, errored = workflow.stack.invoke(workflow.stack.resources.functions["SubmitFunction"].name, event)
    assert not errored and response["statusCode"] == 202, response
    arn = json.loads(response["body"])["executionArn"]
    workflow.wait(arn)
    return arn, version


@pytest.fixture(scope="module")
def reviewed(workflow):
    """Three flagged segments; bob opens the task, takes his time, judges each differently and rejects."""
    key = "audit/review.mp4"
    workflow.scripted.script(key, Script(labels=[WEAPON, SMOKING, FINGER]))
    version = workflow.upload(key)
    arn = workflow.execution_for(key)
    loop = workflow.wait_for_review(arn)
    answer = {
        "decision-approve": {"value": False},
        "decision-reject": {"value": True},
        "seg-0-tp": {"value": True},
        "seg-1-fp": {"value": True},
        "seg-2-wrong": {"value": True},
        "seg-2-category": "Violence",
        "comment": "real gun, then a rude gesture",
    }
    workflow.stack.a2i.accept(loop, "bob")  # opened after the loop started: the recorded times stay consistent
    time.sleep(1.5)
    workflow.stack.a2i.submit(loop, answer, "bob")
    workflow.wait(arn)
    return arn, version


@pytest.fixture(scope="module")
def failed(workflow):
    return finished(workflow, "audit/broken.mp4", Script(status="FAILED", status_message="Corrupt moov atom"))


# ---------------------------------------------------------------------------- who / what / when / why
def test_approved_by_rules(workflow, approved):
    arn, version = approved
    report = run_audit(workflow, arn)
    assert (report.status, report.integrity) == ("SUCCEEDED", [])
    assert_video(report, workflow.stack.media_bucket, "audit/approve.mp4", version)
    trigger = report.submitted["trigger"]
    assert (trigger["type"], trigger["principal"]) == ("s3-upload", ACCOUNT) and trigger["id"]
    assert report.detector["jobId"] == report.final["jobId"] and len(report.detector["jobId"]) == 32
    assert (report.detector["modelVersion"], report.detector["detections"]) == ("7.0", 0)
    assert report.rules["ruleSetVersion"] == RULESET and report.rules["outcome"] == "APPROVE"
    assert report.rules["reasons"] == [] and report.segments == [] and report.review is None
    assert (report.final["decision"], report.final["source"], report.final["reviewer"]) == ("APPROVE", "rules", "")
    assert report.evidence["segments"]["status"] == "verified"
    assert (report.record["hashVersion"], report.recordHashVersion) == ("3", "3")
    assert report.record["recordSha256"] == record_hash(report.final, "3")
    entered = [t.state for t in report.timeline if t.event == "entered"]
    assert entered[:3] == ["ValidateInput", "WaitForModerationSlot", "StartModeration"]
    assert report.admission["limit"] == 20 and report.admission["grantedAt"] >= report.admission["queuedAt"]
    assert_when(workflow, report)


def test_rejected_by_rules_after_an_api_submission(workflow, rejected_by_api):
    arn, version = rejected_by_api
    report = run_audit(workflow, arn)
    assert (report.status, report.integrity) == ("SUCCEEDED", [])
    assert_video(report, workflow.stack.media_bucket, "audit/api-reject.mp4", version)
    trigger = report.submitted["trigger"]
    assert (trigger["type"], trigger["principal"], trigger["id"]) == ("api", AUDITOR, "req-audit-api")
    assert json.loads(report.final["trigger"]) == trigger
    assert report.detector["modelVersion"] == "7.0" and report.detector["jobId"] == report.final["jobId"]
    assert report.rules["ruleSetVersion"] == RULESET and report.rules["outcome"] == "REJECT"
    assert report.rules["reasons"] == [
        {
            "category": "Hate Symbols",
            "label": "Nazi Party",
            "band": "reject",
            "maxConfidence": 97.0,
            "threshold": 90.0,
            "segments": 1,
        }
    ]
    assert json.loads(report.final["reasons"]) == report.rules["reasons"]
    assert [(s["parentName"], s["name"], s["maxConfidence"], s["range"]) for s in report.segments] == [
        ("Hate Symbols", "Nazi Party", 97.0, "0:00.000–0:00.000")
    ]
    assert (report.final["decision"], report.final["source"]) == ("REJECT", "rules") and report.review is None
    assert_when(workflow, report)


def test_human_review_who_when_and_every_answer(workflow, reviewed):
    arn, version = reviewed
    report = run_audit(workflow, arn)
    assert (report.status, report.integrity) == ("SUCCEEDED", [])
    assert_video(report, workflow.stack.media_bucket, "audit/review.mp4", version)
    assert report.submitted["trigger"]["type"] == "s3-upload"
    assert report.rules["outcome"] == "REVIEW" and report.rules["reasonsTruncated"] is False
    assert {(r["label"], r["band"]) for r in report.rules["reasons"]} == {
        ("Weapons", "review"),
        ("Smoking", "review"),
        ("Middle Finger", "review"),
    }
    review = report.review
    assert (review["reviewer"], review["decision"], review["comment"]) == (
        "bob",
        "REJECT",
        "real gun, then a rude gesture",
    )
    accepted, submitted = when(review["acceptanceTime"]), when(review["submissionTime"])
    assert accepted <= submitted and review["timeSpentInSeconds"] > 0
    assert abs((submitted - accepted).total_seconds() - review["timeSpentInSeconds"]) < 1
    assert when(report.startedAt) <= accepted and submitted <= when(report.final["decidedAt"])
    assert review["timeSpentInSeconds"] >= 1.5
    assert (report.final["decision"], report.final["source"], report.final["reviewer"]) == ("REJECT", "human", "bob")
    assert json.loads(report.final["detail"]) == review
    # the reviewer's answers from A2I's output.json, next to each segment they judged
    assert report.evidence["segments"]["status"] == "verified"
    assert report.evidence["reviewOutput"]["status"] in {"verified", "not recorded"}
    (answer,) = report.answers
    assert (answer["workerId"], answer["decision"], answer["timeSpentInSeconds"]) == (
        "bob",
        "REJECT",
        review["timeSpentInSeconds"],
    )
    assert [(s["range"], s["parentName"], s["name"], s["maxConfidence"], s["verdicts"]) for s in report.segments] == [
        (
            "0:02.000–0:02.000",
            "Violence",
            "Weapons",
            82.5,
            [{"reviewer": "bob", "verdict": "true-positive", "category": ""}],
        ),
        (
            "0:05.000–0:05.000",
            "Drugs & Tobacco Paraphernalia & Use",
            "Smoking",
            75.0,
            [{"reviewer": "bob", "verdict": "false-positive", "category": ""}],
        ),
        (
            "0:08.000–0:08.000",
            "Rude Gestures",
            "Middle Finger",
            80.0,
            [{"reviewer": "bob", "verdict": "wrong-category", "category": "Violence"}],
        ),
    ]
    assert_when(workflow, report)


def test_failure_is_explained(workflow, failed):
    arn, version = failed
    report = run_audit(workflow, arn)
    assert (report.status, report.integrity) == ("FAILED", [])
    assert_video(report, workflow.stack.media_bucket, "audit/broken.mp4", version)
    assert report.failure["error"] == "ModerationJobFailed" and "Corrupt moov atom" in report.failure["cause"]
    assert report.detector["jobId"] and report.detector["modelVersion"] is None and report.rules == {}
    final = report.final
    assert (final["decision"], final["source"], final["error"], final["jobId"]) == (
        "FAILED",
        "system",
        "ModerationJobFailed",
        "",
    )
    assert json.loads(final["detail"])["Error"] == "ModerationJobFailed"
    assert_when(workflow, report)


def test_a_record_too_long_for_states_hash_is_sealed_and_verifies(workflow):
    """A 30,000-character detail (here Rekognition's status message in a failure's cause): States.Hash stops at
    10,000 characters and fails uncatchably; SealRecord hashes every field whatever their length."""
    message = "moov atom " * 3000
    arn, _ = finished(workflow, "audit/long-detail.mp4", Script(status="FAILED", status_message=message))
    report = run_audit(workflow, arn)
    assert (report.status, report.integrity, report.recordHashVersion) == ("FAILED", [], "3")
    assert report.failure["error"] == "ModerationJobFailed"
    record = report.record
    assert message in json.loads(record["detail"])["Cause"] and len(record["detail"]) > 30_000
    assert record["recordSha256"] == record_hash({k: v for k, v in record.items() if k in VERSION_3_FIELDS}, "3")
    assert "SealRecord" in [t.state for t in report.timeline if t.event == "entered"]


@pytest.mark.parametrize(
    ("name", "run"),
    [("approved", "approved"), ("rejected", "rejected_by_api"), ("human_review", "reviewed"), ("failed", "failed")],
)
def test_golden_reports_of_real_runs(workflow, request, name, run):
    """Each recorded history in tests/audit/fixtures gives its checked-in report (tests/audit); a fresh run of
    the same scenario gives a report of the same shape. VIDMOD_UPDATE_GOLDEN=1 records these runs anew."""
    arn, _ = request.getfixturevalue(run)
    check_run(name, workflow, run_audit(workflow, arn))


# ---------------------------------------------------------------------------- tamper evidence
def _key(record: dict) -> dict:
    return {"videoUri": {"S": record["videoUri"]}, "executionName": {"S": record["executionName"]}}


@pytest.fixture
def record_of(workflow, reviewed):
    """The reviewed execution's stored record, put back exactly after the test."""
    arn, _ = reviewed
    table = workflow.stack.decisions_table
    item = workflow.ddb.get_item(TableName=table, Key=_key(workflow.decision(arn)))["Item"]
    yield arn, item
    workflow.ddb.put_item(TableName=table, Item=item)
    assert run_audit(workflow, arn).integrity == []


@pytest.mark.parametrize(
    "attribute", ["decision", "reviewer", "reasons", "detail", "trigger", "modelVersion", "jobId", "auditSample"]
)
def test_each_altered_record_attribute_is_flagged(workflow, record_of, attribute):
    arn, item = record_of
    workflow.ddb.update_item(
        TableName=workflow.stack.decisions_table,
        Key={name: item[name] for name in ("videoUri", "executionName")},
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":v": {"S": "tampered"}},
    )
    findings = run_audit(workflow, arn).integrity
    assert any(f.startswith(f"record {attribute} is 'tampered' but the workflow wrote") for f in findings), findings
    # hash version 3 covers every field (version 1 left out reasons, detail, trigger, model and job)
    altered = "record recordSha256 is not the version 3 hash of the record's own fields: the record was altered"
    assert altered in findings


def test_a_deleted_record_is_flagged(workflow, record_of):
    arn, item = record_of
    workflow.ddb.delete_item(
        TableName=workflow.stack.decisions_table, Key={name: item[name] for name in ("videoUri", "executionName")}
    )
    findings = run_audit(workflow, arn).integrity
    assert any("is missing from" in f and "(deleted)" in f for f in findings), findings


def test_added_and_removed_attributes_are_flagged(workflow, record_of):
    arn, item = record_of
    workflow.ddb.update_item(
        TableName=workflow.stack.decisions_table,
        Key={name: item[name] for name in ("videoUri", "executionName")},
        UpdateExpression="SET overriddenBy = :v REMOVE humanLoopName",
        ExpressionAttributeValues={":v": {"S": "mallory"}},
    )
    findings = run_audit(workflow, arn).integrity
    assert "record attribute overriddenBy was added: 'mallory'" in findings
    assert any(f.startswith("record attribute humanLoopName was deleted") for f in findings)


@pytest.fixture
def evidence_of(workflow, reviewed):
    """(arn, report, restore): the reviewed execution's evidence files are put back after the test."""
    arn, _ = reviewed
    report = run_audit(workflow, arn)
    saved = {}
    for check in report.evidence.values():
        bucket, _, key = check["uri"].removeprefix("s3://").partition("/")
        saved[(bucket, key)] = workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    yield arn, report, saved
    for (bucket, key), body in saved.items():
        workflow.s3.put_object(Bucket=bucket, Key=key, Body=body)
    assert run_audit(workflow, arn).integrity == []


def test_altered_segments_are_flagged(workflow, evidence_of):
    arn, report, saved = evidence_of
    ref = report.rules["segmentsRef"]
    document = json.loads(saved[(ref["bucket"], ref["key"])])
    document["segments"][0]["maxConfidence"] = 12.0
    workflow.s3.put_object(Bucket=ref["bucket"], Key=ref["key"], Body=json.dumps(document, sort_keys=True).encode())
    findings = run_audit(workflow, arn).integrity
    assert any(f.startswith(f"segments.json s3://{ref['bucket']}/{ref['key']} was altered") for f in findings)


def test_altered_reviewer_answers_are_flagged(workflow, evidence_of):
    arn, report, saved = evidence_of
    bucket, _, key = report.review["outputS3Uri"].removeprefix("s3://").partition("/")
    output = json.loads(saved[(bucket, key)])
    output["humanAnswers"][0]["answerContent"]["seg-0-tp"] = {"value": False}
    output["humanAnswers"][0]["answerContent"]["seg-0-fp"] = {"value": True}
    workflow.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(output).encode())
    findings = run_audit(workflow, arn).integrity
    assert any(f.startswith("A2I output.json says verdicts") for f in findings), findings
    if report.review.get("outputSha256"):
        assert any(f.startswith(f"A2I output.json {report.review['outputS3Uri']} was altered") for f in findings)


def test_missing_evidence_is_flagged(workflow, evidence_of):
    arn, report, _ = evidence_of
    ref = report.rules["segmentsRef"]
    workflow.s3.delete_object(Bucket=ref["bucket"], Key=ref["key"])
    findings = run_audit(workflow, arn).integrity
    assert f"segments.json s3://{ref['bucket']}/{ref['key']} is missing: the evidence cannot be checked" in findings


# ---------------------------------------------------------------------------- archive
def test_the_archive_is_read_and_checked_against_the_live_history(workflow):
    arn, _ = finished(workflow, "audit/archived.mp4", Script(labels=[HATE]))
    archived(workflow, arn)
    live, old = run_audit(workflow, arn), run_audit(workflow, arn, from_archive=True)
    assert "matched against the archive" in live.historySource and live.integrity == []
    assert old.historySource.startswith("archive s3://") and old.integrity == []
    assert (old.final, old.rules, old.submitted, old.startedAt) == (
        live.final,
        live.rules,
        live.submitted,
        live.startedAt,
    )
    # an archive rewritten after the fact: flagged, and the first version is still what is read
    bucket, (machine, name) = workflow.stack.resources.bucket_name("AuditBucket"), arn.split(":")[-2:]
    key = f"executions/{machine}/{name}.json"
    document = json.loads(workflow.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    exited = next(e for e in document["events"] if e.get("stateExitedEventDetails", {}).get("name") == "EvaluateRules")
    details = exited["stateExitedEventDetails"]
    details["output"] = details["output"].replace('"REJECT"', '"APPROVE"')
    workflow.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(document).encode())
    overwritten = f"archive {key} was written 2 times (archive_execution writes once): the first version was read"
    assert run_audit(workflow, arn).integrity == [overwritten]
    forged = run_audit(workflow, arn, from_archive=True)  # Step Functions has forgotten: the archive is all
    assert forged.rules["outcome"] == "REJECT" and forged.integrity == [overwritten]


# ---------------------------------------------------------------------------- targets, CLI, pages
def test_an_in_progress_execution_is_found_by_video_and_not_flagged(workflow):
    workflow.scripted.script("audit/waiting.mp4", Script(labels=[WEAPON]))
    workflow.upload("audit/waiting.mp4")
    arn = workflow.execution_for("audit/waiting.mp4")
    loop = workflow.wait_for_review(arn)
    # no decision record yet: found through ListExecutions
    (report,) = audit_target(sources(workflow), f"s3://{workflow.stack.media_bucket}/audit/waiting.mp4")
    assert (report.executionArn, report.status, report.integrity) == (arn, "RUNNING", [])
    assert "in progress: no decision recorded yet" in report.notes
    workflow.review(loop, "APPROVE", reviewer="carol")
    workflow.wait(arn)


def test_every_version_of_a_video_by_s3_uri(workflow, capsys):
    key = "audit/versions.mp4"
    workflow.scripted.script(key, Script(labels=[]))
    versions, arns = [], []
    for _ in range(2):
        versions.append(workflow.upload(key))
        deadline = time.monotonic() + 30
        while len(workflow.executions_for(key)) < len(versions) and time.monotonic() < deadline:
            time.sleep(0.3)
        arns = workflow.executions_for(key)
        for arn in arns:
            workflow.wait(arn)
    uri = f"s3://{workflow.stack.media_bucket}/{key}"
    reports = audit_target(sources(workflow), uri)
    assert [r.submitted["video"]["versionId"] for r in reports] == versions
    (only,) = audit_target(sources(workflow), uri, version=versions[0])
    assert only.submitted["video"]["versionId"] == versions[0]
    assert main(["audit", uri, "--endpoint-url", workflow.stack.endpoint_url, "--format", "json"]) == 0
    assert [r["final"]["versionId"] for r in json.loads(capsys.readouterr().out)] == versions


def test_cli_by_execution_name_text_json_and_html(workflow, approved, capsys, tmp_path):
    arn, _ = approved
    name, endpoint = arn.rsplit(":", 1)[-1], workflow.stack.endpoint_url
    assert main(["audit", name, "--endpoint-url", endpoint, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["executionArn"] == arn
    assert main(["audit", name, "--endpoint-url", endpoint, "-o", str(tmp_path / "a.txt")]) == 0
    assert "integrity ok" in (tmp_path / "a.txt").read_text()
    assert main(["audit", arn, "--endpoint-url", endpoint, "--format", "html", "-o", str(tmp_path / "a.html")]) == 0
    assert "The decision record matches the execution history" in (tmp_path / "a.html").read_text()


def test_cli_says_clearly_when_nothing_is_found(workflow, capsys):
    endpoint = workflow.stack.endpoint_url
    uri = f"s3://{workflow.stack.media_bucket}/audit/never-uploaded.mp4"
    assert main(["audit", uri, "--endpoint-url", endpoint]) == 2
    assert f"vidmod audit: no execution found for {uri}" in capsys.readouterr().err
    assert main(["audit", "no-such-execution", "--endpoint-url", endpoint]) == 2
    assert "no such execution" in capsys.readouterr().err


def test_html_report_escapes_injected_labels(workflow):
    arn, _ = finished(workflow, "audit/evil.mp4", Script(labels=[detection(EVIL, "Hate Symbols", 3, 99.0, 0)]))
    html = to_html(run_audit(workflow, arn))
    assert EVIL not in html and "&lt;img src=x onerror=" in html


def test_audit_pages_mark_integrity_and_404_unknown_executions(workflow, approved, record_of):
    stack = workflow.stack
    client = TestClient(
        Starlette(
            routes=audit_routes(
                stack.endpoint_url,
                stack.state_machine_arn,
                stack.decisions_table,
                stack.resources.bucket_name("AuditBucket"),
            )
        )
    )
    assert client.get("/audit/no-such-execution").status_code == 404
    approved_name = approved[0].rsplit(":", 1)[-1]
    page = client.get(f"/audit/{approved_name}")
    assert page.status_code == 200 and "The decision record matches the execution history" in page.text
    arn, item = record_of
    workflow.ddb.update_item(
        TableName=stack.decisions_table,
        Key={name: item[name] for name in ("videoUri", "executionName")},
        UpdateExpression="SET decision = :v",
        ExpressionAttributeValues={":v": {"S": "APPROVE"}},
    )
    rows = {r.split("</a>")[0].rsplit(">", 1)[-1]: r for r in client.get("/audit").text.split("<tr>")[2:]}
    assert "✗ altered" in rows[arn.rsplit(":", 1)[-1]] and "✓" in rows[approved_name]


def test_history_is_read_across_pages():
    import boto3

    sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    pages = [
        [{"id": i, "type": "PassStateEntered", "timestamp": "2026-01-01T00:00:00Z"} for i in range(s, s + 3)]
        for s in (1, 4, 7)
    ]
    with Stubber(sfn) as stub:
        for number, page in enumerate(pages):
            response = {"events": page} | ({"nextToken": f"t{number}"} if number < 2 else {})
            expected = {"executionArn": "arn:x", "maxResults": 1000} | (
                {"nextToken": f"t{number - 1}"} if number else {}
            )
            stub.add_response("get_execution_history", response, expected)
        assert [e["id"] for e in all_events(sfn, "arn:x")] == list(range(1, 10))
