"""Which automatic decisions go to an audit review: a deterministic draw per video content and rule set.

Like A2I's ``Sampling`` activation condition, the same input is always sampled the same way: the draw is a
SHA-256 of the rule-set version and the video's identity (bucket, key and ETag — the content, not the S3
version id), read as a number in [0, 1). A decision of outcome ``o`` is sampled when ``o`` has a rate in the rule
set's ``auditSample`` and the draw is below it. So re-running the same bytes at the same key under the same rule
set samples it again (or not again), a new rule-set version draws anew, and the audit (``vidmod audit``)
recomputes the draw to check what the record says. Only the rules' own decisions are audited: a REVIEW went to a
human anyway (sampled false, rate 0).

evaluate_rules computes it; the audit CLI checks it with the same code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

SALT = "vidmod-audit-sample"
SCHEME = 1  # part of what is hashed: a new way of drawing gets a new number
AUDITED_OUTCOMES = ("APPROVE", "REJECT")


def draw(rule_set_version: str, bucket: str, key: str, etag: str) -> float:
    """A number in [0, 1): the first 8 bytes of SHA-256(JSON [salt, scheme, rule set, bucket, key, ETag]) / 2**64.
    The ETag is taken without its quotes (S3 answers it quoted, events and HeadObject's callers often strip them)."""
    identity = json.dumps([SALT, SCHEME, rule_set_version, bucket, key, (etag or "").strip('"')])
    return int.from_bytes(hashlib.sha256(identity.encode()).digest()[:8], "big") / 2**64


@dataclass(frozen=True)
class AuditSample:
    sampled: bool
    rate: float  # the rule set's rate for the outcome (0 when it has none, and for REVIEW)
    draw: float
    outcome: str  # the automatic decision: APPROVE | REJECT (REVIEW: never sampled)

    def to_dict(self) -> dict:
        return asdict(self)


def audit_sample(
    rates: Mapping[str, float], outcome: str, rule_set_version: str, bucket: str, key: str, etag: str
) -> AuditSample:
    """``rates`` is the rule set's ``auditSample`` ({"APPROVE": 0.02, "REJECT": 0.05}); ``outcome`` the rules'."""
    rate = float(rates.get(outcome, 0.0)) if outcome in AUDITED_OUTCOMES else 0.0
    value = draw(rule_set_version, bucket, key, etag)
    return AuditSample(sampled=value < rate, rate=rate, draw=value, outcome=outcome)
