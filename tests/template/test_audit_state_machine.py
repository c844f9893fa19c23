"""The audit of sampled automatic decisions in the template: its state machine, how the moderation starts it, and
the least privilege each role gets for it (docs/quality.md); ReviewersPerVideo."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cfnlint.decode import decode_str

from vidmod_contracts.record_hash import VERSION_3_FIELDS

ROOT = Path(__file__).resolve().parents[2]
TAG_STATES = ("TagVideo", "ReadVersionTags", "ReadObjectTags", "KeepOtherTags", "MergeTags", "WriteTags",
              "WriteVersionTags", "WriteObjectTags")  # fmt: skip


@pytest.fixture(scope="module")
def template() -> dict:
    data, matches = decode_str((ROOT / "template.yaml").read_text())
    assert not matches, matches
    return data


def asl(name: str) -> dict:
    return json.loads((ROOT / "statemachine" / name).read_text())


@pytest.fixture(scope="module")
def audit() -> dict:
    return asl("audit.asl.json")["States"]


@pytest.fixture(scope="module")
def moderation() -> dict:
    return asl("moderation.asl.json")["States"]


def statements(template: dict, logical_id: str) -> list[dict]:
    found = []
    for policy in template["Resources"][logical_id]["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found += [s for s in policy["Statement"] if s.get("Effect") == "Allow"]
    return found


def granted(template: dict, logical_id: str) -> dict[str, list]:
    """action → the resources it is granted on (as written in the template)."""
    grants: dict[str, list] = {}
    for statement in statements(template, logical_id):
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            grants.setdefault(action, []).extend(resources)
    return grants


def test_reviewers_per_video_is_the_flow_definitions_task_count(template):
    parameter = template["Parameters"]["ReviewersPerVideo"]
    assert (parameter["Type"], parameter["Default"], parameter["AllowedValues"]) == ("Number", 1, [1, 2, 3])
    assert "TaskCount" in parameter["Description"]
    # make deploy reads it back from the stack (vidmod.cloud) to create the flow definition; no function needs it
    assert template["Outputs"]["ReviewersPerVideo"]["Value"] == {"Ref": "ReviewersPerVideo"}


def test_the_audit_machine_is_standard_logged_without_data_traced_and_fully_substituted(template):
    props = template["Resources"]["AuditStateMachine"]["Properties"]
    assert (props["Type"], props["DefinitionUri"], props["Tracing"]) == (
        "STANDARD",
        "statemachine/audit.asl.json",
        {"Enabled": True},
    )
    assert props["Logging"]["IncludeExecutionData"] is False  # the audit's task token stays out of the logs
    assert props["Logging"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": ["AuditStateMachineLogs", "Arn"]
    }
    placeholders = set(re.findall(r"\$\{(\w+)\}", (ROOT / "statemachine" / "audit.asl.json").read_text()))
    assert placeholders == set(props["DefinitionSubstitutions"])
    assert template["Outputs"]["AuditStateMachineArn"]["Value"] == {"Ref": "AuditStateMachine"}


def test_asl_validator_accepts_the_audit_definition():
    npx = shutil.which("npx")
    if not (ROOT / "node_modules" / "asl-validator").is_dir() or npx is None:
        pytest.fail("asl-validator is not installed: run `make test` (it runs npm install)")
    result = subprocess.run(
        [npx, "--no-install", "asl-validator", "--json-path", "statemachine/audit.asl.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "statemachine/audit.asl.json" in (ROOT / "Makefile").read_text()  # `make validate` checks it too


def test_the_audit_role_has_only_what_the_audit_does(template):
    actions = set(granted(template, "AuditStateMachine"))
    assert actions == {
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        "dynamodb:PutItem",
        "events:PutEvents",
        "sagemaker:StopHumanLoop",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
    }
    assert granted(template, "AuditStateMachine")["dynamodb:PutItem"] == [{"Fn::GetAtt": ["DecisionsTable", "Arn"]}]
    invoked = [
        p["LambdaInvokePolicy"]["FunctionName"]
        for p in template["Resources"]["AuditStateMachine"]["Properties"]["Policies"]
        if "LambdaInvokePolicy" in p
    ]
    assert invoked == [{"Ref": "StartHumanReviewFunction"}, {"Ref": "SealRecordFunction"}]
    # the moderation may start audits, of this machine only, and nothing else of Step Functions
    moderation = granted(template, "ModerationStateMachine")
    assert moderation["states:StartExecution"] == [{"Ref": "AuditStateMachine"}]
    assert not {a for a in moderation if a.startswith("states:")} - {"states:StartExecution"}


def test_callbacks_heartbeats_and_the_archive_cover_audit_executions(template):
    both = [{"Ref": "ModerationStateMachine"}, {"Ref": "AuditStateMachine"}]
    complete = granted(template, "CompleteHumanReviewFunction")
    assert complete["states:SendTaskSuccess"] == complete["states:SendTaskFailure"] == both
    assert granted(template, "ReviewHeartbeatFunction")["states:SendTaskHeartbeat"] == both
    archive = template["Resources"]["ArchiveExecutionFunction"]["Properties"]
    assert archive["Events"]["ExecutionEnded"]["Properties"]["Pattern"]["detail"]["stateMachineArn"] == both
    history = granted(template, "ArchiveExecutionFunction")["states:GetExecutionHistory"]
    assert any("${AuditStateMachine.Name}" in r["Fn::Sub"] for r in history)
    # an audit holds no moderation slot: the admission function never hears of it
    admission = template["Resources"]["AdmissionFunction"]["Properties"]["Events"]["ExecutionEnded"]
    assert admission["Properties"]["Pattern"]["detail"]["stateMachineArn"] == [{"Ref": "ModerationStateMachine"}]


def test_the_moderation_starts_its_audit_only_after_the_decision_is_recorded_tagged_and_published(moderation):
    assert moderation["PublishDecision"]["Next"] == "Outcome"
    outcome = moderation["Outcome"]
    assert outcome["Default"] == "ReturnRecord"
    rule = outcome["Choices"][-1]
    assert rule["Next"] == "StartAudit"
    assert rule["And"] == [
        {"Variable": "$.final.source", "StringEquals": "rules"},  # only the rules' own decisions
        {"Variable": "$.decision.auditSample.sampled", "IsPresent": True},
        {"Variable": "$.decision.auditSample.sampled", "BooleanEquals": True},
    ]
    start = moderation["StartAudit"]
    # request-response: the audit is started, never waited for
    assert start["Resource"] == "arn:aws:states:::states:startExecution" and start["Next"] == "ReturnRecord"
    parameters = start["Parameters"]
    assert parameters["StateMachineArn"] == "${AuditStateMachineArn}"
    assert parameters["Name.$"] == "States.Format('{}-audit', $$.Execution.Name)"
    assert parameters["Input"]["humanLoopName.$"] == "States.Format('{}-audit', $.job.humanLoopName)"
    assert parameters["Input"]["audited.$"] == "$.final" and parameters["Input"]["seal.$"] == "$.seal"
    assert [c["ErrorEquals"] for c in start["Catch"]] == [
        ["StepFunctions.ExecutionAlreadyExistsException"],
        ["States.ALL"],
    ]
    assert [c["Next"] for c in start["Catch"]] == ["AuditAlreadyStarted", "AuditNotStarted"]
    assert moderation["AuditAlreadyStarted"]["Next"] == moderation["AuditNotStarted"]["Next"] == "ReturnRecord"
    assert "NOT started" in moderation["AuditNotStarted"]["Parameters"]["cause.$"]
    # a name stays within Step Functions' 80 characters and the loop within A2I's 63 (submit's names are <= 61,
    # validate_input's loop names 47)
    assert len("x" * 61 + "-audit") <= 80 and len("vidmod-" + "0" * 40 + "-audit") <= 63


def test_every_moderation_record_carries_the_audit_fields(moderation):
    for name in ("DecidedByRules", "DecidedByHuman", "Escalated", "FailedAfterRules"):
        parameters = moderation[name]["Parameters"]
        assert parameters["auditSample.$"] == "States.JsonToString($.decision.auditSample)", name
        assert (parameters["auditOf"], parameters["auditVerdict"]) == ("", ""), name
    for name in ("Failed", "FailedValidation"):  # before the rules: nothing drawn
        parameters = moderation[name]["Parameters"]
        assert (parameters["auditSample"], parameters["auditOf"], parameters["auditVerdict"]) == ("", "", "")
    assert moderation["EvaluateRules"]["ResultSelector"]["auditSample.$"] == "$.Payload.auditSample"
    assert moderation["EvaluateRules"]["ResultSelector"]["consensus.$"] == "$.Payload.consensus"
    assert moderation["EvaluateRules"]["Parameters"]["Payload"]["video.$"] == "$.job.video"


def test_the_audit_records_its_verdict_beside_the_audited_record(audit, moderation):
    review = audit["AuditReview"]
    assert review["Resource"] == moderation["HumanReview"]["Resource"]
    assert review["Retry"] == moderation["HumanReview"]["Retry"]
    assert (review["TimeoutSecondsPath"], review["HeartbeatSecondsPath"]) == (
        "$.reviewLimits.timeoutSeconds",
        "$.reviewLimits.heartbeatSeconds",
    )
    payload = review["Parameters"]["Payload"]
    assert set(payload["audit"]) == {"automaticDecision.$", "decidedAt.$", "executionName.$", "reasons.$"}
    assert review["Catch"][0]["ErrorEquals"] == ["States.Timeout", "States.HeartbeatTimeout", "HumanLoopExpired"]
    assert review["Catch"][0]["Next"] == "StopAuditLoop" and audit["StopAuditLoop"]["Next"] == "AuditExpired"
    assert review["Catch"][1]["Next"] == "DescribeAuditFailure"
    assert audit["AuditFailed"] == {"Type": "Fail", "Error": "AuditFailed", "CausePath": "$.failure.cause"}
    assert audit["CompareWithAutomatic"]["Choices"] == [
        {"Variable": "$.review.decision", "StringEqualsPath": "$.audited.decision", "Next": "AuditAgrees"}
    ]
    verdicts = {name: audit[name]["Parameters"] for name in ("AuditAgrees", "AuditOverturns", "AuditExpired")}
    assert {name: p["auditVerdict"] for name, p in verdicts.items()} == {
        "AuditAgrees": "AGREE",
        "AuditOverturns": "OVERTURN",
        "AuditExpired": "EXPIRED",
    }
    assert verdicts["AuditOverturns"]["decision.$"] == "$.review.decision"
    assert verdicts["AuditAgrees"]["decision.$"] == verdicts["AuditExpired"]["decision.$"] == "$.audited.decision"
    assert {p["source"] for p in verdicts.values()} == {"audit"}
    build = audit["BuildRecord"]["Parameters"]
    assert tuple(k.removesuffix(".$") for k in build) == VERSION_3_FIELDS
    assert build["executionName.$"] == "$$.Execution.Name" and build["auditOf.$"] == "$.audited.executionName"
    item = audit["RecordDecision"]["Parameters"]["Item"]
    assert set(item) == set(VERSION_3_FIELDS) | {"recordSha256", "hashVersion"}
    assert item == moderation["RecordDecision"]["Parameters"]["Item"]  # same table, same attributes
    assert audit["SealRecord"]["Parameters"] == moderation["SealRecord"]["Parameters"]
    # only an overturn changes the current decision
    assert audit["Superseded"]["Choices"] == [
        {"Variable": "$.final.auditVerdict", "StringEquals": "OVERTURN", "Next": "TagVideo"}
    ]
    assert audit["Superseded"]["Default"] == "ReturnRecord"


def test_the_audits_tag_merge_is_the_moderations(audit, moderation):
    """The one duplication between the two definitions: the read-merge-write of the tags, kept identical."""

    def without_comment(state: dict) -> dict:
        return {k: v for k, v in state.items() if k != "Comment"}

    for name in TAG_STATES:
        assert without_comment(audit[name]) == without_comment(moderation[name]), name
    publish = dict(without_comment(audit["PublishDecision"]), Next=moderation["PublishDecision"]["Next"])
    assert publish == without_comment(moderation["PublishDecision"])


def test_every_next_of_the_audit_points_to_an_existing_state(audit):
    targets = [s.get("Next") for s in audit.values()] + [s.get("Default") for s in audit.values()]
    targets += [c["Next"] for s in audit.values() for c in s.get("Choices", []) + s.get("Catch", [])]
    assert {t for t in targets if t} <= set(audit)
