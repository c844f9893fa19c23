"""The audit recomputes a record's audit-sample draw (vidmod.audit.sampling, docs/quality.md) and links an audited
decision with its audits."""

from __future__ import annotations

import copy
import json

import pytest
from audit.golden import load_recording, report_from

from vidmod.audit.sampling import check_sample, describe_audit
from vidmod_contracts.audit_sample import draw

VIDEO = {"bucket": "media", "key": "a.mp4", "etag": '"abc"'}


def facts(**sample) -> dict:
    value = draw("r1", "media", "a.mp4", "abc")
    recorded = {"sampled": value < 0.5, "rate": 0.5, "draw": value, "outcome": "APPROVE"} | sample
    return {"bucket": "media", "key": "a.mp4", "ruleSetVersion": "r1", "auditSample": json.dumps(recorded)}


def test_a_recorded_draw_is_recomputed_and_verified():
    shown, findings, notes = check_sample(facts(), VIDEO, "APPROVE")
    assert (shown["check"], findings, notes) == ("verified", [], [])
    assert shown["expectedDraw"] == shown["draw"]


@pytest.mark.parametrize(
    ("change", "finding"),
    [
        ({"draw": 0.001}, "auditSample draw 0.001 is not the draw of rule set r1 for s3://media/a.mp4 ETag abc"),
        ({"sampled": True, "rate": 0.0}, "auditSample says sampled=True, but draw"),
        ({"outcome": "REJECT"}, "auditSample outcome 'REJECT' is not the rules' outcome 'APPROVE'"),
    ],
)
def test_a_draw_or_choice_that_does_not_add_up_is_a_finding(change, finding):
    shown, findings, _ = check_sample(facts(**change), VIDEO, "APPROVE")
    assert shown["check"] == "mismatch" and any(f.startswith(finding) for f in findings), findings


def test_no_sample_no_etag_or_an_unreadable_sample():
    assert check_sample({"auditSample": ""}, VIDEO, None) == ({}, [], [])  # failed before the rules
    assert check_sample({}, VIDEO, None) == ({}, [], [])  # a record from before audit samples
    shown, findings, notes = check_sample(facts(), {"bucket": "media", "key": "a.mp4"}, "APPROVE")
    assert (shown["check"], findings) == ("not checked", []) and "ETag" in notes[0]
    shown, findings, _ = check_sample({"auditSample": "not json"}, VIDEO, None)
    assert shown["check"] == "mismatch" and "not a JSON object" in findings[0]


def test_a_recorded_run_verifies_and_a_forged_draw_is_flagged_even_when_rehashed():
    recording = copy.deepcopy(load_recording("approved"))
    report = report_from(recording)
    assert report.auditSample["check"] == "verified" and report.integrity == []
    forged = json.loads(report.final["auditSample"]) | {"draw": 0.0, "sampled": True}
    text = json.dumps(forged, separators=(",", ":"))
    for event in recording["events"]:  # the history and the record agree: only the draw gives it away
        for details in (event.get("stateExitedEventDetails"), event.get("taskScheduledEventDetails")):
            for field in ("output", "parameters"):
                if details and field in details and report.final["auditSample"] in details[field]:
                    details[field] = details[field].replace(
                        json.dumps(report.final["auditSample"])[1:-1], json.dumps(text)[1:-1]
                    )
    findings = report_from(recording).integrity
    assert any(f.startswith("auditSample draw 0.0 is not the draw of rule set") for f in findings), findings


def test_the_link_to_an_audit_says_what_it_decided():
    link = {"executionName": "clip-1-audit", "auditVerdict": "OVERTURN", "decision": "REJECT", "reviewer": "alice"}
    assert describe_audit(link) == "superseded by clip-1-audit (OVERTURN, REJECT by alice)"
    assert describe_audit(link | {"auditVerdict": "AGREE", "decision": "APPROVE"}) == (
        "audited by clip-1-audit (AGREE, APPROVE confirmed by alice)"
    )
    assert describe_audit(link | {"auditVerdict": "EXPIRED", "reviewer": ""}) == (
        "audited by clip-1-audit (EXPIRED: the decision stands)"
    )


def test_an_audit_executions_name_is_completed_with_the_audit_state_machine():
    from vidmod.audit.sources import AuditSources

    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:vidmod-ModerationStateMachine"
    audits = "arn:aws:states:us-east-1:123456789012:stateMachine:vidmod-AuditStateMachine"
    sources = AuditSources(None, None, None, "decisions", machine, "", audit_state_machine_arn=audits)
    assert sources.execution_arn("clip-1-audit") == f"{audits.replace(':stateMachine:', ':execution:')}:clip-1-audit"
    assert sources.execution_arn("clip-1") == f"{machine.replace(':stateMachine:', ':execution:')}:clip-1"
    # without the audit machine (an older stack, the portal's pages) a name is the moderation's, as before
    assert (
        AuditSources(None, None, None, "decisions", machine)
        .execution_arn("clip-1-audit")
        .startswith(machine.replace(":stateMachine:", ":execution:"))
    )
