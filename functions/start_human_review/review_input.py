"""Build the A2I InputContent the worker template (ui/) renders.

The task token never goes in here: reviewers can read InputContent. Segments are capped so the
document stays far below A2I's 3 MiB InputContent limit; the strongest are kept, shown in time order.
``video.uri`` is the review copy of the analysed version (``review_media``), the one the page plays;
``video.sourceUri`` is the uploaded object and ``video.versionId`` the version of it that was analysed.
``consensus`` is the rule set's rule for several reviewers' answers (complete_human_review reads it back from the
loop's output). ``audit`` is present only in an audit review (statemachine/audit.asl.json): the automatic
decision the auditor checks, when and by which execution it was made, and the rules' reasons for it.
"""

from __future__ import annotations

MAX_SEGMENTS = 200


def select_segments(segments: list[dict], limit: int = MAX_SEGMENTS) -> list[dict]:
    strongest = sorted(segments, key=lambda s: -float(s.get("maxConfidence", 0)))[:limit]
    return sorted(strongest, key=lambda s: (s["startMillis"], s.get("taxonomyLevel", 1), s["name"]))


def _reasons(reasons: list[dict]) -> list[dict]:
    return [
        {"category": r["category"], "label": r["label"], "band": r["band"], "maxConfidence": r.get("maxConfidence")}
        for r in reasons
    ]


def audit_content(audit: dict) -> dict:
    """What the auditor is told of the automatic decision (only these keys: no token, nothing else of the state)."""
    return {
        "automaticDecision": audit["automaticDecision"],
        "decidedAt": audit.get("decidedAt", ""),
        "executionName": audit.get("executionName", ""),
        "reasons": _reasons(audit.get("reasons") or []),
    }


def build_input_content(
    video: dict,
    copy_uri: str,
    decision: dict,
    segments: list[dict],
    duration_millis: int | None,
    audit: dict | None = None,
) -> dict:
    chosen = select_segments(segments)
    content = {
        "schemaVersion": "1",
        "video": {
            "uri": copy_uri,  # what the reviewer watches: a copy of exactly the analysed version
            "sourceUri": video["uri"],
            "name": video["name"],
            # the version of sourceUri analysed ("" when the bucket is unversioned); the copy has none
            "versionId": video.get("versionId") or "",
            "durationMillis": duration_millis,
        },
        "decision": {
            "ruleSetVersion": decision["ruleSetVersion"],
            "reasons": _reasons(decision.get("reasons", [])),
        },
        # how several reviewers' answers become one decision (the rule set's; older decisions: majority)
        "consensus": decision.get("consensus", "majority"),
        "uncoveredCategories": list(decision.get("uncoveredCategories", [])),
        "coveredCategories": list(decision.get("coveredCategories", [])),  # what the detector checked
        # per category, the labels the detector checked and those the reviewer must watch for
        "coverage": [
            {"category": c["category"], "checked": list(c["checked"]), "notChecked": list(c["notChecked"])}
            for c in decision.get("coverage", [])
        ],
        "segments": [
            {
                "index": index,
                "id": f"seg-{index}",
                "name": s["name"],
                "parentName": s.get("parentName", ""),
                "category": s.get("category", ""),
                "taxonomyLevel": s.get("taxonomyLevel", 1),
                "startMillis": s["startMillis"],
                "endMillis": s["endMillis"],
                "maxConfidence": s["maxConfidence"],
                "detections": s.get("detections", 1),
            }
            for index, s in enumerate(chosen)
        ],
        "segmentsTruncated": len(segments) > len(chosen),
        "segmentsTotal": len(segments),
    }
    if audit:
        content["audit"] = audit_content(audit)
    return content
