"""Audit samples on the local stack (docs/quality.md): a rule set that audits every automatic decision.

The automatic decision is recorded, tagged and published at once; its audit (statemachine/audit.asl.json, its
own execution and human loop, marked as an audit in the worker template and the portal's queue) then records the
auditor's verdict beside it: AGREE changes nothing else, OVERTURN supersedes it (tag and a new event), EXPIRED
leaves it standing. `vidmod audit s3://…` shows both executions, linked both ways.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import time
from pathlib import Path

import httpx
import pytest
from harness import WEAPON, Workflow, start_stack
from rich.console import Console
from scripted_rekognition import Script, detection
from starlette.applications import Starlette
from starlette.testclient import TestClient

from vidmod.audit.render import print_text, to_html
from vidmod.audit.sources import AuditSources, audit_target
from vidmod.emulator.a2i import A2IError
from vidmod.emulator.portal.audit_pages import audit_routes
from vidmod_contracts.audit_sample import draw
from vidmod_contracts.executions import execution_arn
from vidmod_contracts.record_hash import VERSION_3_FIELDS, record_hash

pytestmark = pytest.mark.workflow

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((ROOT / "functions" / "evaluate_rules" / "rules" / "ruleset.json").read_text())
OVERRIDE_KEY = "rules/audit-everything.json"
RULESET = "audit-everything-1"
HATE = detection("Nazi Party", "Hate Symbols", 2, 99.0, 4000)


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    stack, scripted = start_stack(tmp_path_factory, RulesetS3Uri=f"s3://vidmod-resultsbucket/{OVERRIDE_KEY}")
    ruleset = SHIPPED | {"version": RULESET, "auditSample": {"APPROVE": 1.0, "REJECT": 1.0}}
    stack.client("s3").put_object(Bucket="vidmod-resultsbucket", Key=OVERRIDE_KEY, Body=json.dumps(ruleset).encode())
    yield Workflow(stack, scripted)
    stack.stop()


@pytest.fixture(scope="module")
def portal(workflow):
    return workflow.stack.start_portal()


def audit_machine(workflow) -> str:
    return workflow.stack.resources.state_machines["AuditStateMachine"]["arn"]


def decided(workflow, key: str, script: Script) -> tuple[str, dict]:
    """Upload, wait for the automatic decision (the moderation does not wait for its audit); its record."""
    workflow.scripted.script(key, script)
    workflow.upload(key)
    arn = workflow.execution_for(key)
    result = workflow.wait(arn)
    assert result["status"] == "SUCCEEDED", workflow.states(arn)
    return arn, workflow.decision(arn)


def audit_loop_open(workflow, audit_arn: str, loop: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(A2IError):  # not started yet
            if workflow.stack.a2i.describe(loop)["HumanLoopStatus"] == "InProgress":
                return
        described = workflow.sfn.describe_execution(executionArn=audit_arn)
        assert described["status"] == "RUNNING", described
        time.sleep(0.3)
    raise AssertionError(f"no audit loop {loop}: {workflow.states(audit_arn)}")


def decision_events(workflow, uri: str) -> list[dict]:
    logged = [json.loads(line) for line in (workflow.stack.options.state_dir / "events.jsonl").read_text().splitlines()]
    return [
        entry["event"]["detail"]
        for entry in logged
        if "event" in entry
        and entry["event"]["detail-type"] == "vidmod.decision"
        and entry["event"]["detail"].get("videoUri") == uri
    ]


def tags(workflow, record: dict) -> dict:
    tagging = workflow.s3.get_object_tagging(Bucket=record["bucket"], Key=record["key"], VersionId=record["versionId"])
    return {t["Key"]: t["Value"] for t in tagging["TagSet"]}


def sources(workflow) -> AuditSources:
    stack = workflow.stack
    return AuditSources(
        workflow.sfn,
        workflow.ddb,
        workflow.s3,
        stack.decisions_table,
        stack.state_machine_arn,
        stack.resources.bucket_name("AuditBucket"),
        audit_state_machine_arn=audit_machine(workflow),
    )


def answer(decision: str) -> dict:
    return {"decision-approve": {"value": decision == "APPROVE"}, "decision-reject": {"value": decision == "REJECT"}}


def review_in_portal(portal: str, loop: str, reviewer: str, decision: str) -> str:
    """Log in, find the task marked as an audit in the queue, open it, submit: the task page's HTML."""
    with httpx.Client(base_url=portal, follow_redirects=True, timeout=30) as client:
        login = client.get("/login")
        csrf = re.search(r"name='csrf' value='([^']+)'", login.text)[1]
        client.post("/login", data={"csrf": csrf, "reviewer": reviewer}, headers={"Origin": portal.rstrip("/")})
        queue = client.get("/").text
        row = next(line for line in queue.splitlines() if f"/tasks/{loop}'" in line)
        assert "badge audit" in row, row  # marked as an audit in the queue
        page = client.get(f"/tasks/{loop}").text
        sent = client.post(f"/tasks/{loop}/submit", json=answer(decision), headers={"Origin": portal.rstrip("/")})
        assert sent.status_code == 200 and sent.json()["ok"], sent.text
        return page


def test_an_overturned_approval_is_superseded_never_rewritten(workflow, portal):
    key = "audited/approved-then-overturned.mp4"
    arn, record = decided(workflow, key, Script(labels=[]))
    name, uri = record["executionName"], record["videoUri"]
    # recorded, tagged and published at once, before anybody looked at the audit
    assert (record["decision"], record["source"], record["hashVersion"]) == ("APPROVE", "rules", "3")
    sample = json.loads(record["auditSample"])
    assert sample == {"sampled": True, "rate": 1.0, "draw": sample["draw"], "outcome": "APPROVE"}
    etag = workflow.s3.head_object(Bucket=record["bucket"], Key=key)["ETag"]
    assert sample["draw"] == draw(RULESET, record["bucket"], key, etag)
    assert (record["auditOf"], record["auditVerdict"]) == ("", "")
    states = workflow.states(arn)
    assert states.index("RecordDecision") < states.index("PublishDecision") < states.index("StartAudit")
    assert tags(workflow, record) == {"vidmod-decision": "APPROVE", "vidmod-execution": name}
    assert [e["decision"] for e in decision_events(workflow, uri)] == ["APPROVE"]

    audit_arn = execution_arn(audit_machine(workflow), f"{name}-audit")
    started = json.loads(workflow.sfn.describe_execution(executionArn=audit_arn)["input"])
    loop = started["humanLoopName"]
    assert loop == f"{workflow._loop_of(arn)}-audit" and len(loop) <= 63
    audit_loop_open(workflow, audit_arn, loop)
    content = workflow.stack.a2i.input_content(loop)
    assert content["audit"] == {
        "automaticDecision": "APPROVE",
        "decidedAt": record["decidedAt"],
        "executionName": name,
        "reasons": json.loads(record["reasons"]),
    }
    assert content["consensus"] == "majority" and "taskToken" not in json.dumps(content)
    assert workflow.decision(arn) == record  # the audit waits; nothing changed meanwhile

    page = review_in_portal(portal, loop, "alice", "REJECT")
    assert "Audit of an automatic decision" in page and "APPROVED" in page and name in page
    assert workflow.wait(audit_arn)["status"] == "SUCCEEDED", workflow.states(audit_arn)

    superseding = workflow.decision(audit_arn)
    assert workflow.decision(arn) == record  # the audited record is never rewritten
    assert (superseding["decision"], superseding["source"], superseding["reviewer"]) == ("REJECT", "audit", "alice")
    assert (superseding["auditOf"], superseding["auditVerdict"]) == (name, "OVERTURN")
    assert superseding["auditSample"] == record["auditSample"] and superseding["videoUri"] == uri
    assert superseding["executionName"] == f"{name}-audit" and superseding["humanLoopName"] == loop
    assert json.loads(superseding["trigger"])["type"] == "audit-sample"
    assert superseding["hashVersion"] == "3"
    assert superseding["recordSha256"] == record_hash({k: v for k, v in superseding.items() if k in VERSION_3_FIELDS})
    assert tags(workflow, record) == {"vidmod-decision": "REJECT", "vidmod-execution": f"{name}-audit"}
    events = decision_events(workflow, uri)
    assert [(e["decision"], e["auditOf"]) for e in events] == [("APPROVE", ""), ("REJECT", name)]
    assert events[1]["executionArn"] == audit_arn and events[1]["auditVerdict"] == "OVERTURN"

    reports = audit_target(sources(workflow), uri)
    assert [r.executionArn for r in reports] == [arn, audit_arn]
    original, audit = reports
    assert original.integrity == [] and audit.integrity == [], (original.integrity, audit.integrity)
    assert original.auditSample["check"] == "verified" and audit.auditSample["check"] == "verified"
    assert [(a["executionName"], a["auditVerdict"]) for a in original.audits] == [(f"{name}-audit", "OVERTURN")]
    assert audit.auditOf["executionName"] == name and audit.auditOf["auditVerdict"] == "OVERTURN"
    assert audit.review["reviewer"] == "alice" and audit.evidence["reviewOutput"]["status"] == "verified"
    assert audit.rules["ruleSetVersion"] == RULESET and audit.evidence["segments"]["status"] == "verified"
    text = io.StringIO()
    for report in reports:
        print_text(report, Console(file=text, width=400))
    assert f"superseded by {name}-audit (OVERTURN, REJECT by alice)" in text.getvalue()
    assert f"audit of {name}: OVERTURN" in text.getvalue()
    html = to_html(reports)
    assert f"Superseded by <code>{name}-audit</code> (OVERTURN, REJECT by alice)" in html
    assert f"Audit of <code>{name}</code>: <strong>OVERTURN</strong>" in html


def test_an_audit_that_agrees_changes_nothing_but_its_own_record(workflow):
    key = "audited/rejected-and-agreed.mp4"
    arn, record = decided(workflow, key, Script(labels=[WEAPON, HATE]))
    name, uri = record["executionName"], record["videoUri"]
    assert (record["decision"], json.loads(record["auditSample"])["sampled"]) == ("REJECT", True)
    audit_arn = execution_arn(audit_machine(workflow), f"{name}-audit")
    loop = f"{workflow._loop_of(arn)}-audit"
    audit_loop_open(workflow, audit_arn, loop)
    assert workflow.stack.a2i.input_content(loop)["audit"]["automaticDecision"] == "REJECT"
    workflow.review(loop, "REJECT", reviewer="bob")
    assert workflow.wait(audit_arn)["status"] == "SUCCEEDED", workflow.states(audit_arn)
    agreed = workflow.decision(audit_arn)
    assert (agreed["decision"], agreed["source"], agreed["reviewer"]) == ("REJECT", "audit", "bob")
    assert (agreed["auditOf"], agreed["auditVerdict"]) == (name, "AGREE")
    assert "TagVideo" not in workflow.states(audit_arn) and "PublishDecision" not in workflow.states(audit_arn)
    assert tags(workflow, record) == {"vidmod-decision": "REJECT", "vidmod-execution": name}
    assert [e["decision"] for e in decision_events(workflow, uri)] == ["REJECT"]  # no new event
    assert workflow.decision(arn) == record
    original, audit = audit_target(sources(workflow), uri)
    assert original.integrity == audit.integrity == []
    assert original.audits[0]["auditVerdict"] == "AGREE" and audit.auditOf["auditVerdict"] == "AGREE"
    # the portal's audit pages list the audit execution beside the moderation and open it by name
    stack = workflow.stack
    routes = audit_routes(
        stack.endpoint_url,
        stack.state_machine_arn,
        stack.decisions_table,
        stack.resources.bucket_name("AuditBucket"),
        audit_machine(workflow),
    )
    client = TestClient(Starlette(routes=routes))
    rows = {r.split("</a>")[0].rsplit(">", 1)[-1]: r for r in client.get("/audit").text.split("<tr>")[2:]}
    assert "✓" in rows[name] and "✓" in rows[f"{name}-audit"], rows.keys()
    page = client.get(f"/audit/{name}-audit")
    assert page.status_code == 200 and f"Audit of <code>{name}</code>: <strong>AGREE</strong>" in page.text


def test_an_expired_audit_is_recorded_and_the_decision_stands(workflow):
    key = "audited/approved-audit-expired.mp4"
    arn, record = decided(workflow, key, Script(labels=[]))
    name = record["executionName"]
    audit_arn = execution_arn(audit_machine(workflow), f"{name}-audit")
    loop = f"{workflow._loop_of(arn)}-audit"
    audit_loop_open(workflow, audit_arn, loop)
    workflow.stack.a2i.fail(loop, "Expired", "No auditor picked the task up in time")
    assert workflow.wait(audit_arn)["status"] == "SUCCEEDED", workflow.states(audit_arn)
    expired = workflow.decision(audit_arn)
    assert (expired["decision"], expired["reviewer"], expired["auditVerdict"]) == ("APPROVE", "", "EXPIRED")
    assert "StopAuditLoop" in workflow.states(audit_arn) and "HumanLoopExpired" in expired["detail"]
    assert tags(workflow, record) == {"vidmod-decision": "APPROVE", "vidmod-execution": name}


def test_a_decision_a_human_took_is_never_sampled(workflow):
    key = "audited/reviewed.mp4"
    workflow.scripted.script(key, Script(labels=[WEAPON]))
    workflow.upload(key)
    arn = workflow.execution_for(key)
    workflow.review(workflow.wait_for_review(arn), "APPROVE")
    assert workflow.wait(arn)["status"] == "SUCCEEDED"
    sample = json.loads(workflow.decision(arn)["auditSample"])
    assert (sample["sampled"], sample["rate"], sample["outcome"]) == (False, 0.0, "REVIEW")
    assert "StartAudit" not in workflow.states(arn)
    name = arn.rsplit(":", 1)[-1]
    audits = workflow.sfn.list_executions(stateMachineArn=audit_machine(workflow))["executions"]
    assert f"{name}-audit" not in {e["name"] for e in audits}
