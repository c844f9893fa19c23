"""Rule Lambda: labels (stored in S3 page by page) → segments → APPROVE / REVIEW / REJECT (``evaluation``)."""

from __future__ import annotations

import os
from dataclasses import asdict

import boto3
from aws_lambda_powertools import Logger
from evaluation import evaluate

from vidmod_contracts.audit_sample import audit_sample

logger = Logger(service="vidmod-evaluate-rules")
s3 = boto3.client("s3")
MAX_REASONS = 25  # keeps the state payload small; the full list is in segments.json


@logger.inject_lambda_context(log_event=True)
def lambda_handler(event: dict, context) -> dict:
    result = evaluate(
        s3,
        event["results"],
        event["labels"],
        os.environ.get("RULESET_S3_URI", ""),
        os.environ.get("RULESET_NAME") or "ruleset",
    )
    decision = result.decision
    video = event.get("video") or {}  # the job's video: the content the draw is keyed on (bucket, key, ETag)
    sample = audit_sample(
        result.ruleset.auditSample,
        decision.outcome.value,
        decision.ruleSetVersion,
        video.get("bucket", ""),
        video.get("key", ""),
        video.get("etag", ""),
    )
    logger.info(
        "decided",
        extra={"outcome": decision.outcome, "segments": len(result.segments), "auditSampled": sample.sampled},
    )
    return {
        "outcome": decision.outcome.value,
        "ruleSetVersion": decision.ruleSetVersion,
        "reasons": [asdict(r) for r in decision.reasons[:MAX_REASONS]],
        "reasonsTruncated": len(decision.reasons) > MAX_REASONS,
        "uncoveredCategories": decision.uncoveredCategories,
        "coveredCategories": decision.coveredCategories,
        "coverage": [asdict(entry) for entry in decision.coverage],
        "segmentsRef": result.segments_ref,
        "segmentCount": len(result.segments),
        "detections": result.detections,
        "modelVersion": result.model_version,
        "evidenceSha256": result.evidence_sha256,
        # whether this automatic decision also goes to an audit review (vidmod_contracts.audit_sample)
        "auditSample": sample.to_dict(),
        # how several reviewers' answers become one decision (complete_human_review, via the InputContent)
        "consensus": result.ruleset.consensus,
    }
