"""Rule Lambda: labels (stored in S3 page by page) → segments → APPROVE / REVIEW / REJECT."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from functools import cache

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from rules import DEFAULT_RULESET, RuleSet, decide, load_ruleset
from segments import merge_segments
from taxonomy import load_taxonomy

logger = Logger(service="vidmod-evaluate-rules")
MAX_REASONS = 25  # keeps the state payload small; the full list is in segments.json
RULESET_TTL_SECONDS = 60.0  # how long a warm container trusts its copy of an overridden rule set


@cache
def _s3():
    return boto3.client("s3")


def _read_json(bucket: str, key: str) -> dict:
    return json.loads(_s3().get_object(Bucket=bucket, Key=key)["Body"].read())


@cache
def shipped_ruleset() -> RuleSet:
    return load_ruleset(DEFAULT_RULESET.read_text(encoding="utf-8"), load_taxonomy())


@dataclass
class _Override:
    ruleset: RuleSet
    etag: str
    checked_at: float


_overrides: dict[str, _Override] = {}


def active_ruleset(clock=time.monotonic) -> RuleSet:
    """The shipped rule set, or the one ``RULESET_S3_URI`` points at (changed without a redeploy).

    Warm containers live for hours: an override is re-checked at most every ``RULESET_TTL_SECONDS`` with a
    conditional GET on its ETag, so a new rule-set version applies within a minute and costs one 304 otherwise.
    """
    uri = os.environ.get("RULESET_S3_URI", "")
    if not uri:
        return shipped_ruleset()
    cached = _overrides.get(uri)
    if cached is not None and clock() - cached.checked_at < RULESET_TTL_SECONDS:
        return cached.ruleset
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    request = {"Bucket": bucket, "Key": key} | ({"IfNoneMatch": cached.etag} if cached and cached.etag else {})
    try:
        obj = _s3().get_object(**request)
    except ClientError as error:
        if cached is None or error.response.get("Error", {}).get("Code") not in {"304", "NotModified"}:
            raise
        cached.checked_at = clock()
        return cached.ruleset
    ruleset = load_ruleset(obj["Body"].read().decode(), load_taxonomy())
    _overrides[uri] = _Override(ruleset, obj.get("ETag", ""), clock())
    if cached is not None and cached.ruleset.version != ruleset.version:
        logger.info("rule set changed", extra={"from": cached.ruleset.version, "to": ruleset.version})
    return ruleset


def page_keys(prefix: str, pages: int) -> list[str]:
    return [f"{prefix}pages/{number:05d}.json" for number in range(1, pages + 1)]


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context) -> dict:
    results, labels = event["results"], event["labels"]
    taxonomy, ruleset = load_taxonomy(), active_ruleset()
    detections = [
        detection
        for key in page_keys(results["prefix"], int(labels["pages"]))
        for detection in _read_json(results["bucket"], key).get("ModerationLabels", [])
    ]
    segments = merge_segments(detections, taxonomy, ruleset.mergeGapMillis)
    model_version = labels.get("modelVersion") or ""
    decision = decide(segments, ruleset, model_version, taxonomy)

    body = json.dumps(
        {"ruleSetVersion": ruleset.version, "modelVersion": model_version, "segments": [s.to_dict() for s in segments]},
        sort_keys=True,
    ).encode()
    segments_key = f"{results['prefix']}segments.json"
    _s3().put_object(Bucket=results["bucket"], Key=segments_key, Body=body, ContentType="application/json")
    logger.info("decided", extra={"outcome": decision.outcome, "segments": len(segments)})
    return {
        "outcome": decision.outcome.value,
        "ruleSetVersion": decision.ruleSetVersion,
        "reasons": [asdict(r) for r in decision.reasons[:MAX_REASONS]],
        "reasonsTruncated": len(decision.reasons) > MAX_REASONS,
        "uncoveredCategories": decision.uncoveredCategories,
        "coveredCategories": decision.coveredCategories,
        "segmentsRef": {"bucket": results["bucket"], "key": segments_key},
        "segmentCount": len(segments),
        "detections": len(detections),
        "modelVersion": model_version,
        "evidenceSha256": hashlib.sha256(body).hexdigest(),
    }
