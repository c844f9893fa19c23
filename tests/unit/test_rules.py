"""Rule engine: taxonomy placement, segment merging, thresholds and bands (table-driven)."""

from __future__ import annotations

import json
import sys

import pytest

from vidmod.detector import COVERED_CATEGORIES, MODEL_VERSION, UNCOVERED_CATEGORIES
from vidmod.detector.models import V7_TOP_LEVEL, reported_version

V7_TOP = list(V7_TOP_LEVEL)  # the detector's literal list; the function's taxonomy file must agree


@pytest.fixture
def er(load_function):
    load_function("evaluate_rules")
    return sys.modules["rules"], sys.modules["segments"], sys.modules["taxonomy"]


def det(name: str, parent: str, level: int, confidence: float, ts: int) -> dict:
    return {
        "Timestamp": ts,
        "ModerationLabel": {"Name": name, "ParentName": parent, "TaxonomyLevel": level, "Confidence": confidence},
    }


def test_taxonomy_has_exactly_the_v7_top_level_categories(er):
    _, _, taxonomy = er
    assert sorted(taxonomy.load_taxonomy().categories) == sorted(V7_TOP)


@pytest.mark.parametrize(
    ("legacy", "old_level", "name", "parent", "category", "level"),
    [
        ("Alcoholic Beverages", 2, "Alcoholic Beverages", "Alcohol", "Alcohol", 2),
        ("Drinking", 2, "Drinking", "Alcohol Use", "Alcohol", 3),
        (
            "Barechested Male",
            2,
            "Exposed Male Nipple",
            "Non-Explicit Nudity",
            "Non-Explicit Nudity of Intimate parts and Kissing",
            3,
        ),
        ("Weapons", 2, "Weapons", "Violence", "Violence", 2),
        ("Explicit Nudity", 1, "Explicit", "", "Explicit", 1),
        ("Explicit Nudity", 2, "Explicit Nudity", "Explicit", "Explicit", 2),
        ("Tobacco", 1, "Drugs & Tobacco", "", "Drugs & Tobacco", 1),
    ],
)
def test_seed_and_pre_v7_labels_map_to_their_v7_place(er, legacy, old_level, name, parent, category, level):
    _, _, taxonomy = er
    place = taxonomy.load_taxonomy().place(legacy, level=old_level)
    assert (place.name, place.parent_name, place.category, place.level) == (name, parent, category, level)


def test_unknown_label_stays_visible_under_its_parent_category(er):
    _, _, taxonomy = er
    place = taxonomy.load_taxonomy().place("Brand New Label", "Graphic Violence")
    assert (place.category, place.parent_name, place.level) == ("Violence", "Graphic Violence", 3)


def test_consecutive_detections_merge_into_segments_and_gaps_split_them(er):
    _, segments, taxonomy = er
    detections = [det("Weapons", "Violence", 2, c, ts) for c, ts in [(70, 0), (90, 1000), (80, 2000), (75, 9000)]]
    merged = segments.merge_segments(detections, taxonomy.load_taxonomy(), gap_millis=2000)
    assert [(s.startMillis, s.endMillis, s.maxConfidence, s.detections) for s in merged] == [
        (0, 2000, 90.0, 3),
        (9000, 9000, 75.0, 1),
    ]


def test_segments_aggregation_uses_start_and_end(er):
    _, segments, taxonomy = er
    detection = det("Gambling", "", 1, 88, 0) | {"StartTimestampMillis": 4000, "EndTimestampMillis": 7000}
    (segment,) = segments.merge_segments([detection], taxonomy.load_taxonomy(), 2000)
    assert (segment.startMillis, segment.endMillis) == (4000, 7000)


def ruleset(er, **changes):
    rules, _, taxonomy = er
    data = json.loads(rules.DEFAULT_RULESET.read_text()) | changes
    return rules.load_ruleset(json.dumps(data), taxonomy.load_taxonomy())


# category / label, parent, level, confidence → outcome under the shipped rule set (read from the file,
# so a policy change shows up here as a reviewed diff).
CASES = [
    ("Exposed Female Genitalia", "Explicit Nudity", 3, 95, "REJECT"),
    ("Exposed Female Genitalia", "Explicit Nudity", 3, 60, "REVIEW"),
    ("Exposed Female Genitalia", "Explicit Nudity", 3, 40, "APPROVE"),
    ("Exposed Male Nipple", "Non-Explicit Nudity", 3, 75, "REVIEW"),
    ("Female Swimwear or Underwear", "Swimwear or Underwear", 2, 80, "APPROVE"),
    ("Female Swimwear or Underwear", "Swimwear or Underwear", 2, 90, "REVIEW"),
    ("Weapons", "Violence", 2, 98, "REJECT"),
    ("Weapons", "Violence", 2, 65, "REVIEW"),
    ("Corpses", "Death and Emaciation", 3, 70, "REVIEW"),
    ("Middle Finger", "Rude Gestures", 2, 80, "REVIEW"),
    ("Pills", "Products", 3, 75, "REVIEW"),
    ("Drinking", "Alcohol Use", 3, 85, "REVIEW"),
    ("Alcoholic Beverages", "Alcohol", 2, 70, "APPROVE"),
    ("Gambling", "", 1, 85, "REVIEW"),
    ("Nazi Party", "Hate Symbols", 2, 95, "REJECT"),
    ("Kissing on the Lips", "Non-Explicit Nudity of Intimate parts and Kissing", 2, 85, "APPROVE"),
]


@pytest.mark.parametrize(("name", "parent", "level", "confidence", "expected"), CASES)
def test_each_v7_category_against_its_thresholds(er, name, parent, level, confidence, expected):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    policy = ruleset(er, coverage=[])
    merged = segments.merge_segments([det(name, parent, level, confidence, 0)], tax, 2000)
    decision = rules.decide(merged, policy, "rekognition-7.0", tax)
    assert decision.outcome == expected
    assert decision.ruleSetVersion == policy.version
    if expected != "APPROVE":
        assert decision.reasons[0].label == tax.place(name, parent).name
        assert decision.reasons[0].band == expected.lower()


def test_reject_wins_over_review_and_reasons_are_most_severe_first(er):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    merged = segments.merge_segments(
        [det("Weapons", "Violence", 2, 70, 0), det("Nazi Party", "Hate Symbols", 2, 99, 5000)], tax, 2000
    )
    decision = rules.decide(merged, ruleset(er, coverage=[]), "", tax)
    assert decision.outcome == "REJECT"
    assert [(r.label, r.band) for r in decision.reasons] == [("Nazi Party", "reject"), ("Weapons", "review")]


def test_uncovered_categories_send_a_clean_local_result_to_review(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    decision = rules.decide([], ruleset(er), MODEL_VERSION, tax)
    assert decision.outcome == "REVIEW"
    assert "Violence" in decision.uncoveredCategories and "Explicit" not in decision.uncoveredCategories
    assert {r.band for r in decision.reasons} == {"uncovered"}


@pytest.mark.parametrize(
    ("model_version", "uncovered"),
    [
        # The embedded detector: the shipped rule set trusts exactly what the detector says it covers.
        (MODEL_VERSION, UNCOVERED_CATEGORIES),
        # A user's model (VIDMOD_DETECTOR_MODEL) the rule set does not name: nothing counts as checked.
        (reported_version(type("UserModel", (), {"version": "onnx:violence-net"})), V7_TOP),
        ("vidmod-local-2 (some future model)", V7_TOP),
        # Rekognition: full coverage.
        ("7.0", []),
    ],
)
def test_coverage_is_the_longest_matching_prefix_and_unknown_local_models_cover_nothing(er, model_version, uncovered):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    decision = rules.decide([], ruleset(er), model_version, tax)
    assert decision.uncoveredCategories == uncovered
    assert decision.coveredCategories == [c for c in V7_TOP if c not in uncovered]
    assert decision.outcome == ("REVIEW" if uncovered else "APPROVE")
    assert set(COVERED_CATEGORIES).isdisjoint(UNCOVERED_CATEGORIES)


def test_a_rule_set_entry_for_a_user_model_trusts_what_it_lists(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    base = json.loads(rules.DEFAULT_RULESET.read_text())
    mine = {"modelVersionPrefix": "vidmod-local-onnx:violence-net", "covered": ["Violence"]}
    policy = ruleset(er, coverage=[*base["coverage"], mine])
    decision = rules.decide([], policy, "vidmod-local-onnx:violence-net", tax)
    assert decision.uncoveredCategories == [c for c in V7_TOP if c != "Violence"]


def test_uncovered_ignore_policy_approves_and_still_reports_what_was_not_checked(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    decision = rules.decide([], ruleset(er, uncovered="IGNORE"), MODEL_VERSION, tax)
    assert decision.outcome == "APPROVE"
    assert "Alcohol" in decision.uncoveredCategories


def test_full_rekognition_covers_everything(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    assert rules.decide([], ruleset(er), "7.0", tax).outcome == "APPROVE"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"categories": {"Drugs": {"review": 50}}}, "not in taxonomy"),
        ({"defaults": {"review": 80, "reject": 50}}, "below review threshold"),
        ({"uncovered": "MAYBE"}, "uncovered"),
        ({"labels": {"Weapons": {"review": 150}}}, "less than or equal to 100"),
    ],
)
def test_bad_rule_sets_are_refused_with_a_specific_message(er, change, message):
    with pytest.raises(ValueError, match=message):
        ruleset(er, **change)


KISSING_L1 = "Non-Explicit Nudity of Intimate parts and Kissing"


def hierarchy(*chain: tuple[str, str, int], confidence: float, ts: int) -> list[dict]:
    """One detected label with every ancestor, at the same timestamp, as Rekognition returns it."""
    return [det(name, parent, level, confidence, ts) for name, parent, level in chain]


KISSING = [(KISSING_L1, "", 1), ("Kissing on the Lips", KISSING_L1, 2)]
BARE_BACK = [(KISSING_L1, "", 1), ("Non-Explicit Nudity", KISSING_L1, 2), ("Bare Back", "Non-Explicit Nudity", 3)]
GENITALIA = [
    ("Explicit", "", 1),
    ("Explicit Nudity", "Explicit", 2),
    ("Exposed Female Genitalia", "Explicit Nudity", 3),
]


@pytest.mark.parametrize(
    ("chain", "confidence", "outcome", "label"),
    [
        (KISSING, 85, "APPROVE", None),  # label rule review 90; the L1 category (review 70) must not fire
        (KISSING, 92, "REVIEW", "Kissing on the Lips"),
        (BARE_BACK, 90, "APPROVE", None),  # label rule review 95
        (BARE_BACK, 96, "REVIEW", "Bare Back"),
        (GENITALIA, 95, "REJECT", "Exposed Female Genitalia"),
        (GENITALIA, 60, "REVIEW", "Exposed Female Genitalia"),
    ],
)
def test_label_rules_apply_when_rekognition_reports_the_whole_hierarchy(er, chain, confidence, outcome, label):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    detections = hierarchy(*chain, confidence=confidence, ts=0) + hierarchy(*chain, confidence=confidence, ts=500)
    merged = segments.merge_segments(detections, tax, 2000)
    assert [(s.name, s.detections) for s in merged] == [(chain[-1][0], 2)]  # reviewers see the specific label
    decision = rules.decide(merged, ruleset(er, coverage=[]), "7.0", tax)
    assert decision.outcome == outcome
    assert [r.label for r in decision.reasons] == ([label] if label else [])


def test_a_parent_reported_without_a_more_specific_label_is_judged_by_its_own_rule(er):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    detections = [
        det(KISSING_L1, "", 1, 75, 0),  # alone at 0 ms: the category's review threshold (70) applies
        *hierarchy(*KISSING, confidence=85, ts=10_000),  # explained by "Kissing on the Lips" at 10 s
    ]
    merged = segments.merge_segments(detections, tax, 2000)
    assert [(s.name, s.startMillis) for s in merged] == [(KISSING_L1, 0), ("Kissing on the Lips", 10_000)]
    decision = rules.decide(merged, ruleset(er, coverage=[]), "7.0", tax)
    assert decision.outcome == "REVIEW" and [r.label for r in decision.reasons] == [KISSING_L1]


OVERRIDE = "s3://policy/rules/ruleset.json"


@pytest.fixture
def ruleset_override(aws, monkeypatch, load_function):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="policy")
    monkeypatch.setenv("RULESET_S3_URI", OVERRIDE)
    app = load_function("evaluate_rules")
    base = json.loads(sys.modules["rules"].DEFAULT_RULESET.read_text())

    def publish(version: str) -> None:
        s3.put_object(Bucket="policy", Key="rules/ruleset.json", Body=json.dumps(base | {"version": version}))

    return app, publish


def test_an_overridden_rule_set_is_re_read_after_its_ttl_not_cached_forever(ruleset_override):
    app, publish = ruleset_override
    source = sys.modules["ruleset_source"]
    now = [1000.0]
    publish("2026-12-01.1")
    assert source.active_ruleset(app.s3, OVERRIDE, clock=lambda: now[0]).version == "2026-12-01.1"
    publish("2026-12-02.1")
    now[0] += source.RULESET_TTL_SECONDS - 1
    # within the TTL: no S3 call
    assert source.active_ruleset(app.s3, OVERRIDE, clock=lambda: now[0]).version == "2026-12-01.1"
    now[0] += 2
    assert source.active_ruleset(app.s3, OVERRIDE, clock=lambda: now[0]).version == "2026-12-02.1"


def test_an_unchanged_override_is_kept_after_a_not_modified_answer(ruleset_override, monkeypatch):
    app, publish = ruleset_override
    source = sys.modules["ruleset_source"]
    publish("2026-12-01.1")
    first = source.active_ruleset(app.s3, OVERRIDE, clock=lambda: 0.0)
    requests = []
    original = app.s3.get_object

    def spy(**kwargs):
        requests.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(app.s3, "get_object", spy)
    assert source.active_ruleset(app.s3, OVERRIDE, clock=lambda: 10_000.0) is first
    assert requests and requests[0]["IfNoneMatch"]  # a conditional GET on the cached ETag
