"""Judge a video's labels: every stored page → segments → the rule set's decision, with its evidence kept.

The segments the decision was made on go to ``<results prefix>segments.json`` and the decision carries the
SHA-256 of those bytes, so the reviewer sees exactly what the rules saw and the audit can prove it unchanged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from rules import Decision, RuleSet, decide
from ruleset_source import active_ruleset
from segments import Segment, merge_segments

from vidmod_contracts.label_pages import read_pages
from vidmod_contracts.taxonomy import load_taxonomy


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    segments: list[Segment]
    detections: int
    model_version: str
    segments_ref: dict  # {"bucket", "key"} of segments.json
    evidence_sha256: str
    ruleset: RuleSet  # the rule set that decided (its auditSample rates and consensus rule go with the decision)


def read_detections(s3, bucket: str, prefix: str, pages: int) -> list[dict]:
    """Every detection of pages 1..N in page order (pages read concurrently); a missing page fails (NoSuchKey)
    rather than deciding on part of them."""
    return [
        detection for page in read_pages(s3, bucket, prefix, pages) for detection in page.get("ModerationLabels", [])
    ]


def evaluate(s3, results: dict, labels: dict, ruleset_uri: str, ruleset_name: str = "ruleset") -> Evaluation:
    """``results`` is the job's ``{"bucket", "prefix"}``, ``labels`` the store_labels summary; the rule set is
    the override at ``ruleset_uri`` if any, else the shipped one called ``ruleset_name``."""
    taxonomy, ruleset = load_taxonomy(), active_ruleset(s3, ruleset_uri, name=ruleset_name)
    detections = read_detections(s3, results["bucket"], results["prefix"], int(labels["pages"]))
    segments = merge_segments(detections, taxonomy, ruleset.mergeGapMillis)
    model_version = labels.get("modelVersion") or ""
    decision = decide(segments, ruleset, model_version, taxonomy)

    body = json.dumps(
        {"ruleSetVersion": ruleset.version, "modelVersion": model_version, "segments": [s.to_dict() for s in segments]},
        sort_keys=True,
    ).encode()
    segments_key = f"{results['prefix']}segments.json"
    s3.put_object(Bucket=results["bucket"], Key=segments_key, Body=body, ContentType="application/json")
    return Evaluation(
        decision=decision,
        segments=segments,
        detections=len(detections),
        model_version=model_version,
        segments_ref={"bucket": results["bucket"], "key": segments_key},
        evidence_sha256=hashlib.sha256(body).hexdigest(),
        ruleset=ruleset,
    )
