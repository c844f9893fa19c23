"""Tamper evidence on the recorded real history: every attribute of the record, and the evidence files."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from audit.golden import load_recording, report_from

from vidmod_contracts.record_hash import VERSION_1_FIELDS, VERSION_3_FIELDS, record_hash

ATTRIBUTES = [
    "videoUri", "executionArn", "bucket", "key", "versionId", "decision", "source", "reviewer", "ruleSetVersion",
    "reasons", "modelVersion", "jobId", "humanLoopName", "trigger", "startedAt", "decidedAt", "detail",
    "evidenceSha256", "admission", "auditSample", "auditOf", "auditVerdict", "recordSha256", "hashVersion",
]  # fmt: skip
ALTERED = "record recordSha256 is not the version {} hash of the record's own fields: the record was altered"


@pytest.fixture
def recording():
    return copy.deepcopy(load_recording("human_review"))


@pytest.fixture
def recording_v1():
    """A record written before SealRecord: hashed in the ASL (version 1, no hashVersion attribute)."""
    return copy.deepcopy(load_recording("human_review_v1"))


def test_the_recording_is_clean_and_sealed_under_version_3(recording):
    report = report_from(recording)
    assert report.integrity == [] and report.recordHashVersion == "3"
    record = recording["record"]
    assert record["hashVersion"] == {"S": "3"}
    pairs = [[name, report.final[name]] for name in VERSION_3_FIELDS]
    text = json.dumps(["3", pairs], separators=(",", ":"))
    assert report.record["recordSha256"] == hashlib.sha256(text.encode()).hexdigest() == record_hash(report.final)
    assert set(record) == {*ATTRIBUTES, "executionName"}
    # what SealRecord returned is what RecordDecision wrote
    (sealed,) = [
        json.loads(e["stateExitedEventDetails"]["output"])["seal"]
        for e in recording["events"]
        if e.get("stateExitedEventDetails", {}).get("name") == "SealRecord"
    ]
    assert sealed == {"recordSha256": report.record["recordSha256"], "hashVersion": "3"}


def test_every_field_of_the_record_is_hashed_in_version_3_only_eight_were_in_version_1():
    assert set(VERSION_3_FIELDS) == set(ATTRIBUTES) - {"recordSha256", "hashVersion"} | {"executionName"}
    assert len(VERSION_1_FIELDS) == 8


@pytest.mark.parametrize("attribute", ATTRIBUTES)
def test_every_changed_attribute_is_flagged(recording, attribute):
    recording["record"][attribute] = {"S": "tampered"}
    findings = report_from(recording).integrity
    assert any(f.startswith(f"record {attribute} is 'tampered' but the workflow wrote") for f in findings), findings
    if attribute == "hashVersion":
        assert "record hashVersion 'tampered' is not a hash version this audit knows (1, 2, 3): " in findings[-1]
    else:  # version 3 covers every field, reasons, detail and the audit sample included
        assert ALTERED.format("3") in findings


@pytest.mark.parametrize("attribute", ["reasons", "detail", "modelVersion", "jobId", "auditSample", "auditVerdict"])
def test_a_field_only_version_2_or_3_covers_is_reported_altered_even_if_the_history_were_lost(recording, attribute):
    """The record's own hash alone (without the history's item) shows the change, as it did not in version 1."""
    record = recording["record"]
    record[attribute] = {"S": record[attribute]["S"] + " "}
    assert ALTERED.format("3") in report_from(recording).integrity


def test_a_version_1_record_still_verifies_under_version_1(recording_v1):
    report = report_from(recording_v1)
    assert (report.integrity, report.notes, report.recordHashVersion) == ([], [], "1")
    assert report.record["recordSha256"] == record_hash(report.final, "1") != record_hash(report.final, "2")


@pytest.mark.parametrize(("attribute", "hashed"), [("reviewer", True), ("reasons", False)])
def test_a_version_1_record_is_checked_as_version_1_was(recording_v1, attribute, hashed):
    recording_v1["record"][attribute] = {"S": "tampered"}
    findings = report_from(recording_v1).integrity
    assert f"record {attribute} is 'tampered' but the workflow wrote" in findings[0]
    assert (ALTERED.format("1") in findings) is hashed  # the history's item still catches the other


def test_a_record_downgraded_to_version_1_is_flagged(recording):
    """Claiming the old version to leave reasons and detail out of the hash fails: it is recomputed as such."""
    record = recording["record"]
    del record["hashVersion"]
    findings = report_from(recording).integrity
    assert any(f.startswith("record attribute hashVersion was deleted") for f in findings)
    assert ALTERED.format("1") in findings


def test_an_unknown_hash_version_in_the_history_is_reported_not_guessed(recording):
    for event in recording["events"]:
        details = event.get("taskScheduledEventDetails")
        if details and '"recordSha256"' in details["parameters"]:
            parameters = json.loads(details["parameters"])
            parameters["Item"]["hashVersion"] = {"S": "4"}
            details["parameters"] = json.dumps(parameters)
    recording["record"]["hashVersion"] = {"S": "4"}
    findings = report_from(recording).integrity
    assert findings == [
        "history: RecordDecision's hashVersion '4' is not a hash version this audit knows (1, 2, 3): its "
        "recordSha256 cannot be checked",
        "record hashVersion '4' is not a hash version this audit knows (1, 2, 3): its recordSha256 cannot be checked",
    ]


def test_a_consistently_rehashed_forgery_is_still_flagged(recording):
    """Whoever edits the record can recompute recordSha256 too; the history still says what was written."""
    record = recording["record"]
    record["decision"] = {"S": "APPROVE"}
    forged = {name: value["S"] for name, value in record.items()}
    record["recordSha256"] = {"S": record_hash(forged)}
    findings = report_from(recording).integrity
    assert "record decision is 'APPROVE' but the workflow wrote 'REJECT'" in findings
    assert any(f.startswith("record recordSha256 is") for f in findings)


def test_added_deleted_and_retyped_attributes_are_flagged(recording):
    record = recording["record"]
    record["approvedBy"] = {"S": "mallory"}
    del record["detail"]
    record["jobId"] = {"N": "1"}
    findings = report_from(recording).integrity
    assert "record attribute approvedBy was added: 'mallory'" in findings
    assert any(f.startswith("record attribute detail was deleted (written: '{") for f in findings)
    assert any(f.startswith("record jobId is '1' but the workflow wrote") for f in findings)


def test_a_deleted_record_is_flagged(recording):
    recording["record"] = None
    (finding,) = report_from(recording).integrity
    assert "is missing from vidmod-DecisionsTable (deleted)" in finding


def test_a_history_whose_final_facts_were_edited_is_flagged(recording):
    """Not possible in Step Functions, but a forged history file (or archive) must not pass either."""
    for event in recording["events"]:
        details = event.get("stateExitedEventDetails", {})
        if details.get("name") == "BuildRecord":
            output = json.loads(details["output"])
            output["final"]["reviewer"] = "alice"
            details["output"] = json.dumps(output)
    findings = report_from(recording).integrity
    assert "history: RecordDecision wrote reviewer 'bob', $.final has 'alice'" in findings
    assert "history: the recordSha256 RecordDecision wrote is not the version 3 hash of $.final" in findings


def _edit_object(recording, suffix: str, edit) -> str:
    uri = next(u for u in recording["objects"] if u.endswith(suffix))
    document = json.loads(recording["objects"][uri])
    edit(document)
    recording["objects"][uri] = json.dumps(document, sort_keys=True)
    return uri


def test_altered_segments_are_flagged(recording):
    uri = _edit_object(recording, "segments.json", lambda d: d["segments"].pop())
    findings = report_from(recording).integrity
    assert len(findings) == 1 and findings[0].startswith(f"segments.json {uri} was altered: SHA-256 ")


def test_altered_output_is_flagged_by_hash_and_by_content(recording):
    def approve(document):
        document["humanAnswers"][0]["answerContent"]["decision-reject"] = {"value": False}
        document["humanAnswers"][0]["answerContent"]["decision-approve"] = {"value": True}

    uri = _edit_object(recording, "output.json", approve)
    report = report_from(recording)
    assert report.evidence["reviewOutput"]["status"] == "altered"
    assert report.integrity[0].startswith(f"A2I output.json {uri} was altered")
    assert "A2I output.json says decision 'APPROVE' but the verdict in the history says 'REJECT'" in report.integrity


def test_output_without_a_recorded_hash_is_cross_checked_only(recording):
    for event in recording["events"]:
        details = event.get("stateExitedEventDetails", {})
        if details.get("name") == "HumanReview":
            output = json.loads(details["output"])
            del output["review"]["outputSha256"]
            details["output"] = json.dumps(output)
    report = report_from(recording)
    assert report.evidence["reviewOutput"]["status"] == "not recorded" and report.integrity == []
    assert any("no outputSha256 in the verdict" in note for note in report.notes)


def test_missing_evidence_is_flagged(recording):
    uri = next(u for u in recording["objects"] if u.endswith("output.json"))
    del recording["objects"][uri]
    report = report_from(recording)
    assert report.integrity == [f"A2I output.json {uri} is missing: the evidence cannot be checked"]
    assert report.answers == [] and all(s["verdicts"] == [] for s in report.segments)


@pytest.mark.parametrize(
    ("name", "replace"),
    [
        ("segments.json", lambda d: ["x"]),
        ("segments.json", lambda d: {"segments": ["x", 1]}),
        ("segments.json", lambda d: {"segments": [{"name": ["not", "text"], "startMillis": "soon"}]}),
        ("output.json", lambda d: [1]),
        ("output.json", lambda d: dict(d, humanAnswers=[1])),
        ("output.json", lambda d: dict(d, humanAnswers=[dict(d["humanAnswers"][0], answerContent="approve")])),
        ("output.json", lambda d: dict(d, inputContent={"segments": [{"startMillis": None}]})),
    ],
)
def test_evidence_rewritten_into_another_shape_is_reported_not_a_crash(recording, name, replace):
    uri = next(u for u in recording["objects"] if u.endswith(name))
    recording["objects"][uri] = json.dumps(replace(json.loads(recording["objects"][uri])))
    report = report_from(recording)
    what = "segments.json" if name == "segments.json" else "A2I output.json"
    assert f"{what} {uri} is unreadable: the evidence cannot be checked" in report.integrity
