"""Build the A2I InputContent the worker template (ui/) renders.

The task token never goes in here: reviewers can read InputContent. Segments are capped so the
document stays far below A2I's 3 MiB InputContent limit; the strongest are kept, shown in time order.
``video.uri`` is the review copy of the analysed version (``review_media``), the one the page plays;
``video.sourceUri`` is the uploaded object and ``video.versionId`` the version of it that was analysed.
"""

from __future__ import annotations

MAX_SEGMENTS = 200


def select_segments(segments: list[dict], limit: int = MAX_SEGMENTS) -> list[dict]:
    strongest = sorted(segments, key=lambda s: -float(s.get("maxConfidence", 0)))[:limit]
    return sorted(strongest, key=lambda s: (s["startMillis"], s.get("taxonomyLevel", 1), s["name"]))


def build_input_content(
    video: dict, copy_uri: str, decision: dict, segments: list[dict], duration_millis: int | None
) -> dict:
    chosen = select_segments(segments)
    return {
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
            "reasons": [
                {
                    "category": r["category"],
                    "label": r["label"],
                    "band": r["band"],
                    "maxConfidence": r.get("maxConfidence"),
                }
                for r in decision.get("reasons", [])
            ],
        },
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
