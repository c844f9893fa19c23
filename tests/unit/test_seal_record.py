"""SealRecord's handler: the record's hash and version, whatever its length, and the record never logged."""

from __future__ import annotations

import io
import json

import pytest

from vidmod_contracts.record_hash import VERSION_2_FIELDS, VERSION_3_FIELDS, record_hash

COMMENT = "a reviewer's private comment"


def a_record(**changes) -> dict:
    record = {name: f"{name}-value" for name in VERSION_3_FIELDS}
    return record | {"detail": json.dumps({"comment": COMMENT})} | changes


@pytest.fixture
def app(load_function):
    return load_function("seal_record")


def test_the_handler_returns_the_current_versions_hash(app, lambda_context, monkeypatch):
    logs = io.StringIO()
    monkeypatch.setattr(app.logger.registered_handler, "stream", logs)
    record = a_record()
    assert app.lambda_handler(record, lambda_context) == {"recordSha256": record_hash(record, "3"), "hashVersion": "3"}
    assert record_hash(record, "3") in logs.getvalue() and COMMENT not in logs.getvalue()


def test_a_failures_30000_character_detail_is_sealed(app, lambda_context):
    record = a_record(detail=json.dumps({"Error": "E", "Cause": "x" * 30_000}), error="E")
    sealed = app.lambda_handler(record, lambda_context)
    assert sealed["recordSha256"] == record_hash(record, "3") and sealed["hashVersion"] == "3"


def test_a_record_with_a_field_no_version_covers_fails_the_task(app, lambda_context):
    with pytest.raises(ValueError, match="approvedBy"):
        app.lambda_handler(a_record(approvedBy="mallory"), lambda_context)


def test_an_audit_record_is_sealed_over_its_audit_fields(app, lambda_context):
    """Version 3: the audit sample and the audit link are hashed (an overturn cannot be quietly turned into an
    agreement); a record from before them (version 2's fields only) is still sealed, as version 3."""
    audit = a_record(source="audit", auditOf="clip-0123", auditVerdict="OVERTURN", auditSample='{"sampled":true}')
    sealed = app.lambda_handler(audit, lambda_context)
    assert sealed == {"recordSha256": record_hash(audit, "3"), "hashVersion": "3"}
    assert sealed["recordSha256"] != record_hash(audit | {"auditVerdict": "AGREE"}, "3")
    older = {name: f"{name}-value" for name in VERSION_2_FIELDS}
    assert (
        app.lambda_handler(older, lambda_context)["recordSha256"] == record_hash(older, "3") != record_hash(older, "2")
    )
