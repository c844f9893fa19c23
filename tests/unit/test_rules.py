"""Rule engine: taxonomy placement, segment merging, thresholds and bands (table-driven)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from unit.detections import det

from vidmod.detector import COVERED_LABELS, MODEL_VERSION
from vidmod.detector.models import NUDENET_TO_V7, V7_TOP_LEVEL, NudityDetector, reported_version

ROOT = Path(__file__).resolve().parents[2]
V7_TOP = list(V7_TOP_LEVEL)  # the detector's literal list; the function's taxonomy file must agree


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


def shipped_thresholds() -> list[tuple[str, str, float | None, float | None]]:
    """(rule name, a label it judges, review, reject) for every category and label rule of the shipped set."""
    shipped = json.loads((ROOT / "functions/evaluate_rules/rules/ruleset.json").read_text())
    taxonomy = json.loads((ROOT / "layers/contracts/vidmod_contracts/taxonomy_v7.json").read_text())
    rows = []
    for category, limits in shipped["categories"].items():
        level2 = taxonomy["categories"][category]
        # a level-2 label of the category that no label rule overrides (Gambling has none: the category itself)
        label = next((name for name in level2 if name not in shipped["labels"]), category)
        rows.append((category, label, limits["review"], limits["reject"]))
    rows += [(name, name, limits["review"], limits["reject"]) for name, limits in shipped["labels"].items()]
    return rows


@pytest.mark.parametrize(("rule", "label", "review", "reject"), shipped_thresholds())
def test_a_confidence_exactly_on_each_shipped_threshold_crosses_it_and_just_below_does_not(
    er, rule, label, review, reject
):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    policy = ruleset(er, coverage=[])
    place = tax.place(label)

    def outcome(confidence: float) -> str:
        detection = det(place.name, place.parent_name, place.level, confidence, 0)
        return rules.decide(segments.merge_segments([detection], tax, 2000), policy, "7.0", tax).outcome

    assert (outcome(review), outcome(review - 0.001)) == ("REVIEW", "APPROVE"), rule
    if reject is not None:
        assert (outcome(reject), outcome(reject - 0.001)) == ("REJECT", "REVIEW"), rule


def test_a_label_rule_for_a_parent_judges_its_children(er):
    """A rule on "Graphic Violence" (level 2) applies to "Blood & Gore" under it, before the Violence category's."""
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    policy = ruleset(er, coverage=[], labels={"Graphic Violence": {"review": 95, "reject": None}})
    gore = segments.merge_segments([det("Blood & Gore", "Graphic Violence", 3, 90, 0)], tax, 2000)
    assert rules.decide(gore, policy, "7.0", tax).outcome == "APPROVE"  # Violence's own review threshold is 60
    weapons = segments.merge_segments([det("Weapons", "Violence", 2, 90, 0)], tax, 2000)
    assert rules.decide(weapons, policy, "7.0", tax).outcome == "REVIEW"  # not under Graphic Violence


def test_reject_wins_over_review_and_reasons_are_most_severe_first(er):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    merged = segments.merge_segments(
        [det("Weapons", "Violence", 2, 70, 0), det("Nazi Party", "Hate Symbols", 2, 99, 5000)], tax, 2000
    )
    decision = rules.decide(merged, ruleset(er, coverage=[]), "", tax)
    assert decision.outcome == "REJECT"
    assert [(r.label, r.band) for r in decision.reasons] == [("Nazi Party", "reject"), ("Weapons", "review")]


def test_a_clean_local_result_goes_to_review_naming_each_label_the_detector_could_not_check(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    decision = rules.decide([], ruleset(er), MODEL_VERSION, tax)
    assert decision.outcome == "REVIEW"
    assert {r.band for r in decision.reasons} == {"uncovered"}
    named = {(r.category, r.label) for r in decision.reasons}
    # Partly seen categories name their missing labels; a category with nothing seen is named once.
    assert ("Non-Explicit Nudity of Intimate parts and Kissing", "Kissing on the Lips") in named
    assert ("Explicit", "Explicit Sexual Activity") in named and ("Explicit", "Sex Toys") in named
    assert ("Violence", "Violence") in named and ("Violence", "Weapons") not in named
    assert not {label for _, label in named} & set(COVERED_LABELS)
    nudity = next(c for c in decision.coverage if c.category == "Non-Explicit Nudity of Intimate parts and Kissing")
    assert nudity.checked == ["Exposed Male Nipple"] and "Bare Back" in nudity.notChecked
    # No category is wholly checked by a nudity-only detector: each has a label it cannot see.
    assert decision.uncoveredCategories == V7_TOP and decision.coveredCategories == []


@pytest.mark.parametrize("policy", ["REVIEW", "IGNORE"])
def test_a_kissing_label_at_95_goes_to_review_under_either_uncovered_policy(er, policy):
    """Reported by a local model whose rule-set entry says it cannot see kissing: the detection still counts."""
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    kiss = det("Kissing on the Lips", "Non-Explicit Nudity of Intimate parts and Kissing", 2, 95, 0)
    decision = rules.decide(
        segments.merge_segments([kiss], tax, 2000), ruleset(er, uncovered=policy), MODEL_VERSION, tax
    )
    assert decision.outcome == "REVIEW"
    assert (decision.reasons[0].label, decision.reasons[0].band) == ("Kissing on the Lips", "review")


def test_the_ignore_policy_approves_and_the_reasons_still_name_what_was_not_checked(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    decision = rules.decide([], ruleset(er, uncovered="IGNORE"), MODEL_VERSION, tax)
    assert decision.outcome == "APPROVE"
    assert ("Kissing on the Lips", "uncovered") in {(r.label, r.band) for r in decision.reasons}
    assert "Alcohol" in decision.uncoveredCategories


@pytest.mark.parametrize(
    ("model_version", "uncovered"),
    [
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
    assert all(not c.notChecked for c in decision.coverage) == (not uncovered)


@pytest.mark.parametrize("name", ["ruleset", "workshop"])
def test_each_shipped_rule_set_trusts_exactly_the_labels_the_embedded_detector_declares(er, name):
    """The rule sets' entry for the default model and the model's own declaration cannot drift apart."""
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    policy = rules.load_ruleset((rules.SHIPPED_RULESETS / f"{name}.json").read_text(), tax)
    trusted = {label for name in policy.seen_by(MODEL_VERSION) for label in tax.labels_under(name)}
    declared = {label for name in NudityDetector.covered for label in tax.labels_under(name)}
    assert trusted == declared == set(COVERED_LABELS)


def test_the_embedded_detector_declares_exactly_what_its_class_map_can_produce():
    produced = {path[0].name for path in NUDENET_TO_V7.values()}
    assert set(NudityDetector.covered) == produced
    assert produced == {
        "Exposed Male Genitalia",
        "Exposed Female Genitalia",
        "Exposed Buttocks or Anus",
        "Exposed Female Nipple",
        "Exposed Male Nipple",
    }


def test_a_rule_set_entry_for_a_user_model_trusts_what_it_lists_and_a_category_means_all_its_labels(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    base = json.loads(rules.DEFAULT_RULESET.read_text())
    mine = {"modelVersionPrefix": "vidmod-local-onnx:violence-net", "covered": ["Violence", "Middle Finger"]}
    policy = ruleset(er, coverage=[*base["coverage"], mine])
    decision = rules.decide([], policy, "vidmod-local-onnx:violence-net", tax)
    assert decision.coveredCategories == ["Violence", "Rude Gestures"]
    violence = next(c for c in decision.coverage if c.category == "Violence")
    assert violence.notChecked == [] and "Weapons" in violence.checked and "Blood & Gore" in violence.checked


def test_full_rekognition_covers_everything(er):
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    assert rules.decide([], ruleset(er), "7.0", tax).outcome == "APPROVE"


def test_a_label_no_threshold_acts_on_need_not_be_checked(er):
    """``review: null`` everywhere but Violence: only the Violence labels must be seen, and a detector that
    sees them all approves a clean video although it sees nothing else."""
    rules, _, taxonomy = er
    tax = taxonomy.load_taxonomy()
    mine = {"modelVersionPrefix": "vidmod-local-violence", "covered": ["Violence"]}
    policy = ruleset(er, defaults={"review": None}, categories={"Violence": {"review": 60}}, labels={}, coverage=[mine])
    decision = rules.decide([], policy, "vidmod-local-violence", tax)
    assert decision.outcome == "APPROVE" and decision.reasons == []
    assert [c.category for c in decision.coverage] == ["Violence"]


@pytest.mark.parametrize(
    ("inclusive", "confidence", "expected"),
    [(True, 60.0, "REVIEW"), (False, 60.0, "APPROVE"), (False, 60.001, "REVIEW")],
)
def test_a_confidence_exactly_on_a_threshold_crosses_it_unless_the_rule_set_says_above(
    er, inclusive, confidence, expected
):
    rules, segments, taxonomy = er
    tax = taxonomy.load_taxonomy()
    merged = segments.merge_segments([det("Weapons", "Violence", 2, confidence, 0)], tax, 2000)
    policy = ruleset(er, coverage=[], thresholdsInclusive=inclusive)
    assert rules.decide(merged, policy, "7.0", tax).outcome == expected


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
