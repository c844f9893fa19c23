"""The decision record's ``recordSha256``, by hash version: what SealRecord computes and the audit recomputes.

A record names its version in ``hashVersion`` (absent: "1"), so records sealed under an older version still
verify under it. Version "1" is what RecordDecision computed in the ASL before SealRecord existed,
``States.Hash(States.Format('{}|…', 8 fields))``: it left out the reasons, the detail, the model and the job,
and ``States.Hash`` takes at most 10,000 characters (a record's detail can be longer). Version "2" covers every
field of the record, hashed in Python without a size limit. Version "3" adds the audit fields (``auditSample``,
``auditOf``, ``auditVerdict``: docs/quality.md), hashed the same way.
"""

from __future__ import annotations

import hashlib
import json

# Version "1": RecordDecision's States.Format('{}|{}|…', $.final.<these>), in this order (do not change).
VERSION_1_FIELDS = (
    "executionArn",
    "videoUri",
    "versionId",
    "decision",
    "source",
    "reviewer",
    "ruleSetVersion",
    "evidenceSha256",
)
# Version "2": every field RecordDecision stores (all of BuildRecord's $.final), in the record's order. A field
# missing from a record is left out of the hashed text (so missing, empty and "null" differ).
VERSION_2_FIELDS = (
    "videoUri",
    "bucket",
    "key",
    "versionId",
    "executionArn",
    "executionName",
    "trigger",
    "startedAt",
    "decidedAt",
    "source",
    "reviewer",
    "detail",
    "decision",
    "ruleSetVersion",
    "reasons",
    "modelVersion",
    "jobId",
    "evidenceSha256",
    "humanLoopName",
    "admission",
)
# Version "3": version 2's fields, then the audit sample drawn for an automatic decision (a JSON string; "" when the
# execution failed before the rules) and, on an audit's own record, the audited execution and the verdict.
VERSION_3_FIELDS = (
    *VERSION_2_FIELDS,
    "auditSample",
    "auditOf",
    "auditVerdict",
)
# In $.final but not stored, so not hashed: a failure's error name (AddErrorToRecord), which the stored detail
# (the error's JSON) holds anyway.
NOT_STORED = ("error",)
FIELDS = {"1": VERSION_1_FIELDS, "2": VERSION_2_FIELDS, "3": VERSION_3_FIELDS}
CURRENT_VERSION = "3"


class UnknownHashVersion(ValueError):
    """A version this code cannot compute (a record sealed by newer code, or an altered ``hashVersion``)."""


class UnhashedFields(ValueError):
    """The record has fields the current version does not cover: sealing it would leave them unprotected."""


def render(value: object) -> str:
    """A value as ``States.Format`` renders it: strings as they are, anything else as compact JSON."""
    if value is None:
        return "null"
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def hashed_text(facts: dict, version: str) -> str:
    """The text ``recordSha256`` is the SHA-256 of (UTF-8)."""
    if version == "1":
        return "|".join(render(facts.get(name, "")) for name in VERSION_1_FIELDS)
    if version in ("2", "3"):
        # JSON of [version, [[name, value], ...]]: a '|' or a quote inside a value cannot shift it into another
        # field, and the version is part of what is hashed.
        pairs = [[name, render(facts[name])] for name in FIELDS[version] if name in facts]
        return json.dumps([version, pairs], separators=(",", ":"))
    raise UnknownHashVersion(f"record hash version {version!r} is not one of {', '.join(FIELDS)}")


def record_hash(facts: dict, version: str = CURRENT_VERSION) -> str:
    """SHA-256 (hex) of ``facts`` (``$.final``, or a stored record's own attributes) under ``version``."""
    return hashlib.sha256(hashed_text(facts, version).encode()).hexdigest()


def seal(record: dict) -> dict:
    """What RecordDecision stores beside the record ($.final): its hash under the current version, and that
    version."""
    unhashed = sorted(set(record) - set(FIELDS[CURRENT_VERSION]) - set(NOT_STORED))
    if unhashed:
        raise UnhashedFields(f"record fields {unhashed} are not covered by hash version {CURRENT_VERSION}")
    return {"recordSha256": record_hash(record, CURRENT_VERSION), "hashVersion": CURRENT_VERSION}
