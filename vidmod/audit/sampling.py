"""Audit samples in a report: was the recorded draw the one ``vidmod_contracts.audit_sample`` computes, and how an
audited decision and its audit link to each other (docs/quality.md).

A record's ``auditSample`` (hash version 3) is the JSON of ``{"sampled", "rate", "draw", "outcome"}``: the draw is
recomputed from the rule-set version and the analysed video (bucket, key, ETag), and ``sampled`` must be
``draw < rate`` for an audited outcome. The rate itself is the rule set's, which the record names by version only.
"""

from __future__ import annotations

import json

from vidmod_contracts.audit_sample import AUDITED_OUTCOMES, draw

TOLERANCE = 1e-12  # a draw passes through Step Functions as a JSON number (a double): compare as one


def parse_sample(text: object) -> dict | None:
    """The record's auditSample; None for "" or absent (no rules ran, or a record from before audit samples)."""
    if not isinstance(text, str) or not text:
        return None
    try:
        sample = json.loads(text)
    except ValueError:
        return {"unreadable": text}
    return sample if isinstance(sample, dict) else {"unreadable": text}


def check_sample(final: dict, video: dict | None, rules_outcome: str | None) -> tuple[dict, list[str], list[str]]:
    """(the sample as shown, with ``check`` = verified | mismatch | not checked; findings; notes) for a record's
    facts (``$.final``) and the analysed video (``$.job.video``, or the audit's input video)."""
    sample = parse_sample(final.get("auditSample"))
    if sample is None:
        return {}, [], []
    if "unreadable" in sample:
        finding = f"record auditSample is not a JSON object: {sample['unreadable']!r:.160}"
        return sample | {"check": "mismatch"}, [finding], []
    findings, notes = [], []
    video = video or {}
    recorded, rate, outcome = sample.get("draw"), sample.get("rate"), sample.get("outcome")
    ruleset, etag = final.get("ruleSetVersion", ""), (video.get("etag") or "").strip('"')
    bucket, key = final.get("bucket") or video.get("bucket", ""), final.get("key") or video.get("key", "")
    shown = dict(sample)
    if not etag:
        notes.append("auditSample: the analysed video's ETag is not in the history, so its draw cannot be recomputed")
        shown["check"] = "not checked"
    else:
        expected = draw(ruleset, bucket, key, etag)
        shown["expectedDraw"] = expected
        if not isinstance(recorded, int | float) or abs(recorded - expected) > TOLERANCE:
            findings.append(
                f"auditSample draw {recorded!r} is not the draw of rule set {ruleset} for s3://{bucket}/{key} "
                f"ETag {etag} ({expected!r})"
            )
    if isinstance(recorded, int | float) and isinstance(rate, int | float):
        should = outcome in AUDITED_OUTCOMES and recorded < rate
        if bool(sample.get("sampled")) != should:
            findings.append(
                f"auditSample says sampled={sample.get('sampled')!r}, but draw {recorded} < rate {rate} for "
                f"{outcome} is {should}"
            )
    else:
        findings.append(f"auditSample has no numeric draw and rate: {sample!r:.160}")
    if rules_outcome and outcome != rules_outcome:
        findings.append(f"auditSample outcome {outcome!r} is not the rules' outcome {rules_outcome!r}")
    shown.setdefault("check", "mismatch" if findings else "verified")
    return shown, findings, notes


def audit_link(record: dict) -> dict:
    """An audit record, as the audited decision's report names it."""
    return {
        "executionName": record.get("executionName", ""),
        "executionArn": record.get("executionArn", ""),
        "auditVerdict": record.get("auditVerdict", ""),
        "decision": record.get("decision", ""),
        "reviewer": record.get("reviewer", ""),
        "decidedAt": record.get("decidedAt", ""),
    }


def describe_audit(link: dict) -> str:
    """``superseded by <audit> (OVERTURN, REJECT by alice)``; an agreement or expiry says so."""
    verdict, who = link.get("auditVerdict", ""), link.get("reviewer") or "nobody"
    if verdict == "OVERTURN":
        return f"superseded by {link['executionName']} (OVERTURN, {link.get('decision')} by {who})"
    if verdict == "AGREE":
        return f"audited by {link['executionName']} (AGREE, {link.get('decision')} confirmed by {who})"
    return f"audited by {link['executionName']} ({verdict or 'no verdict'}: the decision stands)"
