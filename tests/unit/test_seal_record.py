"""SealRecord's handler: the record's hash and version, whatever its length, and the record never logged."""

from __future__ import annotations

import io
import json

import pytest

from vidmod_contracts.record_hash import VERSION_2_FIELDS, record_hash

COMMENT = "a reviewer's private comment"


def a_record(**changes) -> dict:
    record = {name: f"{name}-value" for name in VERSION_2_FIELDS}
    return record | {"detail": json.dumps({"comment": COMMENT})} | changes


@pytest.fixture
def app(load_function):
    return load_function("seal_record")


def test_the_handler_returns_the_current_versions_hash(app, lambda_context, monkeypatch):
    logs = io.StringIO()
    monkeypatch.setattr(app.logger.registered_handler, "stream", logs)
    record = a_record()
    assert app.lambda_handler(record, lambda_context) == {"recordSha256": record_hash(record, "2"), "hashVersion": "2"}
    assert record_hash(record, "2") in logs.getvalue() and COMMENT not in logs.getvalue()


def test_a_failures_30000_character_detail_is_sealed(app, lambda_context):
    record = a_record(detail=json.dumps({"Error": "E", "Cause": "x" * 30_000}), error="E")
    sealed = app.lambda_handler(record, lambda_context)
    assert sealed["recordSha256"] == record_hash(record, "2") and sealed["hashVersion"] == "2"


def test_a_record_with_a_field_no_version_covers_fails_the_task(app, lambda_context):
    with pytest.raises(ValueError, match="approvedBy"):
        app.lambda_handler(a_record(approvedBy="mallory"), lambda_context)
