"""The record hash by version (vidmod_contracts.record_hash): version 1 is exactly the hash the ASL computed
before SealRecord, so the records written then still verify; version 2 covers every field, unambiguously; version
3 adds the audit fields the same way."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from audit.golden import load_recording, report_from

from vidmod_contracts.record_hash import (
    CURRENT_VERSION,
    FIELDS,
    NOT_STORED,
    VERSION_1_FIELDS,
    VERSION_2_FIELDS,
    VERSION_3_FIELDS,
    UnhashedFields,
    UnknownHashVersion,
    hashed_text,
    record_hash,
    seal,
)

# The formula RecordDecision had before SealRecord (git history of statemachine/moderation.asl.json).
ASL_VERSION_1 = (
    "States.Hash(States.Format('{}|{}|{}|{}|{}|{}|{}|{}', $.final.executionArn, $.final.videoUri, "
    "$.final.versionId, $.final.decision, $.final.source, $.final.reviewer, $.final.ruleSetVersion, "
    "$.final.evidenceSha256), 'SHA-256')"
)


def a_record(**changes) -> dict:
    """A human review's record, every field a distinct string (as $.final holds them)."""
    return {name: f"{name}-value" for name in VERSION_2_FIELDS} | changes


def test_version_1_is_the_asl_formula_of_before_on_a_history_it_wrote():
    recording = load_recording("human_review_v1")
    report = report_from(recording)
    final, record = report.final, recording["record"]
    assert "hashVersion" not in record and report.integrity == [] and report.recordHashVersion == "1"
    assert tuple(re.findall(r"\$\.final\.(\w+)", ASL_VERSION_1)) == VERSION_1_FIELDS
    text = "|".join(final[name] for name in VERSION_1_FIELDS)
    assert record["recordSha256"]["S"] == hashlib.sha256(text.encode()).hexdigest() == record_hash(final, "1")
    # what version 1 left out: a changed reason, detail, model or job kept the same hash
    assert record_hash(final | {"reasons": "[]", "detail": "{}", "modelVersion": "", "jobId": ""}, "1") == (
        record_hash(final, "1")
    )


def test_version_2_is_the_hash_sealrecord_wrote_on_a_recorded_run():
    """Records sealed under version 2 must verify under every later release: the hashed text may never change.
    ``human_review_v2`` is kept as recorded before version 3 (never re-record it)."""
    recording = load_recording("human_review_v2")
    report = report_from(recording)
    record, final = recording["record"], report.final
    assert record["hashVersion"]["S"] == "2" and report.integrity == [] and report.recordHashVersion == "2"
    assert record["recordSha256"]["S"] == record_hash({k: v for k, v in final.items() if k not in NOT_STORED}, "2")


@pytest.mark.parametrize("name", ["human_review", "approved", "rejected", "failed", "timed_out"])
def test_version_3_is_the_hash_sealrecord_wrote_on_a_recorded_run(name):
    recording = load_recording(name)
    record, final = recording["record"], report_from(recording).final
    assert record["hashVersion"]["S"] == "3"
    assert record["recordSha256"]["S"] == record_hash({k: v for k, v in final.items() if k not in NOT_STORED}, "3")


def test_version_3_is_current_and_covers_every_field_of_the_record():
    assert CURRENT_VERSION == "3"
    assert FIELDS == {"1": VERSION_1_FIELDS, "2": VERSION_2_FIELDS, "3": VERSION_3_FIELDS}
    assert set(VERSION_1_FIELDS) < set(VERSION_2_FIELDS)
    assert {"reasons", "detail", "modelVersion", "jobId", "trigger", "admission"} <= set(VERSION_2_FIELDS)
    assert (*VERSION_2_FIELDS, "auditSample", "auditOf", "auditVerdict") == VERSION_3_FIELDS
    assert len(VERSION_3_FIELDS) == 23
    assert NOT_STORED == ("error",) and not set(NOT_STORED) & set(VERSION_3_FIELDS)


@pytest.mark.parametrize("field", VERSION_2_FIELDS)
def test_version_2_changes_when_any_single_field_changes(field):
    record = a_record()
    assert record_hash(record | {field: record[field] + "x"}, "2") != record_hash(record, "2")
    assert record_hash({k: v for k, v in record.items() if k != field}, "2") != record_hash(record, "2")


def test_version_2_tells_a_missing_field_from_an_empty_or_null_one():
    record = a_record()
    del record["humanLoopName"]
    hashes = {record_hash(record, "2"), record_hash(record | {"humanLoopName": ""}, "2")}
    assert len(hashes | {record_hash(record | {"humanLoopName": None}, "2")}) == 3


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"reviewer": "a|b", "detail": "c"}, {"reviewer": "a", "detail": "b|c"}),
        ({"reviewer": 'a","detail":"b'}, {"reviewer": "a", "detail": "b"}),
        ({"reviewer": 'a"],["detail","b'}, {"reviewer": "a", "detail": "b"}),
    ],
)
def test_a_separator_or_quote_inside_a_field_cannot_shift_it_into_another(left, right):
    record = a_record()
    assert record_hash(record | left, "2") != record_hash(record | right, "2")


def test_version_1_could_be_shifted_by_a_separator_which_is_why_version_2_is_json():
    record = a_record()
    shifted = {"reviewer": "a|b", "ruleSetVersion": "c"}, {"reviewer": "a", "ruleSetVersion": "b|c"}
    assert record_hash(record | shifted[0], "1") == record_hash(record | shifted[1], "1")
    assert record_hash(record | shifted[0], "2") != record_hash(record | shifted[1], "2")


def test_version_2_hashes_the_version_and_the_fields_in_the_records_order_as_json():
    record = a_record()
    text = hashed_text(dict(reversed(record.items())), "2")
    assert json.loads(text) == ["2", [[name, record[name]] for name in VERSION_2_FIELDS]]
    assert record_hash(record, "2") == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "rendered"),
    [(None, "null"), (3, "3"), (True, "true"), (["a", "b"], '["a","b"]'), ({"k": 1, "v": [2]}, '{"k":1,"v":[2]}')],
)
def test_version_2_renders_a_value_that_is_not_a_string_as_states_format_does(value, rendered):
    """A stored record holds each value as the string RecordDecision wrote; $.final the value itself."""
    assert record_hash(a_record(reviewer=value), "2") == record_hash(a_record(reviewer=rendered), "2")


@pytest.mark.parametrize("version", ["", "0", "4", "v2", 2])
def test_an_unknown_version_is_refused_not_guessed(version):
    with pytest.raises(UnknownHashVersion, match="is not one of 1, 2, 3"):
        record_hash(a_record(), version)


def test_seal_hashes_any_length_under_the_current_version():
    """The case the ASL's States.Hash could not do: it takes at most 10,000 characters."""
    record = a_record(detail=json.dumps({"Error": "E", "Cause": "c" * 30_000}))
    sealed = seal(record)
    assert sealed == {"recordSha256": record_hash(record, "3"), "hashVersion": "3"}
    assert len(hashed_text(record, "3")) > 30_000


def test_seal_leaves_out_the_failures_error_name_which_is_not_stored():
    """RecordDecision stores no ``error`` attribute: a hash over it could never be checked on the record."""
    record = a_record(detail=json.dumps({"Error": "E", "Cause": "c"}))
    assert seal(record | {"error": "E"}) == seal(record)


def test_seal_refuses_a_field_no_version_covers():
    """A field added to BuildRecord without a new hash version would be recorded unprotected: fail loudly."""
    with pytest.raises(UnhashedFields, match=r"\['approvedBy'\]"):
        seal(a_record(approvedBy="mallory"))
