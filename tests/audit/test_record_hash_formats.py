"""The record hash of facts that are not strings (kills mutants `make mutate` found; docs/testing.md).

RecordDecision hashes ``States.Format('{}|{}|…', …)``: a number, list or object is rendered as compact JSON. The
audit must compute the same text, or it reports an untouched record as altered."""

from __future__ import annotations

import hashlib

import pytest

from vidmod.audit.record import HASHED_FIELDS, record_hash


@pytest.mark.parametrize(
    ("value", "rendered"),
    [(3, "3"), (1.5, "1.5"), (True, "true"), (["a", "b"], '["a","b"]'), ({"k": 1, "v": [2]}, '{"k":1,"v":[2]}')],
)
def test_a_fact_that_is_not_a_string_is_hashed_as_states_format_renders_it(value, rendered):
    facts = dict.fromkeys(HASHED_FIELDS, "x") | {"reviewer": value}
    text = "|".join(rendered if name == "reviewer" else "x" for name in HASHED_FIELDS)
    assert record_hash(facts) == hashlib.sha256(text.encode()).hexdigest()
