"""vidmod audit on histories from real runs of the workflow on the local engine."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber
from harness import WEAPON

from vidmod.audit.cli import audit
from vidmod.audit.history import all_events
from vidmod.audit.render import to_html
from vidmod.audit.timeline import record_hash
from vidmod.local.scripted import Script, detection

pytestmark = pytest.mark.workflow
EVIL = '<img src=x onerror="window.__pwned=1">'


def run_audit(workflow, target: str):
    return audit(workflow.sfn, workflow.ddb, workflow.stack.decisions_table, target)


def test_rules_decision_is_reconstructed_from_the_history(workflow):
    workflow.scripted.script("audit-reject.mp4", Script(labels=[detection("Nazi Party", "Hate Symbols", 2, 97.0, 0)]))
    version = workflow.upload("audit-reject.mp4")
    arn = workflow.execution_for("audit-reject.mp4")
    workflow.wait(arn)
    report = run_audit(workflow, arn)
    assert report.status == "SUCCEEDED" and report.integrity == []
    assert report.submitted["video"]["key"] == "audit-reject.mp4" and report.submitted["video"]["versionId"] == version
    assert report.submitted["trigger"]["type"] == "s3-upload"
    assert report.detector["jobId"] and report.detector["modelVersion"] == "7.0"
    assert report.rules["outcome"] == "REJECT" and report.rules["reasons"][0]["label"] == "Nazi Party"
    assert (report.final["decision"], report.final["source"]) == ("REJECT", "rules") and report.review is None
    assert [t.state for t in report.timeline if t.event == "entered"][:2] == ["ValidateInput", "StartModeration"]
    # the hash the workflow stored is the one the audit recomputes
    assert report.record["recordSha256"] == record_hash(report.final)
    # and by video URI, the latest decision for that video
    assert run_audit(workflow, f"s3://{workflow.stack.media_bucket}/audit-reject.mp4").executionArn == arn


def test_human_review_is_reconstructed_who_when_and_every_verdict(workflow):
    workflow.scripted.script("audit-review.mp4", Script(labels=[WEAPON]))
    workflow.upload("audit-review.mp4")
    arn = workflow.execution_for("audit-review.mp4")
    loop = workflow.wait_for_review(arn)
    workflow.review(loop, "APPROVE", reviewer="bob", **{"seg-0-fp": {"value": True}, "comment": "toy gun"})
    workflow.wait(arn)
    report = run_audit(workflow, arn)
    assert report.integrity == []
    assert report.review["reviewer"] == "bob" and report.review["decision"] == "APPROVE"
    assert report.review["acceptanceTime"] and report.review["submissionTime"]
    assert report.review["verdicts"] == [{"index": 0, "label": "Weapons", "verdict": "false-positive", "category": ""}]
    assert report.final["source"] == "human" and report.final["reviewer"] == "bob"


def test_failure_is_explained(workflow):
    workflow.scripted.script("audit-broken.mp4", Script(status="FAILED", status_message="Corrupt moov atom"))
    workflow.upload("audit-broken.mp4")
    arn = workflow.execution_for("audit-broken.mp4")
    workflow.wait(arn)
    report = run_audit(workflow, arn)
    assert report.status == "FAILED" and report.failure["error"] == "ModerationJobFailed"
    assert "Corrupt moov atom" in report.failure["cause"] and report.final["decision"] == "FAILED"
    assert report.integrity == []


def test_an_altered_decision_record_is_flagged(workflow):
    workflow.scripted.script("audit-tamper.mp4", Script(labels=[]))
    workflow.upload("audit-tamper.mp4")
    arn = workflow.execution_for("audit-tamper.mp4")
    workflow.wait(arn)
    record = workflow.decision(arn)
    workflow.ddb.update_item(
        TableName=workflow.stack.decisions_table,
        Key={"videoUri": {"S": record["videoUri"]}, "executionName": {"S": record["executionName"]}},
        UpdateExpression="SET decision = :d",
        ExpressionAttributeValues={":d": {"S": "REJECT"}},
    )
    findings = run_audit(workflow, arn).integrity
    assert any("record decision is 'REJECT' but the history says 'APPROVE'" in f for f in findings)
    assert any("was altered" in f for f in findings)


def test_html_report_escapes_injected_labels(workflow):
    workflow.scripted.script("audit-evil.mp4", Script(labels=[detection(EVIL, "Hate Symbols", 3, 99.0, 0)]))
    workflow.upload("audit-evil.mp4")
    arn = workflow.execution_for("audit-evil.mp4")
    workflow.wait(arn)
    html = to_html(run_audit(workflow, arn))
    assert EVIL not in html and "&lt;img src=x onerror=" in html


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
