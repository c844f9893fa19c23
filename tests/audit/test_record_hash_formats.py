"""The record hash of facts that are not strings (kills mutants `make mutate` found; docs/testing.md).

Hash version 1 (RecordDecision's ``States.Format('{}|{}|…', …)``): a number, list or object is rendered as compact
JSON. The audit must compute the same text, or it reports an untouched record as altered."""

from __future__ import annotations

import hashlib

import pytest

from vidmod_contracts.record_hash import VERSION_1_FIELDS as HASHED_FIELDS
from vidmod_contracts.record_hash import record_hash


@pytest.mark.parametrize(
    ("value", "rendered"),
    [(3, "3"), (1.5, "1.5"), (True, "true"), (["a", "b"], '["a","b"]'), ({"k": 1, "v": [2]}, '{"k":1,"v":[2]}')],
)
def test_a_fact_that_is_not_a_string_is_hashed_as_states_format_renders_it(value, rendered):
    facts = dict.fromkeys(HASHED_FIELDS, "x") | {"reviewer": value}
    text = "|".join(rendered if name == "reviewer" else "x" for name in HASHED_FIELDS)
    assert record_hash(facts, "1") == hashlib.sha256(text.encode()).hexdigest()


def test_states_format_renders_null_as_null():
    assert record_hash({"versionId": None}, "1") == record_hash({"versionId": "null"}, "1")


def test_version_3_hashes_the_audit_fields_after_version_2s_in_the_records_order():
    from vidmod_contracts.record_hash import VERSION_2_FIELDS, VERSION_3_FIELDS, hashed_text

    record = {name: f"{name}-value" for name in VERSION_3_FIELDS}
    text = hashed_text(dict(reversed(record.items())), "3")
    assert text.startswith('["3",[["videoUri","videoUri-value"]')
    assert [name for name, _ in __import__("json").loads(text)[1]] == [*VERSION_2_FIELDS, "auditSample", "auditOf",
                                                                       "auditVerdict"]  # fmt: skip
    for name in ("auditSample", "auditOf", "auditVerdict"):
        assert record_hash(record | {name: ""}, "3") != record_hash(record, "3")
        assert record_hash({k: v for k, v in record.items() if k != name}, "3") != record_hash(record | {name: ""}, "3")
    # the version is hashed: the same version-2 fields give another hash under version 3
    older = {name: record[name] for name in VERSION_2_FIELDS}
    assert record_hash(older, "3") != record_hash(older, "2")
    assert hashed_text(older, "2")[len('["2"') :] == hashed_text(older, "3")[len('["3"') :]
