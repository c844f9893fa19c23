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
